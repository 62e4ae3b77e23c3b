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

Names are deterministic everywhere (identity, federated credential, role
assignment GUID, Kubernetes objects, Vault policy), so a re-run after a crash
finds what the first run created instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from secretsboot.contract import FetchConfig
from secretsboot.provision.model import (
    ANY_VALUE,
    AZURE_MANAGED_BY_TAG,
    AZURE_SPEC_TAG,
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
from secretsboot.secret import FALLBACK_PLACEHOLDER, SecretValue
from secretsboot.spec import (
    WORKLOAD_IDENTITY_AUDIENCE,
    Delivery,
    Identity,
    KeyVaultMode,
    ServiceSpec,
    SourceRef,
    Spec,
    VaultAuthMethod,
)

KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
FIC_LIMIT = 20
PLACEHOLDER = FALLBACK_PLACEHOLDER
# uuid5 namespace of secretsboot's role-assignment names (fixed forever: changing it
# would make every existing assignment look foreign).
_ASSIGNMENT_NS = uuid.UUID("6f1d2c3e-5b4a-5e8f-9a7b-0c1d2e3f4a5b")
_WI_CLIENT_ID = "azure.workload.identity/client-id"
_WI_TENANT_ID = "azure.workload.identity/tenant-id"


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


# --- names -------------------------------------------------------------------------------


def identity_resource_id(subscription_id: str, resource_group: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}"
    )


def vault_resource_id(subscription_id: str, resource_group: str, vault: str) -> str:
    return (
        f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.KeyVault/vaults/{vault}"
    )


def role_definition_id(subscription_id: str, role: str = KEY_VAULT_SECRETS_USER) -> str:
    return (
        f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}"
    )


def role_assignment_name(scope: str, principal_id: str, role: str) -> str:
    """The deterministic GUID of a role assignment (uuid5 of scope, principal and role).

    >>> role_assignment_name("/s/x", "p", "r") == role_assignment_name("/s/x", "p", "r")
    True
    """
    role_guid = role.rsplit("/", 1)[-1].lower()
    return str(uuid.uuid5(_ASSIGNMENT_NS, f"{scope.lower()}|{principal_id.lower()}|{role_guid}"))


def fic_name(namespace: str, service_account: str, issuer: str) -> str:
    """A federated credential's name: readable, unique per subject and issuer, <= 120 chars.

    >>> fic_name("backend-dev", "delivery", "https://issuer.example/")
    'sb-backend-dev-delivery-ffb55acf'
    """
    digest = hashlib.sha256(issuer.rstrip("/").encode()).hexdigest()[:8]
    base = re.sub(r"[^A-Za-z0-9-]", "-", f"sb-{namespace}-{service_account}")[:110]
    return f"{base}-{digest}"


def vault_policy_name(spec: Spec, service: str) -> str:
    return f"secretsboot-{spec.metadata.name}-{service}"


def vault_policy_prefix(spec: Spec) -> str:
    return f"secretsboot-{spec.metadata.name}-"


def vault_role_name(service: str) -> str:
    """The Vault role of a service: its name (what ``fetch`` logs in with)."""
    return service


def k8s_object_name(service: str) -> str:
    return f"secretsboot-{service}"


def ttl_seconds(text: str) -> int:
    """``5m`` -> 300."""
    unit = {"s": 1, "m": 60, "h": 3600}[text[-1]]
    return int(text[:-1]) * unit


# --- building ----------------------------------------------------------------------------


