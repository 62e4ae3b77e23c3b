"""The pipeline: load -> resolve -> classify -> detectors -> governance -> AuditResult."""

from __future__ import annotations

import gc
import textwrap
from pathlib import Path

import pytest

from secretsboot.audit.engine import AuditOptions, audit_paths, exit_status, run
from secretsboot.audit.loader import load_text, no_gc
from secretsboot.audit.model import Severity
from secretsboot.errors import BadInputError

APP = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop}
    spec:
      template:
        spec:
          containers:
            - name: app
              image: docker.io/library/nginx:1.27
              env: [{name: DB_PASSWORD, value: "Tr0ub4dor-and-3"}]
    ---
    apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: web-1
      namespace: shop
      ownerReferences: [{kind: Deployment, name: web}]
    spec: {template: {spec: {containers: [{name: app, image: nginx}]}}}
    ---
    kind: Pod
    metadata: {name: [broken
    """
)


def test_result_holds_workloads_findings_errors_and_coverage() -> None:
    result = run(load_text(APP, "app.yaml"))
    (w,) = result.workloads
    assert w.ref == "Deployment/shop/web" and w.approach_ids == ["literal-credential"]
    assert w.manifest is not None and w.manifest.kind == "Deployment"
    assert w.findings and all(f.workload == w.ref for f in w.findings)
    assert {f.rule_id for f in result.findings} >= {f.rule_id for f in w.findings}
    assert result.coverage.workloads == 1
    assert result.coverage.skipped == {
        "controlled by a Deployment in the input (audited as that Deployment)": 1
    }
    (error,) = result.errors
    assert error.doc_index == 2 and error.file == "app.yaml"
    assert result.tool_version


def test_threshold_and_report_only() -> None:
    result = run(load_text(APP), AuditOptions(threshold=Severity.HIGH))
    assert result.over_threshold() and exit_status(result) == 11
    assert exit_status(result, report_only=True) == 0
    calm = run(load_text(APP), AuditOptions(threshold=Severity.CRITICAL))
    assert exit_status(calm) == 0


def test_policy_file_threshold_and_trusted_registries(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: secretsboot/v1\nkind: AuditPolicy\nseverityThreshold: critical\n"
        "trustedRegistries: [myacr.azurecr.io]\n"
    )
    plain = run(load_text(APP))
    governed = run(load_text(APP), AuditOptions(policy=policy))
    assert "SB507" not in {f.rule_id for f in plain.findings}
    assert "SB507" in {f.rule_id for f in governed.findings}  # docker.io is not trusted
    assert governed.threshold is Severity.CRITICAL
    flagged = run(
        load_text(APP),
        AuditOptions(policy=policy, threshold=Severity.LOW, threshold_from_flag=True),
    )
    assert flagged.threshold is Severity.LOW  # the flag beats the policy file


def test_flag_registries_beat_the_policy(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("apiVersion: secretsboot/v1\nkind: AuditPolicy\n")
    result = run(load_text(APP), AuditOptions(policy=policy, trusted_registries=("docker.io",)))
    assert "SB507" not in {f.rule_id for f in result.findings}


def test_audit_paths_and_missing_input(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(APP)
    assert [w.name for w in audit_paths([tmp_path]).workloads] == ["web"]
    with pytest.raises(BadInputError):
        audit_paths([tmp_path / "missing"])


def test_garbage_collector_state_is_restored() -> None:
    assert gc.isenabled()
    with no_gc():
        assert not gc.isenabled()
    assert gc.isenabled()
    run(load_text(APP))
    assert gc.isenabled()


def test_large_audits_can_drop_the_parsed_objects_before_rendering() -> None:
    loaded = load_text(APP)
    result = run(loaded, AuditOptions(keep_manifests=False))
    assert loaded.manifests == []
    assert all(w.manifest is None for w in result.workloads)
    assert result.workloads[0].approach_ids == ["literal-credential"]
