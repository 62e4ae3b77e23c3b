"""The spec as desired state: every object each system should hold, per service.

:func:`build` is pure: it takes the spec and what is known of the managed
identities (client and principal ids exist only once Azure created them) and
returns :class:`DesiredState`. Values that depend on an identity not created yet
are :data:`~secretsboot.provision.model.KNOWN_AFTER_APPLY`; apply builds again
after the identities exist.

>>> from secretsboot.spec import load_spec
>>> state = build(load_spec("examples/drone-delivery.yaml"), identities={})
>>> sorted({d.key.kind for d in state.objects if d.key.system == "vault"})
['policy', 'role']

What each system holds is built in :mod:`.desired_azure`, :mod:`.desired_kube` and
:mod:`.desired_vault`; what a service is granted on each secret store is found in
:data:`GRANTS`, keyed by the store's URI scheme. Names come from :mod:`.names`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsboot.provision import desired_azure as az
from secretsboot.provision import desired_kube as kube
from secretsboot.provision.desired_kube import fetch_config_yaml
from secretsboot.provision.desired_vault import vault_grants, vault_policy_text
from secretsboot.provision.model import (
    KNOWN_AFTER_APPLY,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVICE_LABEL,
    SPEC_LABEL,
    Desired,
    Note,
    ResourceKey,
    System,
)
from secretsboot.provision.names import (
    fic_name,
    k8s_object_name,
    role_assignment_name,
    role_definition_id,
    vault_policy_name,
    vault_policy_prefix,
    vault_role_name,
)
from secretsboot.secret import FALLBACK_PLACEHOLDER, SecretValue
from secretsboot.spec import Delivery, Identity, ServiceSpec, SourceRef, Spec

__all__ = [
    "FIC_LIMIT",
    "GRANTS",
    "PLACEHOLDER",
    "DesiredState",
    "IdentityInfo",
    "build",
    "fetch_config_yaml",
    "fic_name",
    "k8s_object_name",
    "role_assignment_name",
    "role_definition_id",
    "vault_policy_name",
    "vault_policy_prefix",
    "vault_policy_text",
    "vault_role_name",
]

FIC_LIMIT = 20
PLACEHOLDER = FALLBACK_PLACEHOLDER


@dataclass(frozen=True)
class IdentityInfo:
    """What Azure assigned to a user-assigned managed identity."""

    client_id: str
    principal_id: str
    resource_id: str


@dataclass
class DesiredState:
    objects: list[Desired]
    notes: list[Note] = field(default_factory=list)
    # identity name -> services using it (federated credentials count per identity)
    identity_users: dict[str, list[str]] = field(default_factory=dict)
    fetch_configs: dict[str, str] = field(default_factory=dict)  # service -> fetch.yaml text
    #: (service, namespace, secret, key) of each k8s:// primary: the operator's to create
    k8s_primaries: list[tuple[str, str, str, str]] = field(default_factory=list)


Grant = Callable[["Builder", ServiceSpec, str, list[SourceRef]], None]

#: What a service is granted on each secret store, by the store's URI scheme.
GRANTS: dict[str, Grant] = {
    "keyvault": az.keyvault_grants,  # a role assignment, or an access policy
    "vault": vault_grants,  # a policy and an auth role
    "k8s": kube.k8s_grants,  # a Role with resourceNames (and the fallback Secrets)
}


@dataclass
class Builder:
    """Collects the desired objects of one build; the per-system builders add to it."""

    spec: Spec
    subscription_id: str
    identities: Mapping[str, IdentityInfo]
    fallback_values: Mapping[tuple[str, str, str], SecretValue]
    configmaps: bool
    primary_secrets: set[tuple[str, str]] = field(default_factory=set)  # (namespace, name)
    objects: dict[Any, Desired] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    identity_users: dict[str, list[str]] = field(default_factory=dict)
    fetch_configs: dict[str, str] = field(default_factory=dict)
    fetch_cache: dict[str, str] = field(default_factory=dict)

    def add(self, d: Desired, merge: Callable[[Desired, Desired], None] | None = None) -> None:
        old = self.objects.get(d.key)
        if old is None:
            self.objects[d.key] = d
            return
        old.services = tuple(sorted({*old.services, *d.services}))
        if merge is not None:
            merge(old, d)

    def labels(self, service: str | None) -> dict[str, str]:
        out = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SPEC_LABEL: self.spec.metadata.name}
        if service is not None:
            out[SERVICE_LABEL] = service
        return out

    def ident(self, name: str, attr: str) -> str:
        info = self.identities.get(name)
        return getattr(info, attr) if info is not None else KNOWN_AFTER_APPLY

    @property
    def azure_rg(self) -> str:
        assert self.spec.azure is not None  # noqa: S101 - callers check
        return self.spec.azure.resource_group

    def vault_rg(self, vault: str) -> str:
        assert self.spec.azure is not None  # noqa: S101
        kv = self.spec.azure.key_vault(vault)
        return (kv.resource_group if kv else None) or self.azure_rg

    def service(self, svc: ServiceSpec) -> None:
        ns = svc.resolved_namespace(self.spec)
        by_scheme: dict[str, list[SourceRef]] = {}
        for secret in svc.secrets:
            for ref in secret.sources:
                by_scheme.setdefault(ref.scheme, []).append(ref)
        self.namespace(ns, svc.name)
        if svc.identity is not Identity.NONE:
            az.azure_identity(self, svc)
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            az.federated_credential(self, svc, ns)
        if svc.identity is Identity.POD_IDENTITY:
            az.pod_identity(self, svc, ns)
        kube.service_account(self, svc, ns, by_scheme.get("k8s", []), by_scheme.get("vault", []))
        if svc.delivery is Delivery.CSI:
            kube.secret_provider_classes(self, svc, ns)
        if svc.delivery is Delivery.FLEXVOLUME:
            kube.flexvolume_note(self, svc)
        if svc.delivery in (Delivery.INIT_CONTAINER, Delivery.ENV):
            kube.fetch_config(self, svc, ns)
        for scheme, refs in by_scheme.items():
            grant = GRANTS.get(scheme)  # a store that needs no grant has no entry
            if grant is not None:
                grant(self, svc, ns, refs)

    def namespace(self, ns: str, service: str) -> None:
        self.add(
            Desired(
                ResourceKey(System.KUBERNETES, "Namespace", ns),
                {},
                (service,),
                rank=0,
                extra={"labels": self.labels(None)},
            )
        )


def build(
    spec: Spec,
    *,
    identities: Mapping[str, IdentityInfo],
    subscription_id: str | None = None,
    only: str | None = None,
    fallback_values: Mapping[tuple[str, str, str], SecretValue] | None = None,
    configmaps: bool = True,
    fetch_cache: dict[str, str] | None = None,
) -> DesiredState:
    """Desired state of ``spec`` (or of one service, ``only``).

    ``identities`` maps identity names to what Azure assigned them; ``fallback_values``
    maps ``(namespace, secret, key)`` to values read from the primary source
    (``--sync-fallbacks``). ``fetch_cache`` (service -> fetch.yaml) lets repeated builds
    of one spec render each fetch config once.
    """
    sub = subscription_id or (spec.azure.subscription_id if spec.azure else "")
    primaries = kube.primary_secrets(spec)
    b = Builder(
        spec,
        sub,
        identities,
        fallback_values or {},
        configmaps=configmaps,
        primary_secrets={(ns, name) for _, ns, name, _ in primaries},
    )
    if fetch_cache is not None:
        b.fetch_cache = fetch_cache
    services = [spec.service(only)] if only else spec.services
    for svc in services:
        b.service(svc)
    # Identity users count every service of the spec, even with --only (FIC limit).
    if only:
        b.identity_users = {}
        for svc in spec.services:
            if svc.identity is not Identity.NONE:
                b.identity_users.setdefault(svc.identity_name, []).append(svc.name)
    mine = {s.name for s in services}
    return DesiredState(
        list(b.objects.values()),
        b.notes,
        b.identity_users,
        b.fetch_configs,
        [p for p in primaries if p[0] in mine],
    )