@dataclass
class _Builder:
    spec: Spec
    subscription_id: str
    identities: Mapping[str, IdentityInfo]
    fallback_values: Mapping[tuple[str, str, str], SecretValue]
    sync_fallbacks: bool
    configmaps: bool
    objects: dict[Any, Desired] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    identity_users: dict[str, list[str]] = field(default_factory=dict)
    fetch_configs: dict[str, str] = field(default_factory=dict)
    fetch_cache: dict[str, str] = field(default_factory=dict)

    # shared helpers

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

    # per service

    def service(self, svc: ServiceSpec) -> None:
        ns = svc.resolved_namespace(self.spec)
        refs = [ref for secret in svc.secrets for ref in secret.sources]
        kv_refs = [r for r in refs if r.scheme == "keyvault"]
        vault_refs = [r for r in refs if r.scheme == "vault"]
        k8s_refs = [r for r in refs if r.scheme == "k8s"]
        has_identity = svc.identity is not Identity.NONE
        self.namespace(ns, svc.name)
        if has_identity:
            self.azure_identity(svc)
            if kv_refs:
                self.keyvault_grants(svc, kv_refs)
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            self.federated_credential(svc, ns)
        if svc.identity is Identity.POD_IDENTITY:
            self.pod_identity(svc, ns)
        self.service_account(svc, ns, k8s_refs, vault_refs)
        if k8s_refs:
            self.secret_reader_role(svc, ns, k8s_refs)
            self.fallback_secrets(svc, ns, k8s_refs)
        if svc.delivery is Delivery.CSI:
            self.secret_provider_classes(svc, ns)
        if svc.delivery is Delivery.FLEXVOLUME:
            self.flexvolume_note(svc)
        if svc.delivery in (Delivery.INIT_CONTAINER, Delivery.ENV):
            self.fetch_config(svc, ns)
        if vault_refs:
            self.vault(svc, ns, vault_refs)

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

    def azure_identity(self, svc: ServiceSpec) -> None:
        assert self.spec.azure is not None  # noqa: S101 - the spec validator guarantees it
        name = svc.identity_name
        self.identity_users.setdefault(name, []).append(svc.name)
        self.add(
            Desired(
                ResourceKey(System.AZURE, "managed-identity", f"{self.azure_rg}/{name}"),
                {
                    "location": self.spec.azure.location,
                    "tags": {
                        AZURE_MANAGED_BY_TAG: MANAGED_BY_VALUE,
                        AZURE_SPEC_TAG: self.spec.metadata.name,
                    },
                },
                (svc.name,),
                rank=0,
                extra={"resource_group": self.azure_rg, "identity": name},
            )
        )

    def federated_credential(self, svc: ServiceSpec, ns: str) -> None:
        assert self.spec.azure is not None and self.spec.azure.oidc_issuer  # noqa: S101
        issuer = self.spec.azure.oidc_issuer
        sa = svc.service_account_name
        name = fic_name(ns, sa, issuer)
        identity = svc.identity_name
        self.add(
            Desired(
                ResourceKey(System.AZURE, "federated-credential", f"{identity}/{name}"),
                {
                    "issuer": issuer,
                    "subject": f"system:serviceaccount:{ns}:{sa}",
                    "audiences": [WORKLOAD_IDENTITY_AUDIENCE],
                },
                (svc.name,),
                rank=1,
                extra={"resource_group": self.azure_rg, "identity": identity, "fic": name},
            )
        )

    def keyvault_grants(self, svc: ServiceSpec, refs: list[SourceRef]) -> None:
        assert self.spec.azure is not None  # noqa: S101
        identity = svc.identity_name
        principal = self.ident(identity, "principal_id")
        role_def = role_definition_id(self.subscription_id)
        for ref in refs:
            kv = self.spec.azure.key_vault(ref.store)
            assert kv is not None  # noqa: S101 - validated
            rg = self.vault_rg(ref.store)
            if kv.mode is KeyVaultMode.ACCESS_POLICY:
                self.add(
                    Desired(
                        ResourceKey(System.AZURE, "access-policy", f"{ref.store}/{identity}"),
                        {
                            "objectId": principal,
                            "tenantId": self.spec.azure.tenant_id,
                            "permissions": {"secrets": ["get"]},
                        },
                        (svc.name,),
                        rank=2,
                        extra={"resource_group": rg, "vault": ref.store, "identity": identity},
                    )
                )
                continue
            scope = vault_resource_id(self.subscription_id, rg, ref.store)
            short = ref.store
            if svc.key_vault_scope == "secret":
                scope = f"{scope}/secrets/{ref.path}"
                short = f"{ref.store}/{ref.path}"
            assignment = (
                role_assignment_name(scope, principal, role_def)
                if principal != KNOWN_AFTER_APPLY
                else KNOWN_AFTER_APPLY
            )
            self.add(
                Desired(
                    ResourceKey(System.AZURE, "role-assignment", f"{identity} -> {short}"),
                    {"scope": scope, "roleDefinitionId": role_def, "principalId": principal},
                    (svc.name,),
                    rank=2,
                    extra={
                        "assignment": assignment,
                        "role": "Key Vault Secrets User",
                        "identity": identity,
                        "description": f"managed-by secretsboot spec {self.spec.metadata.name}",
                    },
                )
            )

    def pod_identity(self, svc: ServiceSpec, ns: str) -> None:
        assert self.spec.azure is not None  # noqa: S101
        identity = svc.identity_name
        obj_name = re.sub(r"[^a-z0-9-]", "-", identity.lower()).strip("-")
        resource_id = identity_resource_id(self.subscription_id, self.azure_rg, identity)
        self.add(
            Desired(
                ResourceKey(System.KUBERNETES, "AzureIdentity", f"{ns}/{obj_name}"),
                {
                    "metadata": {"labels": self.labels(None)},
                    "spec": {
                        "type": 0,
                        "resourceID": resource_id,
                        "clientID": self.ident(identity, "client_id"),
                    },
                },
                (svc.name,),
                rank=1,
            )
        )
        self.add(
            Desired(
                ResourceKey(
                    System.KUBERNETES, "AzureIdentityBinding", f"{ns}/{k8s_object_name(svc.name)}"
                ),
                {
                    "metadata": {"labels": self.labels(svc.name)},
                    "spec": {"azureIdentity": obj_name, "selector": svc.name},
                },
                (svc.name,),
                rank=2,
            )
        )
        issuer = self.spec.azure.oidc_issuer or "<azure.oidcIssuer>"
        sa = svc.service_account_name
        self.notes.append(
            Note(
                svc.name,
                "info",
                f"pods of '{svc.name}' must carry the label aadpodidbinding: {svc.name}",
            )
        )
        self.notes.append(
            Note(
                svc.name,
                "warning",
                "aad-pod-identity is deprecated (Oct 2022) and archived; move to workload identity",
                f"set identity: workload-identity on '{svc.name}': secretsboot then adds a "
                f"federated credential on '{identity}' (issuer {issuer}, subject "
                f"system:serviceaccount:{ns}:{sa}, audience {WORKLOAD_IDENTITY_AUDIENCE}), "
                f"annotates ServiceAccount {ns}/{sa} with {_WI_CLIENT_ID}, and pods carry "
                'azure.workload.identity/use: "true" instead of aadpodidbinding',
            )
        )

    def service_account(
        self, svc: ServiceSpec, ns: str, k8s_refs: list[SourceRef], vault_refs: list[SourceRef]
    ) -> None:
        needs_token = bool(k8s_refs) or (
            bool(vault_refs) and svc.vault_auth is VaultAuthMethod.KUBERNETES
        )
        metadata: dict[str, Any] = {"labels": self.labels(svc.name)}
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            assert self.spec.azure is not None  # noqa: S101
            metadata["annotations"] = {
                _WI_CLIENT_ID: self.ident(svc.identity_name, "client_id"),
                _WI_TENANT_ID: self.spec.azure.tenant_id,
            }
            self.notes.append(
                Note(
                    svc.name,
                    "info",
                    f"pods of '{svc.name}' must carry the label azure.workload.identity/use: "
                    f'"true" and run as ServiceAccount {svc.service_account_name}',
                )
            )
        self.add(
            Desired(
                ResourceKey(
                    System.KUBERNETES, "ServiceAccount", f"{ns}/{svc.service_account_name}"
                ),
                {"metadata": metadata, "automountServiceAccountToken": needs_token},
                (svc.name,),
                rank=1,
            )
        )

    def secret_reader_role(self, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
        name = k8s_object_name(svc.name)
        self.add(
            Desired(
                ResourceKey(System.KUBERNETES, "Role", f"{ns}/{name}"),
                {
                    "metadata": {"labels": self.labels(svc.name)},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "resources": ["secrets"],
                            "verbs": ["get"],
                            "resourceNames": sorted({r.store for r in refs}),
                        }
                    ],
                },
                (svc.name,),
                rank=2,
            )
        )
        self.add(
            Desired(
                ResourceKey(System.KUBERNETES, "RoleBinding", f"{ns}/{name}"),
                {
                    "metadata": {"labels": self.labels(svc.name)},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "Role",
                        "name": name,
                    },
                    "subjects": [
                        {
                            "kind": "ServiceAccount",
                            "name": svc.service_account_name,
                            "namespace": ns,
                        }
                    ],
                },
                (svc.name,),
                rank=3,
            )
        )

    def fallback_secrets(self, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
        by_secret: dict[str, set[str]] = {}
        for ref in refs:
            by_secret.setdefault(ref.store, set()).add(ref.key or "")
        for secret_name, keys in by_secret.items():
            data: dict[str, str] = {}
            values: dict[str, SecretValue] = {}
            for k in sorted(keys):
                value = self.fallback_values.get((ns, secret_name, k))
                if value is not None:
                    data[k] = value.fingerprint
                    values[k] = value
                else:
                    data[k] = ANY_VALUE
            self.add(
                Desired(
                    ResourceKey(System.KUBERNETES, "Secret", f"{ns}/{secret_name}"),
                    {"metadata": {"labels": self.labels(None)}, "data": data},
                    (svc.name,),
                    rank=1,
                    secrets=values,
                ),
                merge=_merge_secret,
            )

    def secret_provider_classes(self, svc: ServiceSpec, ns: str) -> None:
        assert self.spec.azure is not None  # noqa: S101
        by_vault: dict[str, list[tuple[str, str, str | None]]] = {}
        for secret in svc.secrets:
            ref = secret.source
            by_vault.setdefault(ref.store, []).append((secret.name, ref.path, ref.version))
        several = len(by_vault) > 1
        for vault, objects in by_vault.items():
            name = k8s_object_name(svc.name) + (f"-{vault}" if several else "")
            params: dict[str, str] = {
                "keyvaultName": vault,
                "tenantId": self.spec.azure.tenant_id,
                "objects": _csi_objects(objects),
            }
            if svc.identity is Identity.WORKLOAD_IDENTITY:
                params["clientID"] = self.ident(svc.identity_name, "client_id")
            elif svc.identity is Identity.POD_IDENTITY:
                params["usePodIdentity"] = "true"
            self.add(
                Desired(
                    ResourceKey(System.KUBERNETES, "SecretProviderClass", f"{ns}/{name}"),
                    {
                        "metadata": {"labels": self.labels(svc.name)},
                        "spec": {"provider": "azure", "parameters": params},
                    },
                    (svc.name,),
                    rank=1,
                )
            )
        self.notes.append(
            Note(
                svc.name,
                "info",
                f"mount the CSI volume in pods of '{svc.name}': csi.driver "
                "secrets-store.csi.k8s.io, volumeAttributes.secretProviderClass "
                + ", ".join(
                    k8s_object_name(svc.name) + (f"-{v}" if several else "") for v in by_vault
                ),
            )
        )

    def flexvolume_note(self, svc: ServiceSpec) -> None:
        assert self.spec.azure is not None  # noqa: S101
        by_vault: dict[str, list[str]] = {}
        for secret in svc.secrets:
            by_vault.setdefault(secret.source.store, []).append(secret.source.path)
        volumes = []
        for vault, names in by_vault.items():
            options = {
                "keyvaultname": vault,
                "keyvaultobjectnames": ";".join(names),
                "keyvaultobjecttypes": ";".join("secret" for _ in names),
                "resourcegroup": self.vault_rg(vault),
                "subscriptionid": self.subscription_id,
                "tenantid": self.spec.azure.tenant_id,
                "usepodidentity": str(svc.identity is Identity.POD_IDENTITY).lower(),
            }
            volumes.append(
                {"name": f"kv-{vault}", "flexVolume": {"driver": "azure/kv", "options": options}}
            )
        self.notes.append(
            Note(
                svc.name,
                "warning",
                "the Key Vault FlexVolume driver is deprecated; prefer delivery: csi "
                "(this volume is printed, not applied)",
                json.dumps({"volumes": volumes}, indent=2),
            )
        )

    def fetch_config(self, svc: ServiceSpec, ns: str) -> None:
        text = self.fetch_cache.get(svc.name)
        if text is None:
            text = fetch_config_yaml(self.spec, svc)
            self.fetch_cache[svc.name] = text
        self.fetch_configs[svc.name] = text
        if not self.configmaps:
            return
        self.add(
            Desired(
                ResourceKey(System.KUBERNETES, "ConfigMap", f"{ns}/{k8s_object_name(svc.name)}"),
                {"metadata": {"labels": self.labels(svc.name)}, "data": {"fetch.yaml": text}},
                (svc.name,),
                rank=1,
            )
        )

    def vault(self, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
        vs = self.spec.vault
        assert vs is not None  # noqa: S101 - validated
        policy = vault_policy_name(self.spec, svc.name)
        paths = sorted(
            {
                f"{r.store}/data/{r.path}" if vs.kv_version == 2 else f"{r.store}/{r.path}"
                for r in refs
            }
        )
        text = vault_policy_text(self.spec.metadata.name, svc.name, paths)
        self.add(
            Desired(
                ResourceKey(System.VAULT, "policy", policy),
                {"policy": text},
                (svc.name,),
                rank=0,
            )
        )
        ttl = ttl_seconds(vs.token_ttl)
        common: dict[str, Any] = {
            "token_policies": [policy],
            "token_ttl": ttl,
            "token_max_ttl": ttl,
        }
        sa = svc.service_account_name
        method = svc.vault_auth
        body: dict[str, Any]
        if method is VaultAuthMethod.KUBERNETES:
            auth_k = vs.auth.kubernetes
            assert auth_k is not None  # noqa: S101
            mount = auth_k.mount
            body = {
                "bound_service_account_names": [sa],
                "bound_service_account_namespaces": [ns],
                **common,
            }
            if auth_k.audience:
                body["audience"] = auth_k.audience
        elif method is VaultAuthMethod.JWT:
            auth_j = vs.auth.jwt
            assert auth_j is not None  # noqa: S101
            mount = auth_j.mount
            body = {
                "role_type": "jwt",
                "user_claim": "sub",
                "bound_subject": f"system:serviceaccount:{ns}:{sa}",
                "bound_audiences": [auth_j.audience],
                **common,
            }
        else:
            auth_a = vs.auth.azure
            assert auth_a is not None  # noqa: S101
            mount = auth_a.mount
            body = {
                "bound_service_principal_ids": [self.ident(svc.identity_name, "principal_id")],
                **common,
            }
        self.add(
            Desired(
                ResourceKey(System.VAULT, "role", f"{mount}/{vault_role_name(svc.name)}"),
                body,
                (svc.name,),
                rank=1,
                extra={"mount": mount, "role": vault_role_name(svc.name), "method": method.value},
            )
        )


def vault_policy_text(spec_name: str, service: str, paths: list[str]) -> str:
    """The HCL of a service's policy: ``read`` on exactly its paths.

    >>> print(vault_policy_text("dd", "ingestion", ["secret/data/dd/ingestion"]))
    # managed-by: secretsboot; spec: dd; service: ingestion
    path "secret/data/dd/ingestion" {
      capabilities = ["read"]
    }
    <BLANKLINE>
    """
    lines = [f"# managed-by: secretsboot; spec: {spec_name}; service: {service}"]
    for p in paths:
        lines += [f'path "{p}" {{', '  capabilities = ["read"]', "}"]
    return "\n".join(lines) + "\n"


def _merge_secret(old: Desired, new: Desired) -> None:
    old.body["data"].update(new.body["data"])
    old.secrets.update(new.secrets)


def _csi_objects(objects: list[tuple[str, str, str | None]]) -> str:
    """The ``objects`` parameter of a SecretProviderClass: a YAML array in a string."""
    lines = ["array:"]
    for alias, name, version in objects:
        lines += [
            "  - |",
            f"    objectName: {name}",
            "    objectType: secret",
            f"    objectAlias: {alias}",
        ]
        if version:
            lines.append(f"    objectVersion: {version}")
    return "\n".join(lines) + "\n"


def fetch_config_yaml(spec: Spec, svc: ServiceSpec) -> str:
    """The service's ``fetch.yaml``: the FetchConfig contract rendered from the spec."""
    text: str = FetchConfig.from_spec(spec, svc.name).to_yaml()

    return text


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
    b = _Builder(
        spec,
        sub,
        identities,
        fallback_values or {},
        sync_fallbacks=bool(fallback_values),
        configmaps=configmaps,
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
    return DesiredState(list(b.objects.values()), b.notes, b.identity_users, b.fetch_configs)
