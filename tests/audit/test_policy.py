"""Governance: policy files, suppressions (inline and file, with expiry), baselines, threshold."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path

import pytest
from _audit_case import deployment, manifests, run, workloads

from secretsboot.audit.findings import run_detectors
from secretsboot.audit.model import Approach, AuditResult, Coverage, Evidence, Severity, Workload
from secretsboot.audit.policy import (
    Policy,
    PolicyFileError,
    Suppression,
    approach_findings,
    baseline_text,
    govern,
    load_baseline,
    load_policy,
    load_suppressions,
    write_baseline,
)
from secretsboot.errors import BadInputError

TODAY = dt.date(2026, 6, 1)
APP = "containers: [{name: app, image: app}]\n"  # no tag: SB508 too


def write(tmp_path: Path, text: str, name: str = "f.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def result_of(text: str) -> AuditResult:
    items = manifests(text)
    wls = workloads(items)
    return AuditResult(wls, run_detectors(items, wls), [], Coverage())


# --- policy file -------------------------------------------------------------------------------


def test_policy_file_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        apiVersion: secretsboot/v1
        kind: AuditPolicy
        severityThreshold: medium
        trustedRegistries: [mcr.microsoft.com]
        disabledRules: [SB508]
        severityOverrides: {SB301: info}
        allowedApproaches:
          payments: [workload-identity, keyvault-csi]
          "team-*": [workload-identity]
        disallowedApproachSeverity: critical
        """,
    )
    p = load_policy(path)
    assert p.threshold is Severity.MEDIUM
    assert p.trusted_registries == ("mcr.microsoft.com",)
    assert p.disabled_rules == {"SB508"}
    assert p.severity_overrides == {"SB301": Severity.INFO}
    assert p.disallowed_severity is Severity.CRITICAL
    assert p.rule_for("payments") is not None and p.rule_for("team-a") is not None
    assert p.rule_for("other") is None


BAD_POLICIES = [
    ("wrong apiVersion", "apiVersion: v1\nkind: AuditPolicy\n", "apiVersion", "secretsboot/v1"),
    ("wrong kind", "apiVersion: secretsboot/v1\nkind: Policy\n", "kind", "kind: AuditPolicy"),
    ("typo field", "{H}severityTreshold: high\n", "severityTreshold", "use one of"),
    (
        "case typo",
        "{H}trustedregistries: [a]\n",
        "trustedregistries",
        "did you mean trustedRegistries",
    ),
    ("bad severity", "{H}severityThreshold: urgent\n", "severityThreshold", "use one of"),
    ("unknown rule", "{H}disabledRules: [SB999]\n", "disabledRules[0]", "use one of SB101, SB102"),
    ("rules not a list", "{H}disabledRules: {a: 1}\n", "disabledRules", "list of strings"),
    ("approaches not a map", "{H}allowedApproaches: [a]\n", "allowedApproaches", "mapping"),
    (
        "bad approach id",
        "{H}allowedApproaches: {shop: [Key Vault]}\n",
        "allowedApproaches.shop[0]",
        "use ids such as",
    ),
    ("not YAML", "{H}disabledRules: [SB101\n", None, "YAML"),
    ("not a mapping", "- a\n- b\n", None, "kind: AuditPolicy"),
]


@pytest.mark.parametrize(
    ("text", "field", "hint"), [c[1:] for c in BAD_POLICIES], ids=[c[0] for c in BAD_POLICIES]
)
def test_bad_policy_names_file_field_and_fix(
    tmp_path: Path, text: str, field: str | None, hint: str
) -> None:
    path = write(tmp_path, text.replace("{H}", "apiVersion: secretsboot/v1\nkind: AuditPolicy\n"))
    with pytest.raises(PolicyFileError) as err:
        load_policy(path)
    assert isinstance(err.value, BadInputError)
    message = str(err.value)
    assert str(path) in message and hint in message
    if field:
        assert err.value.field == field
        assert err.value.line is not None


def test_missing_policy_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="cannot read the AuditPolicy file"):
        load_policy(tmp_path / "nope.yaml")


# --- SB901 allowed approaches --------------------------------------------------------------------


