"""The comparison the reference architecture implies, as one fixed table per approach id.

Five properties, each ``yes``, ``partial`` (with what it amounts to) or ``no``:

- central control: the secret lives in (and is changed in) one central store;
- encryption at rest: where it is stored, it is encrypted with keys outside the cluster;
- central key management: rotation and revocation happen centrally and reach the pods;
- access control: who may read it is granted per identity, not per namespace reader;
- auditing: each read is logged by the store with the reader's identity.

=======================  ========  ===================  ========  ==============  ==================
approach                 central   encryption at rest   central   access control  auditing
                         control                        keys
=======================  ========  ===================  ========  ==============  ==================
workload-identity        yes       yes (no secret)      yes       yes (Entra)     yes (sign-ins)
keyvault-csi             yes       yes                  yes       yes             yes
vault-csi                yes       yes                  yes       yes             yes
vault-agent-injector     yes       yes                  yes       yes             yes
secretsboot-init         yes       yes                  yes       yes             yes
aad-pod-identity         yes       yes (no secret)      yes       partial (NMI)   yes (deprecated)
keyvault-flexvolume      yes       yes                  yes       partial         yes (deprecated)
external-secrets         partial   partial (etcd copy)  partial   partial (RBAC)  partial (operator)
akv2k8s                  partial   partial (etcd copy)  partial   partial (RBAC)  partial (operator)
vault-secrets-operator   partial   partial (etcd copy)  partial   partial (RBAC)  partial (operator)
secrets-store-csi        yes       yes                  yes       partial         yes
bank-vaults              yes       yes                  partial   yes             yes
secrets-init             yes       yes                  partial   yes             yes
k8s-secret-env           no        partial (etcd only)  no        partial (RBAC)  partial (API log)
k8s-secret-volume        no        partial (etcd only)  no        partial (RBAC)  partial (API log)
literal-credential       no        no                   no        no              no
=======================  ========  ===================  ========  ==============  ==================

An approach id not in the table (a newer classifier label) is shown as ``unknown``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from secretsboot.audit.model import AuditResult, Finding, Severity, Workload
from secretsboot.audit.report._stream import Stream

PROPERTIES: tuple[tuple[str, str], ...] = (
    ("central_control", "central control"),
    ("encryption_at_rest", "encryption at rest"),
    ("central_key_management", "central key management"),
    ("access_control", "access control"),
    ("auditing", "auditing"),
)


@dataclass(frozen=True, slots=True)
class Cell:
    value: str  # yes | partial | no | unknown
    note: str = ""

    @property
    def text(self) -> str:
        return f"{self.value} ({self.note})" if self.note else self.value


def _row(*cells: tuple[str, str] | str) -> tuple[Cell, ...]:
    return tuple(Cell(c) if isinstance(c, str) else Cell(*c) for c in cells)


_ETCD = ("partial", "etcd encryption at rest only")
_RBAC = ("partial", "Kubernetes RBAC on the Secret")
_API_AUDIT = ("partial", "Kubernetes API audit log only")
_COPY = ("partial", "a copy lives in a Kubernetes Secret")

TABLE: dict[str, tuple[Cell, ...]] = {
    "workload-identity": _row(
        "yes",
        ("yes", "no secret is stored"),
        ("yes", "federated credential, nothing to rotate"),
        ("yes", "Azure RBAC per identity"),
        ("yes", "Entra ID sign-in and Key Vault logs"),
    ),
    "keyvault-csi": _row("yes", "yes", "yes", "yes", "yes"),
    "vault-csi": _row("yes", "yes", "yes", "yes", "yes"),
    "vault-agent-injector": _row("yes", "yes", "yes", "yes", "yes"),
    "secretsboot-init": _row("yes", "yes", "yes", "yes", "yes"),
    "aad-pod-identity": _row(
        "yes",
        ("yes", "no secret is stored"),
        "yes",
        ("partial", "node-wide NMI; any pod with the selector label gets the identity"),
        ("yes", "deprecated: no fixes since 2023"),
    ),
    "keyvault-flexvolume": _row(
        "yes",
        "yes",
        "yes",
        ("partial", "pod identity or a shared service principal"),
        ("yes", "deprecated: no fixes"),
    ),
    "external-secrets": _row(
        _COPY,
        _ETCD,
        ("partial", "rotation syncs on refreshInterval"),
        _RBAC,
        ("partial", "the store logs the operator, not the pod"),
    ),
    "akv2k8s": _row(
        _COPY,
        _ETCD,
        ("partial", "rotation syncs on the controller's schedule"),
        _RBAC,
        ("partial", "Key Vault logs the controller, not the pod"),
    ),
    "vault-secrets-operator": _row(
        _COPY,
        _ETCD,
        ("partial", "rotation syncs on refreshAfter"),
        _RBAC,
        ("partial", "Vault logs the operator, not the pod"),
    ),
    "secrets-store-csi": _row("yes", "yes", "yes", ("partial", "provider not identified"), "yes"),
    "bank-vaults": _row(
        "yes", "yes", ("partial", "env injected at start: rotation needs a restart"), "yes", "yes"
    ),
    "secrets-init": _row(
        "yes", "yes", ("partial", "env injected at start: rotation needs a restart"), "yes", "yes"
    ),
    "k8s-secret-env": _row("no", _ETCD, "no", _RBAC, _API_AUDIT),
    "k8s-secret-volume": _row("no", _ETCD, "no", _RBAC, _API_AUDIT),
    "literal-credential": _row("no", "no", "no", "no", "no"),
}
UNKNOWN = _row("unknown", "unknown", "unknown", "unknown", "unknown")

# which rules speak about which approach, for the matrix cells
RULE_APPROACHES: dict[str, tuple[str, ...]] = {
    "SB101": ("k8s-secret-env",),
    "SB102": ("literal-credential",),
    "SB103": ("literal-credential",),
    "SB201": ("keyvault-csi", "vault-csi"),
    "SB202": ("keyvault-flexvolume",),
    "SB211": ("aad-pod-identity",),
    "SB212": ("keyvault-flexvolume",),
    "SB221": ("workload-identity",),
    "SB231": ("vault-agent-injector",),
    "SB401": ("k8s-secret-env", "k8s-secret-volume"),
}


def cells(approach: str) -> tuple[Cell, ...]:
    return TABLE.get(approach, UNKNOWN)


def findings_by_workload(result: AuditResult) -> dict[str, list[Finding]]:
    """Each workload's findings by its identity (:attr:`Workload.uid`: file, document,
    Kind/namespace/name), attached to it or naming it: two same-named workloads in two
    files (a base and an overlay) never share findings."""
    out: dict[str, list[Finding]] = {}
    seen: set[int] = set()
    for w in result.workloads:
        uid = w.uid
        for f in w.findings:
            if id(f) not in seen:
                seen.add(id(f))
                out.setdefault(uid, []).append(f)
    for f in result.findings:
        if f.workload_id and id(f) not in seen:
            seen.add(id(f))
            out.setdefault(f.workload_id, []).append(f)
    return out


def worst(findings: list[Finding]) -> Severity | None:
    active = [f.severity for f in findings if not f.suppressed and not f.baseline]
    return max(active) if active else None


def approach_worst(findings: list[Finding], approach: str) -> Severity | None:
    """The worst active finding that speaks about ``approach`` for this workload."""
    return worst([f for f in findings if approach in RULE_APPROACHES.get(f.rule_id, ())])


def approaches_in(result: AuditResult) -> list[str]:
    """Every approach id any workload uses, in table order, then unknown ones sorted."""
    return table_order(result.approach_ids())


def table_order(used: set[str]) -> list[str]:
    """Approach ids in table order, then unknown ones sorted."""
    known = [a for a in TABLE if a in used]
    return known + sorted(used - set(TABLE))


@dataclass(frozen=True, slots=True)
class ServiceRow:
    workload: Workload
    approaches: list[str]
    worst: Severity | None
    findings: list[Finding]


def iter_services(
    result: AuditResult, by_ref: dict[str, list[Finding]] | None = None
) -> Iterator[ServiceRow]:
    """One row per workload, sorted by namespace and name, built as it is read."""
    if by_ref is None:
        by_ref = findings_by_workload(result)
    for w in sorted(result.workloads, key=service_key):
        found = by_ref.get(w.uid, [])
        yield ServiceRow(w, w.approach_ids, worst(found), found)


def service_key(w: Workload) -> tuple[str, str, str, str]:
    """The order of the comparison's services: namespace, name, kind, file."""
    return (w.namespace, w.name, w.kind, w.file)


def service_doc(row: ServiceRow) -> dict[str, object]:
    """One service of the JSON comparison."""
    return {
        "workload": row.workload.ref,
        "id": row.workload.uid,
        "approaches": row.approaches,
        "worst": row.worst.label if row.worst is not None else None,
    }


def services(result: AuditResult) -> list[ServiceRow]:
    return list(iter_services(result))


def comparison_document(
    result: AuditResult,
    *,
    by_ref: dict[str, list[Finding]] | None = None,
    stream: bool = False,
    services: Stream | None = None,
) -> dict[str, object]:
    """The comparison as plain data (the ``comparison`` member of the JSON report);
    ``stream``: its ``services`` as a :class:`~secretsboot.audit.report._stream.Stream`;
    ``services``: that Stream, given (already encoded, by a sharded audit)."""
    rows = (service_doc(row) for row in iter_services(result, by_ref))
    return {
        "properties": [key for key, _ in PROPERTIES],
        "approaches": [
            {
                "id": approach,
                **{
                    key: {"value": cell.value, "note": cell.note}
                    for (key, _), cell in zip(PROPERTIES, cells(approach), strict=True)
                },
            }
            for approach in approaches_in(result)
        ],
        "services": services or (Stream(rows) if stream else list(rows)),
    }
