"""RBAC authorization over the Role/RoleBinding/ClusterRole/ClusterRoleBinding objects
in the store, as the API server's RBAC authorizer decides it (allow-only rules)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from secretsboot.sandbox.kube.store import ObjectStore

ADMIN_GROUP = "system:masters"


@dataclass(frozen=True)
class UserInfo:
    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: dict[str, list[str]] = field(default_factory=dict)

    @property
    def is_admin(self) -> bool:
        return ADMIN_GROUP in self.groups


@dataclass(frozen=True)
class Attributes:
    verb: str
    api_group: str
    resource: str  # "secrets" or "serviceaccounts/token"
    namespace: str | None
    name: str | None


def _subject_matches(subject: dict[str, Any], user: UserInfo, binding_ns: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "ServiceAccount":
        ns = subject.get("namespace") or binding_ns
        return user.username == f"system:serviceaccount:{ns}:{subject.get('name')}"
    if kind == "User":
        return user.username == subject.get("name")
    if kind == "Group":
        return subject.get("name") in user.groups
    return False


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _resource_matches(rule_resources: Iterable[str] | None, resource: str) -> bool:
    """``*`` matches everything, ``*/sub`` any resource's subresource, else exact match
    (so ``serviceaccounts`` does not grant ``serviceaccounts/token``)."""
    sub = resource.partition("/")[2]
    return any(r in ("*", resource) or (sub and r == f"*/{sub}") for r in rule_resources or [])


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    if not _has(rule.get("verbs"), attrs.verb):
        return False
    if not _has(rule.get("apiGroups"), attrs.api_group):
        return False
    if not _resource_matches(rule.get("resources"), attrs.resource):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attrs.name is not None and attrs.name in names)


def _rules(store: ObjectStore, ref: dict[str, Any], binding_ns: str | None) -> list[Any]:
    kind, name = ref.get("kind"), str(ref.get("name", ""))
    try:
        if kind == "ClusterRole":
            role = store.get("clusterroles", name)
        elif kind == "Role" and binding_ns:
            role = store.get("roles", name, binding_ns)
        else:
            return []
    except Exception:  # a binding to a missing role grants nothing
        return []
    return list(role.get("rules") or [])


def authorize(store: ObjectStore, user: UserInfo, attrs: Attributes) -> bool:
    """True when ``user`` may do ``attrs`` (admins: always)."""
    if user.is_admin:
        return True
    for crb in store.list("clusterrolebindings")["items"]:
        if any(_subject_matches(s, user, None) for s in crb.get("subjects") or []) and any(
            rule_allows(r, attrs) for r in _rules(store, crb.get("roleRef") or {}, None)
        ):
            return True
    if attrs.namespace:
        for rb in store.list("rolebindings", attrs.namespace)["items"]:
            ns = rb["metadata"]["namespace"]
            if any(_subject_matches(s, user, ns) for s in rb.get("subjects") or []) and any(
                rule_allows(r, attrs) for r in _rules(store, rb.get("roleRef") or {}, ns)
            ):
                return True
    return False


#: what every authenticated user may do (system:basic-user, system:discovery)
BASIC_RULES: tuple[dict[str, Any], ...] = (
    {
        "verbs": ["create"],
        "apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
    },
    {
        "verbs": ["create"],
        "apiGroups": ["authentication.k8s.io"],
        "resources": ["selfsubjectreviews"],
    },
)
BASIC_NON_RESOURCE_RULES: tuple[dict[str, Any], ...] = (
    {
        "verbs": ["get"],
        "nonResourceURLs": [
            "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
            "/openapi/*", "/readyz", "/version", "/version/",
        ],
    },
)  # fmt: skip


def rules_for(store: ObjectStore, user: UserInfo, namespace: str | None) -> list[dict[str, Any]]:
    """The rules bound to ``user`` in ``namespace`` (a SelfSubjectRulesReview's
    ``resourceRules``), the cluster-wide ones included."""
    if user.is_admin:
        return [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, *BASIC_RULES]
    rules: list[dict[str, Any]] = list(BASIC_RULES)
    bindings: list[tuple[Any, str | None]] = [
        (b, None) for b in store.list("clusterrolebindings")["items"]
    ]
    if namespace:
        bindings += [(b, namespace) for b in store.list("rolebindings", namespace)["items"]]
    for binding, ns in bindings:
        if any(_subject_matches(s, user, ns) for s in binding.get("subjects") or []):
            for rule in _rules(store, binding.get("roleRef") or {}, ns):
                if not rule.get("nonResourceURLs"):
                    kept = ("verbs", "apiGroups", "resources", "resourceNames")
                    rules.append({k: rule[k] for k in kept if rule.get(k)})
    return rules


def forbidden_message(user: UserInfo, attrs: Attributes) -> str:
    """The API server's wording of a 403."""
    plural = attrs.resource.split("/")[0]
    what = f"{plural}.{attrs.api_group}" if attrs.api_group else plural
    target = f'{what} "{attrs.name}"' if attrs.name else what
    scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'{target} is forbidden: User "{user.username}" cannot {attrs.verb} '
        f'resource "{attrs.resource}" in API group "{attrs.api_group}" {scope}'
    )
