"""`charts/secretsboot`: lint, strict schema validation, our own audit, least RBAC.

The last test runs the CronJob's audit containers as plain
`secretsboot audit --cluster` against the sandbox's Kubernetes fake, authenticated
as the chart's ServiceAccount bound to the chart's ClusterRole only: a missing
permission would show up as a 403 from the fake's RBAC.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secretsboot.audit.cluster import KINDS
from secretsboot.cli import main

from .conftest import ROOT, Helm

CHART = ROOT / "charts" / "secretsboot"
K8S_VERSION = "1.34.0"  # the kubectl/helm of the test wheel
RELEASE, NAMESPACE = "fleet", "secretsboot-audit"
FULL = f"{RELEASE}-secretsboot-audit"
EVERY_VALUE = (
    "--set",
    "namespace=shop",
    "--set",
    "trustedRegistries={myacr.azurecr.io,mcr.microsoft.com}",
    "--set-string",
    "policy=apiVersion: secretsboot/v1\nkind: AuditPolicy\nthreshold: medium\n",
    "--set-string",
    "suppressions=apiVersion: secretsboot/v1\nkind: AuditSuppressions\nsuppressions: []\n",
    "--set",
    "image.digest=sha256:" + "a" * 64,
    "--set",
    "reports.persistence.enabled=false",
)


def _render(helm: Helm, *values: str, release: str = RELEASE) -> list[dict[str, Any]]:
    out = helm("template", release, str(CHART), "--namespace", NAMESPACE, *values).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind]
    return found


def _pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = _one(docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> list[dict[str, Any]]:
    return _render(helm)


@pytest.mark.parametrize("values", [(), EVERY_VALUE], ids=["defaults", "every-value"])
def test_helm_lint_passes(helm: Helm, values: tuple[str, ...]) -> None:
    out = helm("lint", "--strict", str(CHART), *values)
    assert "0 chart(s) failed" in out.stdout


@pytest.mark.parametrize("values", [(), EVERY_VALUE], ids=["defaults", "every-value"])
def test_every_object_validates_strictly(helm: Helm, values: tuple[str, ...]) -> None:
    docs = _render(helm, *values)
    assert {d["kind"] for d in docs} >= {"ServiceAccount", "ClusterRole", "CronJob"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@pytest.mark.parametrize("audited", ["", "shop"], ids=["every-namespace", "one-namespace"])
def test_our_audit_of_the_chart_reports_no_high_finding(
    helm: Helm, tmp_path: Path, capsys: pytest.CaptureFixture[str], audited: str
) -> None:
    path = tmp_path / "chart.yaml"
    values = ("--set", f"namespace={audited}")
    path.write_text(helm("template", RELEASE, str(CHART), "-n", NAMESPACE, *values).stdout)
    code = main(["audit", "-o", "json", "--severity-threshold", "high", str(path)])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["errors"] == []
    counted = [f for f in report["findings"] if not f["suppressed"] and not f["baseline"]]
    assert [f for f in counted if f["severity"] in ("high", "critical")] == []
    suppressed = [f for f in report["findings"] if f["suppressed"]]
    if audited:  # a RoleBinding in one namespace: nothing to excuse
        assert suppressed == []
    else:  # the one deliberate exception is suppressed inline, with its reason, and reported
        (finding,) = suppressed
        assert finding["rule_id"] == "SB402" and "metadata" in finding["suppression_reason"]


def _grants(docs: list[dict[str, Any]], binding_kind: str) -> dict[str, set[str]]:
    """What the chart's ServiceAccount may list through bindings of ``binding_kind``."""
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    granted: dict[str, set[str]] = defaultdict(set)
    for binding in (d for d in docs if d["kind"] == binding_kind):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULL, "namespace": NAMESPACE}
        ]
        for rule in roles[binding["roleRef"]["name"]]["rules"]:
            assert rule["verbs"] == ["list"]
            assert "resourceNames" not in rule and "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                granted[group].update(rule["resources"])
    return dict(granted)


def _kinds(*, namespaced: bool | None = None) -> dict[str, set[str]]:
    needed: dict[str, set[str]] = defaultdict(set)
    for kind in KINDS:
        if namespaced is None or kind.namespaced is namespaced:
            needed[kind.group].add(kind.plural)
    return dict(needed)


def test_every_namespace_cluster_role_is_list_on_exactly_the_kinds_the_audit_reads(
    rendered: list[dict[str, Any]],
) -> None:
    assert _grants(rendered, "ClusterRoleBinding") == _kinds()
    assert not [d for d in rendered if d["kind"] == "RoleBinding"]


def test_one_namespace_gets_a_role_binding_there_and_only_cluster_kinds_cluster_wide(
    helm: Helm,
) -> None:
    docs = _render(helm, "--set", "namespace=shop")
    assert _grants(docs, "ClusterRoleBinding") == _kinds(namespaced=False)
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert binding["metadata"]["namespace"] == "shop"
    assert _grants(docs, "RoleBinding") == _kinds(namespaced=True)


def test_pod_is_restricted_and_only_it_gets_a_token(rendered: list[dict[str, Any]]) -> None:
    assert _one(rendered, "ServiceAccount")["automountServiceAccountToken"] is False
    pod = _pod_spec(rendered)
    assert pod["automountServiceAccountToken"] is True
    assert pod["serviceAccountName"] == FULL
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in [*pod["initContainers"], *pod["containers"]]:
        ctx = c["securityContext"]
        assert ctx["runAsNonRoot"] is True
        assert isinstance(ctx["runAsUser"], int) and ctx["runAsUser"] > 0
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["limits"]["memory"]