def _workload(namespace: str, *approaches: str) -> Workload:
    ref = f"Deployment/{namespace}/x" if namespace else "Deployment/x"
    ev = (Evidence(ref, "spec.template.spec", "a.yaml", 3),)
    return Workload(
        "Deployment", namespace, "x", "a.yaml", 1, "default", [Approach(a, ev) for a in approaches]
    )


def _rules(**allowed: list[str]) -> Policy:
    from secretsboot.audit.policy import NamespaceRule

    return Policy(
        allowed_approaches=tuple(
            NamespaceRule(pattern.replace("_STAR", "*"), frozenset(ids))
            for pattern, ids in allowed.items()
        )
    )


APPROACH_CASES = [
    ("allowed", "shop", ["keyvault-csi"], {"shop": ["keyvault-csi"]}, []),
    ("disallowed", "shop", ["k8s-secret-env"], {"shop": ["keyvault-csi"]}, ["k8s-secret-env"]),
    ("glob", "team-a", ["k8s-secret-env"], {"team-_STAR": ["keyvault-csi"]}, ["k8s-secret-env"]),
    (
        "exact beats glob",
        "shop",
        ["k8s-secret-env"],
        {"_STAR": ["keyvault-csi"], "shop": ["k8s-secret-env"]},
        [],
    ),
    ("no rule matches: everything allowed", "other", ["literal-credential"], {"shop": []}, []),
    (
        "no namespace is default",
        "",
        ["k8s-secret-env"],
        {"default": ["keyvault-csi"]},
        ["k8s-secret-env"],
    ),
    (
        "two disallowed",
        "shop",
        ["k8s-secret-env", "literal-credential"],
        {"shop": []},
        ["k8s-secret-env", "literal-credential"],
    ),
]


@pytest.mark.parametrize(
    ("namespace", "approaches", "allowed", "flagged"),
    [c[1:] for c in APPROACH_CASES],
    ids=[c[0] for c in APPROACH_CASES],
)
def test_sb901_allowed_approaches(
    namespace: str, approaches: list[str], allowed: dict[str, list[str]], flagged: list[str]
) -> None:
    found = approach_findings([_workload(namespace, *approaches)], _rules(**allowed))
    assert [f.evidence.detail for f in found] == flagged
    assert all(f.rule_id == "SB901" and f.severity is Severity.HIGH for f in found)


# --- suppressions ------------------------------------------------------------------------------

SUPPRESSIONS = """\
apiVersion: secretsboot/v1
kind: AuditSuppressions
suppressions:
  - rule: SB301
    object: "Deployment/shop/*"
    reason: accepted for the demo namespace
    expires: 2026-12-31
  - rules: [SB508, SB502]
    object: Deployment/shop/api
    reason: old exception
    expires: 2026-01-31
  - rule: "*"
    object: Deployment/shop/api
    reason: expires today, so no longer applies
    expires: 2026-06-01
"""


def test_file_suppressions_apply_until_they_expire(tmp_path: Path) -> None:
    sups = load_suppressions(write(tmp_path, SUPPRESSIONS))
    assert [s.expires for s in sups] == [dt.date(2026, 12, 31), dt.date(2026, 1, 31), TODAY]
    result = govern(result_of(deployment(APP)), suppressions=sups, today=TODAY)
    by_rule = {f.rule_id: f for f in result.findings}
    assert by_rule["SB301"].suppressed and by_rule["SB301"].suppression_kind == "external"
    assert by_rule["SB301"].suppression_reason == "accepted for the demo namespace"
    assert not by_rule["SB508"].suppressed and not by_rule["SB502"].suppressed
    expired = [f for f in result.findings if f.rule_id == "SB902"]
    assert len(expired) == 2 and all(f.severity is Severity.INFO for f in expired)
    assert expired[0].evidence.line > 0 and "expired on 2026-01-31" in expired[0].message
    assert by_rule["SB301"] not in result.counted()


