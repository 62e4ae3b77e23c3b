"""SB301-SB303: default and shared ServiceAccounts, token automount precedence."""

from __future__ import annotations

import pytest
from _audit_case import deployment, rule_hits

APP = "containers: [{name: app, image: app:1}]\n"


def sa(name: str = "orders", extra: str = "") -> str:
    meta = f"{{name: {name}, namespace: shop}}"
    return f"---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {meta}\n{extra}"


BINDING = """---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: orders-reader, namespace: shop}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pods-reader}
subjects: [{kind: ServiceAccount, name: orders}]
"""

CASES = [
    ("SB301 no serviceAccountName", deployment(APP), "SB301", ["low"]),
    ("SB301 explicit default", deployment("serviceAccountName: default\n" + APP), "SB301", ["low"]),
    ("SB301 dedicated SA", deployment("serviceAccountName: orders\n" + APP), "SB301", []),
    (
        "SB302 one SA for two workloads",
        deployment("serviceAccountName: shop\n" + APP, name="orders")
        + "---\n"
        + deployment("serviceAccountName: shop\n" + APP, name="billing"),
        "SB302",
        ["low", "low"],
    ),
    (
        "SB302 same SA name in two namespaces",
        deployment("serviceAccountName: shop\n" + APP, name="orders", namespace="a")
        + "---\n"
        + deployment("serviceAccountName: shop\n" + APP, name="orders", namespace="b"),
        "SB302",
        [],
    ),
    (
        "SB303 default: token mounted, no RBAC",
        deployment("serviceAccountName: orders\n" + APP),
        "SB303",
        ["low"],
    ),
    (
        "SB303 pod disables automount",
        deployment("serviceAccountName: orders\nautomountServiceAccountToken: false\n" + APP),
        "SB303",
        [],
    ),
    (
        "SB303 SA disables automount",
        deployment("serviceAccountName: orders\n" + APP)
        + sa(extra="automountServiceAccountToken: false\n"),
        "SB303",
        [],
    ),
    (
        "SB303 pod true overrides SA false",
        deployment("serviceAccountName: orders\nautomountServiceAccountToken: true\n" + APP)
        + sa(extra="automountServiceAccountToken: false\n"),
        "SB303",
        ["low"],
    ),
    (
        "SB303 pod false overrides SA true",
        deployment("serviceAccountName: orders\nautomountServiceAccountToken: false\n" + APP)
        + sa(extra="automountServiceAccountToken: true\n"),
        "SB303",
        [],
    ),
    (
        "SB303 SA bound to a role: needs the API",
        deployment("serviceAccountName: orders\n" + APP) + BINDING,
        "SB303",
        [],
    ),
    (
        "SB303 workload identity alone is not an API need, its projected token no finding",
        deployment(
            "serviceAccountName: orders\nautomountServiceAccountToken: false\n" + APP,
            labels='azure.workload.identity/use: "true"\n',
        )
        + sa(extra="metadata2: {}\n"),
        "SB303",
        [],
    ),
]


@pytest.mark.parametrize(
    ("text", "rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_service_accounts(text: str, rule: str, expected: list[str]) -> None:
    assert [h.severity.label for h in rule_hits(text, rule)] == expected


def test_sb303_evidence_points_where_automount_was_decided() -> None:
    text = deployment("serviceAccountName: orders\nautomountServiceAccountToken: true\n" + APP)
    (hit,) = rule_hits(text, "SB303")
    assert hit.evidence.path == "spec.template.spec.automountServiceAccountToken"
    assert "the pod sets it" in hit.message
