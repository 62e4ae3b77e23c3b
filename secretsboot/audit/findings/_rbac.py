"""RBAC reading for the detectors: who may read Secrets, and which ServiceAccounts are bound.

Pure functions over the :class:`~secretsboot.audit.findings._base.Context`. A grant
is a (Cluster)RoleBinding whose role has a rule with apiGroups ``""``/``*``,
resources ``secrets``/``*`` and a verb among get, list, watch, ``*``; a
rule's ``resourceNames`` narrows it to those Secrets. The built-in ClusterRoles
``cluster-admin``, ``admin`` and ``edit`` read Secrets too; a role that is
neither in the input nor built in is unknown and never reported.
"""

from __future__ import annotations

from dataclasses import dataclass

from secretsboot.audit.findings._base import Context, as_dict, as_list, same_namespace
from secretsboot.audit.model import FieldPath, Manifest

READ_VERBS = frozenset({"get", "list", "watch", "*"})
BUILTIN_SECRET_READERS = frozenset({"cluster-admin", "admin", "edit"})


@dataclass(frozen=True, slots=True)
class Grant:
    """A binding that lets its subjects read Secrets."""

    binding: Manifest
    role_kind: str
    role_name: str
    cluster_wide: bool  # a ClusterRoleBinding: every namespace
    namespace: str  # the binding's namespace (RoleBinding), '' when cluster-wide
    subjects: tuple[str, ...]
    secret_names: frozenset[str] | None  # None: every Secret
    rule_path: FieldPath | None  # where in the role (None for a built-in role)
    role: Manifest | None

    def covers(self, namespace: str, secret: str | None = None) -> bool:
        # strict: a RoleBinding in "payments" says nothing about a workload whose manifest
        # names no namespace (it may be applied anywhere); both unnamed count as together
        if not self.cluster_wide and self.namespace != namespace:
            return False
        return secret is None or self.secret_names is None or secret in self.secret_names


def _reads_secrets(rule: dict[str, object]) -> bool:
    groups = {str(g) for g in as_list(rule.get("apiGroups"))}
    resources = {str(r) for r in as_list(rule.get("resources"))}
    verbs = {str(v) for v in as_list(rule.get("verbs"))}
    return (
        bool(groups & {"", "*"}) and bool(resources & {"secrets", "*"}) and bool(verbs & READ_VERBS)
    )


def role_secret_reads(role: Manifest) -> tuple[FieldPath | None, frozenset[str] | None] | None:
    """Whether a Role/ClusterRole reads Secrets: (first rule path, names or None for all)."""
    names: set[str] = set()
    first: FieldPath | None = None
    for i, rule in enumerate(as_list(role.body.get("rules"))):
        rule = as_dict(rule)
        if not _reads_secrets(rule):
            continue
        first = first or ("rules", i)
        listed = [str(n) for n in as_list(rule.get("resourceNames"))]
        if not listed:
            return ("rules", i), None
        names.update(listed)
    return (first, frozenset(names)) if first is not None else None


def subject_label(subject: dict[str, object], default_ns: str) -> str:
    kind = str(subject.get("kind") or "?")
    name = str(subject.get("name") or "?")
    if kind == "ServiceAccount":
        return f"ServiceAccount/{subject.get('namespace') or default_ns or 'default'}/{name}"
    return f"{kind}/{name}"


def _subjects(binding: Manifest) -> list[dict[str, object]]:
    return [as_dict(s) for s in as_list(binding.body.get("subjects"))]


def secret_read_grants(ctx: Context) -> list[Grant]:
    """Every binding that lets its subjects read Secrets (built once per run)."""
    cached: list[Grant] | None = ctx._memo.get("secret_read_grants")
    if cached is None:
        cached = ctx._memo["secret_read_grants"] = _secret_read_grants(ctx)
    return cached


def _secret_read_grants(ctx: Context) -> list[Grant]:
    out: list[Grant] = []
    for binding in ctx.every("RoleBinding", "ClusterRoleBinding"):
        ref = as_dict(binding.body.get("roleRef"))
        role_kind, role_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        cluster_wide = binding.kind == "ClusterRoleBinding"
        role: Manifest | None = None
        if role_kind == "Role" and not cluster_wide:
            role = ctx.named("Role", binding.namespace, role_name)
        elif role_kind == "ClusterRole":
            role = ctx.named("ClusterRole", "", role_name)
        if role is not None:
            reads = role_secret_reads(role)
            if reads is None:
                continue
            rule_path, names = reads
        elif role_kind == "ClusterRole" and role_name in BUILTIN_SECRET_READERS:
            rule_path, names = None, None
        else:
            continue
        out.append(
            Grant(
                binding=binding,
                role_kind=role_kind,
                role_name=role_name,
                cluster_wide=cluster_wide,
                namespace="" if cluster_wide else binding.namespace,
                subjects=tuple(subject_label(s, binding.namespace) for s in _subjects(binding)),
                secret_names=names,
                rule_path=rule_path,
                role=role,
            )
        )
    return out


def binds_service_account(binding: Manifest, namespace: str, name: str) -> bool:
    """Whether ``binding`` names the ServiceAccount (directly or by its groups)."""
    for s in _subjects(binding):
        kind = s.get("kind")
        if kind == "ServiceAccount":
            sa_ns = str(s.get("namespace") or binding.namespace)
            if s.get("name") == name and same_namespace(sa_ns, namespace):
                return True
        elif kind == "Group":
            group = str(s.get("name") or "")
            if group == "system:serviceaccounts" or (
                group.startswith("system:serviceaccounts:")
                and same_namespace(group.rsplit(":", 1)[1], namespace)
            ):
                return True
    return False


def _bindings_by_subject(ctx: Context) -> dict[str, list[Manifest]]:
    """Bindings by ServiceAccount name ('' for group subjects), built once per run."""
    cached: dict[str, list[Manifest]] | None = ctx._memo.get("bindings_by_subject")
    if cached is None:
        cached = {}
        for b in ctx.every("RoleBinding", "ClusterRoleBinding"):
            for s in _subjects(b):
                key = str(s.get("name") or "") if s.get("kind") == "ServiceAccount" else ""
                bucket = cached.setdefault(key, [])
                if not bucket or bucket[-1] is not b:
                    bucket.append(b)
        ctx._memo["bindings_by_subject"] = cached
    return cached


def service_account_bindings(ctx: Context, namespace: str, name: str) -> list[Manifest]:
    """The (Cluster)RoleBindings naming this ServiceAccount, directly or by its groups."""
    index = _bindings_by_subject(ctx)
    candidates = index.get(name, []) + index.get("", [])
    return [b for b in candidates if binds_service_account(b, namespace, name)]