BAD_SUPPRESSIONS = [
    ("not a list", "suppressions: {a: 1}\n", "suppressions", "suppressions: [...]"),
    ("no reason", "suppressions:\n  - {rule: SB101, object: x}\n", "suppressions[0].reason", "why"),
    (
        "no object",
        "suppressions:\n  - {rule: SB101, reason: r}\n",
        "suppressions[0].object",
        "Deployment/shop/api",
    ),
    (
        "bad rule",
        "suppressions:\n  - {rule: B101, object: x, reason: r}\n",
        "suppressions[0].rule",
        "SB101",
    ),
    (
        "bad date",
        "suppressions:\n  - {rule: SB101, object: x, reason: r, expires: soon}\n",
        "suppressions[0].expires",
        "YYYY-MM-DD",
    ),
    (
        "unknown key",
        "suppressions:\n  - {rule: SB101, object: x, reason: r, until: 2026-01-01}\n",
        "suppressions[0].until",
        "expires",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "hint"),
    [c[1:] for c in BAD_SUPPRESSIONS],
    ids=[c[0] for c in BAD_SUPPRESSIONS],
)
def test_bad_suppressions_file(tmp_path: Path, body: str, field: str, hint: str) -> None:
    path = write(tmp_path, "apiVersion: secretsboot/v1\nkind: AuditSuppressions\n" + body)
    with pytest.raises(PolicyFileError) as err:
        load_suppressions(path)
    assert err.value.field == field and hint in str(err.value) and str(path) in str(err.value)


def _annotated(where: str, value: str) -> str:
    """A Deployment with a suppress annotation on its metadata or its pod template."""
    note = f'      annotations: {{secretsboot.dev/suppress: "{value}"}}\n'
    text = deployment("serviceAccountName: api\n" + APP)
    if where == "object":
        return text.replace(
            "  namespace: shop\n", "  namespace: shop\n" + note.replace("      ", "  ", 1), 1
        )
    return text.replace("      annotations: {}\n", note, 1)


INLINE_CASES = [
    ("on the workload", _annotated("object", "SB508: pinned by admission policy"), "SB508", True),
    (
        "on the pod template",
        _annotated("template", "SB508: pinned by admission policy"),
        "SB508",
        True,
    ),
    (
        "several rules",
        _annotated("object", "SB502, SB508: hardened by the platform"),
        "SB502",
        True,
    ),
    ("star", _annotated("object", "*: legacy, tracked in LEG-1"), "SB503", True),
    ("other rule untouched", _annotated("object", "SB508: pinned"), "SB502", False),
    ("no reason: unreadable", _annotated("object", "SB508"), "SB508", False),
]


@pytest.mark.parametrize(
    ("text", "rule", "suppressed"), [c[1:] for c in INLINE_CASES], ids=[c[0] for c in INLINE_CASES]
)
def test_inline_suppressions(text: str, rule: str, suppressed: bool) -> None:
    found = [f for f in run(text) if f.rule_id == rule]
    assert found and all(f.suppressed is suppressed for f in found)
    if suppressed:
        assert all(f.suppression_kind == "inSource" and f.suppression_reason for f in found)


def test_unreadable_annotation_is_reported() -> None:
    found = [f for f in run(_annotated("object", "please ignore")) if f.rule_id == "SB903"]
    assert len(found) == 1 and found[0].severity is Severity.INFO
    assert found[0].evidence.path == "metadata.annotations.secretsboot.dev/suppress"


def test_inline_suppression_on_the_evidence_object() -> None:
    text = """\
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: cfg
      namespace: shop
      annotations: {secretsboot.dev/suppress: "SB104: test fixture, not a real password"}
    data: {db-password: Tr0ub4dor-and-3}
    """
    (finding,) = [f for f in run(textwrap.dedent(text)) if f.rule_id == "SB104"]
    assert finding.suppressed and finding.suppression_reason.startswith("test fixture")


# --- baseline ----------------------------------------------------------------------------------


PRIVILEGED = "containers: [{name: app, image: app, securityContext: {privileged: true}}]\n"


