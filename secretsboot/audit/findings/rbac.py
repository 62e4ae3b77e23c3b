"""SB401-SB402: who else can read the Secrets a workload depends on.

SB401 (medium), for a workload that consumes Kubernetes Secrets (env, volumes,
projected volumes, a CSI ``nodePublishSecretRef``, a FlexVolume ``secretRef``):
each binding that lets subjects get/list/watch those Secrets in its namespace -
a Role bound there, a ClusterRole bound there by a RoleBinding, or a
ClusterRoleBinding. Wildcards count (``verbs: ["*"]``, ``resources: ["*"]``,
``apiGroups: ["*"]``); ``resourceNames`` narrows a grant to the Secrets it lists::

    kind: Role
    rules: [{apiGroups: [""], resources: ["secrets"], verbs: ["get", "list"]}]
    ---
    kind: RoleBinding
    subjects: [{kind: Group, name: developers}]

SB402 (high), a ClusterRoleBinding granting Secret reads in every namespace, with
no ``resourceNames``::

    kind: ClusterRoleBinding
    roleRef: {kind: ClusterRole, name: secret-reader}
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, PodView, Rule, as_dict, as_list, evidence_at
from secretsboot.audit.findings._rbac import Grant, secret_read_grants
from secretsboot.audit.model import Finding, Severity

SB401 = Rule(
    id="SB401",
    name="secret-readers",
    title="Other subjects can read this workload's Secrets",
    severity=Severity.MEDIUM,
    description=(
        "RBAC lets the listed subjects get, list or watch the Kubernetes Secrets this workload "
        "depends on. Every such subject is a path to the workload's credentials."
    ),
    fix=(
        "Narrow the role: drop list/watch, name the Secrets in resourceNames, bind it only to "
        "the ServiceAccounts that need it; better, keep the secrets in Key Vault and mount "
        "them with the CSI driver so no Kubernetes Secret exists."
    ),
)
SB402 = Rule(
    id="SB402",
    name="cluster-wide-secret-read",
    title="ClusterRoleBinding grants Secret reads in every namespace",
    severity=Severity.HIGH,
    description=(
        "A ClusterRoleBinding to a role that reads Secrets gives its subjects every Secret of "
        "the cluster, present and future."
    ),
    fix=(
        "Replace the ClusterRoleBinding with RoleBindings in the namespaces that need it, and "
        "narrow the role with resourceNames."
    ),
)

RULES = (SB401, SB402)


def secrets_used(pod: PodView) -> set[str]:
    """Names of the Kubernetes Secrets the pod references."""
    names: set[str] = set()
    for c in pod.containers():
        for env in as_list(c.body.get("env")):
            ref = as_dict(as_dict(as_dict(env).get("valueFrom")).get("secretKeyRef"))
            if ref.get("name"):
                names.add(str(ref["name"]))
        for src in as_list(c.body.get("envFrom")):
            ref = as_dict(as_dict(src).get("secretRef"))
            if ref.get("name"):
                names.add(str(ref["name"]))
    for _path, vol in pod.volumes():
        if as_dict(vol.get("secret")).get("secretName"):
            names.add(str(vol["secret"]["secretName"]))
        for src in as_list(as_dict(vol.get("projected")).get("sources")):
            if as_dict(as_dict(src).get("secret")).get("name"):
                names.add(str(src["secret"]["name"]))
        for holder, key in (("csi", "nodePublishSecretRef"), ("flexVolume", "secretRef")):
            ref = as_dict(as_dict(vol.get(holder)).get(key))
            if ref.get("name"):
                names.add(str(ref["name"]))
    return names


def _where(grant: Grant) -> str:
    via = f"{grant.role_kind} '{grant.role_name}'"
    return f"{grant.binding.kind} '{grant.binding.name}' ({via})"


def _names(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def detect(ctx: Context) -> Iterator[Finding]:
    # sorted once, so every workload's list of grants comes out in file order
    grants = sorted(
        secret_read_grants(ctx), key=lambda g: (g.binding.file, g.binding.line, g.binding.ref)
    )
    cluster_wide: list[Grant] = []
    by_namespace: dict[str, list[Grant]] = {}
    for grant in grants:
        if grant.cluster_wide:
            cluster_wide.append(grant)
            if grant.secret_names is None:
                yield SB402.finding(
                    evidence=evidence_at(grant.binding, ("roleRef",), grant.role_name),
                    message=(
                        f"{_where(grant)} lets {_names(list(grant.subjects)) or 'no subject'} "
                        "read Secrets in every namespace"
                    ),
                )
        else:
            by_namespace.setdefault(grant.namespace, []).append(grant)
    for pod in ctx.pods:
        used = secrets_used(pod)
        if not used:
            continue
        subjects: set[str] = set()
        readable: set[str] = set()
        via: list[Grant] = []
        for grant in (*by_namespace.get(pod.namespace, ()), *cluster_wide):
            covered = {s for s in used if grant.covers(pod.namespace, s)}
            if covered and grant.subjects:
                subjects.update(grant.subjects)
                readable |= covered
                via.append(grant)
        if not via:
            continue
        first = via[0]
        where = ", ".join(_where(g) for g in via[:3])
        if len(via) > 3:
            where += f" and {len(via) - 3} more"
        yield pod.finding(
            SB401,
            evidence=evidence_at(
                first.binding,
                ("subjects",),
                f"{len(subjects)} subject(s) via {len(via)} binding(s)",
            ),
            message=(
                f"{_names(sorted(subjects))} can read Secret(s) {_names(sorted(readable))} "
                f"via {where}"
            ),
        )