def test_reports_in_three_formats_and_the_json_run_decides_the_job(
    rendered: list[dict[str, Any]],
) -> None:
    cron = _one(rendered, "CronJob")
    job = cron["spec"]["jobTemplate"]["spec"]
    pod = _pod_spec(rendered)
    assert pod["restartPolicy"] == "Never"
    (rule,) = job["podFailurePolicy"]["rules"]
    assert rule["action"] == "FailJob" and 11 in rule["onExitCodes"]["values"]
    runs = {c["name"]: c["args"] for c in [*pod["initContainers"], *pod["containers"]]}
    outs = {name: args[args.index("--out") + 1] for name, args in runs.items()}
    assert outs == {
        "audit-html": "/reports/audit.html",
        "audit-sarif": "/reports/audit.sarif",
        "audit": "/reports/audit.json",
    }
    assert all("--report-only" in runs[n] for n in ("audit-html", "audit-sarif"))
    assert "--report-only" not in runs["audit"]
    claim = pod["volumes"][0]["persistentVolumeClaim"]["claimName"]
    assert _one(rendered, "PersistentVolumeClaim")["metadata"]["name"] == claim


def test_values_reach_the_audit_arguments(helm: Helm) -> None:
    docs = _render(helm, *EVERY_VALUE)
    args = _pod_spec(docs)["containers"][0]["args"]
    assert args[:4] == ["audit", "--cluster", "--namespace", "shop"]
    assert args.count("--trusted-registry") == 2
    assert "/etc/secretsboot-audit/policy.yaml" in args
    assert "/etc/secretsboot-audit/suppressions.yaml" in args
    config = _one(docs, "ConfigMap")["data"]
    assert yaml.safe_load(config["policy.yaml"])["threshold"] == "medium"
    image = _pod_spec(docs)["containers"][0]["image"]
    assert image == "ghcr.io/secretsboot/secretsboot@sha256:" + "a" * 64
    assert "PersistentVolumeClaim" not in {d["kind"] for d in docs}


# ----------------------------------------------------------------------------- live RBAC


def _kubeconfig(path: Path, server: str, ca: Path, token: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "c", "cluster": {"server": server, "certificate-authority": str(ca)}}
                ],
                "users": [{"name": "u", "user": {"token": token}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    path.chmod(0o600)
    return path


def _create(store: Any, obj: dict[str, Any]) -> None:
    try:
        store.create(obj)
    except Exception as exc:  # already there from an earlier run in this session
        if "already exists" not in str(exc) and "AlreadyExists" not in repr(exc):
            raise


@pytest.mark.integration
@pytest.mark.parametrize(
    ("release", "audited"), [(RELEASE, ""), ("team", "audited")], ids=["every-ns", "one-ns"]
)
def test_cronjob_audit_runs_with_the_chart_role_only(
    helm: Helm,
    sandbox: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    release: str,
    audited: str,
) -> None:
    kube = sandbox.kube
    docs = _render(helm, "--set", f"namespace={audited}", release=release)
    for ns in {NAMESPACE, audited} - {""}:
        _create(kube.store, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    rbac = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding")
    for doc in docs:
        if doc["kind"] in rbac:
            _create(kube.store, doc)
    account = f"{release}-secretsboot-audit"
    token = kube.mint_token(NAMESPACE, account, audiences=kube.app.api_audiences)
    config = _kubeconfig(tmp_path / "kubeconfig", kube.url, sandbox.ca_path, token)
    pod = _pod_spec(docs)
    before = len(kube.app.calls)
    codes = {}
    for container in [*pod["initContainers"], *pod["containers"]]:
        args = [a.replace("/reports/", f"{tmp_path}/") for a in container["args"]]
        codes[container["name"]] = main([*args, "--kubeconfig", str(config)])
        capsys.readouterr()
    calls = kube.app.calls[before:]
    assert calls and 403 not in {c.status for c in calls}
    assert {c.status for c in calls} <= {200, 404}  # 404: CRDs the fake does not serve
    report = json.loads((tmp_path / "audit.json").read_text())
    assert report["errors"] == []
    assert report["coverage"]["objects"] > 0
    assert codes["audit-html"] == codes["audit-sarif"] == 0
    assert codes["audit"] in (0, 11)  # 11: findings in other tests' objects, never a denial
    assert (tmp_path / "audit.html").stat().st_size > 0
    assert json.loads((tmp_path / "audit.sarif").read_text())["version"] == "2.1.0"


@pytest.mark.integration
def test_without_the_binding_the_same_run_is_denied(
    sandbox: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kube = sandbox.kube
    _create(kube.store, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    sa = {"apiVersion": "v1", "kind": "ServiceAccount"}
    _create(kube.store, {**sa, "metadata": {"name": "unbound", "namespace": NAMESPACE}})
    token = kube.mint_token(NAMESPACE, "unbound", audiences=kube.app.api_audiences)
    config = _kubeconfig(tmp_path / "kubeconfig", kube.url, sandbox.ca_path, token)
    out = tmp_path / "audit.json"
    argv = ["audit", "--cluster", "-o", "json", "--out", str(out), "--kubeconfig", str(config)]
    code = main([*argv, "--report-only"])
    err = capsys.readouterr().err
    # the audit fails closed on what it could not read: the Job fails (exit 2), naming the 403
    assert code == 2
    assert "cannot list pods: HTTP 403" in err and err.count("\n") == 1
    assert not out.exists()