def test_baseline_round_trip_marks_and_does_not_count(tmp_path: Path) -> None:
    first = result_of(deployment(PRIVILEGED))
    assert first.over_threshold()  # SB501 privileged is high
    path = tmp_path / "baseline.json"
    assert write_baseline(first, path) == len({f.fingerprint for f in first.findings})
    assert json.loads(path.read_text())["schema"] == "secretsboot.audit/baseline-v1"
    assert not list(tmp_path.glob(".baseline-*"))  # the temp file was renamed, not left
    governed = govern(result_of(deployment(PRIVILEGED)), baseline_path=path, today=TODAY)
    assert governed.findings and all(f.baseline for f in governed.findings)
    assert governed.counted() == [] and governed.over_threshold() == []
    # a workload added after the baseline still counts
    both = deployment(PRIVILEGED) + "---\n" + deployment(PRIVILEGED, name="new")
    fresh = govern(result_of(both), baseline_path=path, today=TODAY).counted()
    assert fresh and {f.workload for f in fresh} == {"Deployment/shop/new"}


def test_write_baseline_to_a_missing_directory_is_a_write_error(tmp_path: Path) -> None:
    from secretsboot.errors import WriteError

    with pytest.raises(WriteError, match="cannot write the baseline"):
        write_baseline(result_of(deployment(PRIVILEGED)), tmp_path / "no" / "b.json")


LEAKY = "containers: [{name: a, image: a:1, env: [{name: DB_PASSWORD, value: Zebra-Horse-9}]}]\n"


def test_baseline_holds_no_values_and_is_stable() -> None:
    text = baseline_text(result_of(deployment(LEAKY)))
    assert "Zebra-Horse-9" not in text and "DB_PASSWORD" not in text
    assert json.loads(text)["findings"]
    assert text == baseline_text(result_of(deployment(LEAKY)))


BAD_BASELINES = [
    ("not json", "{nope", "not JSON"),
    ("wrong schema", '{"schema": "x", "findings": []}', "not a secretsboot baseline"),
    (
        "findings not a list",
        '{"schema": "secretsboot.audit/baseline-v1", "findings": {}}',
        "findings must be a list",
    ),
    (
        "bad fingerprint",
        '{"schema": "secretsboot.audit/baseline-v1", "findings": [{"fingerprint": "xyz"}]}',
        "findings[0].fingerprint",
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in BAD_BASELINES], ids=[c[0] for c in BAD_BASELINES]
)
def test_bad_baseline(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as err:
        load_baseline(path)
    assert expected in str(err.value) and str(path) in str(err.value)
    assert "regenerate" in str(err.value)


# --- threshold, overrides, disabled rules -------------------------------------------------------


def test_threshold_overrides_and_disabled_rules(tmp_path: Path) -> None:
    text = deployment("containers: [{name: app, image: app}]\n")
    policy = Policy(
        threshold=Severity.LOW,
        disabled_rules=frozenset({"SB508"}),
        severity_overrides={"SB503": Severity.CRITICAL},
    )
    governed = govern(result_of(text), policy=policy, today=TODAY)
    rules = {f.rule_id: f for f in governed.findings}
    assert "SB508" not in rules
    assert rules["SB503"].severity is Severity.CRITICAL
    assert governed.threshold is Severity.LOW
    assert {f.rule_id for f in governed.over_threshold()} >= {"SB503", "SB301"}
    # a threshold given by the caller (the CLI flag) beats the policy's
    flagged = govern(result_of(text), policy=policy, threshold=Severity.CRITICAL, today=TODAY)
    assert flagged.threshold is Severity.CRITICAL
    assert [f.rule_id for f in flagged.over_threshold()] == ["SB503"]


def test_govern_reads_paths_and_attaches_findings(tmp_path: Path) -> None:
    policy = write(
        tmp_path,
        "apiVersion: secretsboot/v1\nkind: AuditPolicy\nseverityThreshold: medium\n",
        "p.yaml",
    )
    sups = write(tmp_path, SUPPRESSIONS, "s.yaml")
    result = govern(
        result_of(deployment(APP)), policy_path=policy, suppressions_path=sups, today=TODAY
    )
    assert result.threshold is Severity.MEDIUM
    (w,) = result.workloads
    assert w.findings and all(f.workload == w.ref for f in w.findings)
    manual = Suppression(frozenset({"*"}), "Deployment/shop/*", "all of it")
    again = govern(result_of(deployment(APP)), suppressions=[manual], today=TODAY)
    assert again.findings and all(f.suppressed for f in again.findings)
