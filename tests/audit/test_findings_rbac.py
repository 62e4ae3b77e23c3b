"""SB401-SB402: who can read the Secrets a workload depends on."""

from __future__ import annotations

import pytest
from _audit_case import deployment, rule_hits

USES_SECRET = (
    "serviceAccountName: api\ncontainers:\n  - name: app\n    image: app:1\n"
    "    env: [{name: DB, valueFrom: {secretKeyRef: {name: db, key: pw}}}]\n"
)
NO_SECRET = "serviceAccountName: api\ncontainers: [{name: app, image: app:1}]\n"


def role(rules: str, kind: str = "Role", name: str = "r", ns: str = "shop") -> str:
    meta = f"{{name: {name}, namespace: {ns}}}" if kind == "Role" else f"{{name: {name}}}"
    head = "---\napiVersion: rbac.authorization.k8s.io/v1\n"
    return f"{head}kind: {kind}\nmetadata: {meta}\nrules: {rules}\n"


def binding(
    role_kind: str = "Role",
    role_name: str = "r",
    kind: str = "RoleBinding",
    ns: str = "shop",
    subjects: str = "[{kind: Group, name: developers}]",
) -> str:
    meta = f"{{name: b, namespace: {ns}}}" if kind == "RoleBinding" else "{name: b}"
    return (
        f"---\napiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\nmetadata: {meta}\n"
        f"roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {role_kind}, name: {role_name}}}\n"
        f"subjects: {subjects}\n"
    )


READ = '[{apiGroups: [""], resources: [secrets], verbs: [get, list]}]'
WILD_VERBS = '[{apiGroups: [""], resources: [secrets], verbs: ["*"]}]'
WILD_RES = '[{apiGroups: ["*"], resources: ["*"], verbs: [get]}]'
WRITE_ONLY = '[{apiGroups: [""], resources: [secrets], verbs: [create, delete]}]'
OTHER_GROUP = "[{apiGroups: [apps], resources: [secrets], verbs: [get]}]"
PODS = '[{apiGroups: [""], resources: [pods], verbs: [get, list]}]'
NAMED_DB = '[{apiGroups: [""], resources: [secrets], resourceNames: [db], verbs: [get]}]'
NAMED_OTHER = '[{apiGroups: [""], resources: [secrets], resourceNames: [other], verbs: [get]}]'
APP = deployment(USES_SECRET)

CASES = [
    ("Role get/list in namespace", APP + role(READ) + binding(), "SB401", ["medium"]),
    ("verbs wildcard", APP + role(WILD_VERBS) + binding(), "SB401", ["medium"]),
    ("resources and apiGroups wildcard", APP + role(WILD_RES) + binding(), "SB401", ["medium"]),
    ("write-only verbs", APP + role(WRITE_ONLY) + binding(), "SB401", []),
    ("other api group", APP + role(OTHER_GROUP) + binding(), "SB401", []),
    ("pods only", APP + role(PODS) + binding(), "SB401", []),
    ("resourceNames includes the secret", APP + role(NAMED_DB) + binding(), "SB401", ["medium"]),
    ("resourceNames excludes the secret", APP + role(NAMED_OTHER) + binding(), "SB401", []),
    (
        "binding in another namespace",
        APP + role(READ, ns="other") + binding(ns="other"),
        "SB401",
        [],
    ),
    (
        "ClusterRole bound by a RoleBinding in the namespace",
        APP + role(READ, kind="ClusterRole") + binding(role_kind="ClusterRole"),
        "SB401",
        ["medium"],
    ),
    (
        "built-in edit ClusterRole",
        APP + binding(role_kind="ClusterRole", role_name="edit"),
        "SB401",
        ["medium"],
    ),
    (
        "built-in view ClusterRole cannot read secrets",
        APP + binding(role_kind="ClusterRole", role_name="view"),
        "SB401",
        [],
    ),
    (
        "ClusterRoleBinding reaches every namespace",
        APP
        + role(READ, kind="ClusterRole")
        + binding(role_kind="ClusterRole", kind="ClusterRoleBinding"),
        "SB401",
        ["medium"],
    ),
    ("workload without secrets", deployment(NO_SECRET) + role(READ) + binding(), "SB401", []),
    (
        "SB402 ClusterRoleBinding cluster-wide",
        role(READ, kind="ClusterRole")
        + binding(role_kind="ClusterRole", kind="ClusterRoleBinding"),
        "SB402",
        ["high"],
    ),
    (
        "SB402 ClusterRoleBinding narrowed by resourceNames",
        role(NAMED_DB, kind="ClusterRole")
        + binding(role_kind="ClusterRole", kind="ClusterRoleBinding"),
        "SB402",
        [],
    ),
    ("SB402 RoleBinding is namespaced", role(READ) + binding(), "SB402", []),
]


@pytest.mark.parametrize(
    ("text", "rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_rbac(text: str, rule: str, expected: list[str]) -> None:
    assert [h.severity.label for h in rule_hits(text, rule)] == expected


def test_sb401_names_subjects_and_secret() -> None:
    subjects = (
        "[{kind: Group, name: developers}, {kind: ServiceAccount, name: ci, namespace: tools}]"
    )
    (hit,) = rule_hits(APP + role(READ) + binding(subjects=subjects), "SB401")
    assert "Group/developers" in hit.message
    assert "ServiceAccount/tools/ci" in hit.message
    assert "db" in hit.message
    assert hit.workload == "Deployment/shop/api"
    assert hit.evidence.object == "RoleBinding/shop/b"
