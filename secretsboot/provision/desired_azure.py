"""The Azure part of the desired state: identities, federated credentials, Key Vault grants.

Also the aad-pod-identity objects (Kubernetes CRDs that name an Azure identity):
they exist only because of the Azure identity and are built beside it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from secretsboot.contract import KEY_VAULT_SECRETS_USER, WI_CLIENT_ID_ANNOTATION
from secretsboot.provision.model import (
    AZURE_MANAGED_BY_TAG,
    AZURE_SPEC_TAG,
    KNOWN_AFTER_APPLY,
    MANAGED_BY_VALUE,
    Desired,
    Note,
    ResourceKey,
    System,
)
from secretsboot.provision.names import (
    fic_name,
    identity_resource_id,
    k8s_object_name,
    role_assignment_name,
    role_definition_id,
    vault_resource_id,
)
from secretsboot.spec import (
    WORKLOAD_IDENTITY_AUDIENCE,
    KeyVaultMode,
    ServiceSpec,
    SourceRef,
)

if TYPE_CHECKING:
    from secretsboot.provision.desired import Builder


def azure_identity(b: Builder, svc: ServiceSpec) -> None:
    assert b.spec.azure is not None  # noqa: S101 - the spec validator guarantees it
    name = svc.identity_name
    b.identity_users.setdefault(name, []).append(svc.name)
    b.add(
        Desired(
            ResourceKey(System.AZURE, "managed-identity", f"{b.azure_rg}/{name}"),
            {
                "location": b.spec.azure.location,
                "tags": {
                    AZURE_MANAGED_BY_TAG: MANAGED_BY_VALUE,
                    AZURE_SPEC_TAG: b.spec.metadata.name,
                },
            },
            (svc.name,),
            rank=0,
            extra={"resource_group": b.azure_rg, "identity": name},
        )
    )


def federated_credential(b: Builder, svc: ServiceSpec, ns: str) -> None:
    assert b.spec.azure is not None and b.spec.azure.oidc_issuer  # noqa: S101
    issuer = b.spec.azure.oidc_issuer
    sa = svc.service_account_name
    name = fic_name(ns, sa, issuer)
    identity = svc.identity_name
    b.add(
        Desired(
            ResourceKey(System.AZURE, "federated-credential", f"{identity}/{name}"),
            {
                "issuer": issuer,
                "subject": f"system:serviceaccount:{ns}:{sa}",
                "audiences": [WORKLOAD_IDENTITY_AUDIENCE],
            },
            (svc.name,),
            rank=1,
            extra={"resource_group": b.azure_rg, "identity": identity, "fic": name},
        )
    )


def keyvault_grants(b: Builder, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
    """``keyvault://`` sources: Key Vault Secrets User on the vault (or the secret), or an
    access policy granting ``get`` on an access-policy-mode vault."""
    assert b.spec.azure is not None  # noqa: S101
    identity = svc.identity_name
    principal = b.ident(identity, "principal_id")
    role_def = role_definition_id(b.subscription_id, KEY_VAULT_SECRETS_USER)
    for ref in refs:
        kv = b.spec.azure.key_vault(ref.store)
        assert kv is not None  # noqa: S101 - validated
        rg = b.vault_rg(ref.store)
        if kv.mode is KeyVaultMode.ACCESS_POLICY:
            b.add(
                Desired(
                    ResourceKey(System.AZURE, "access-policy", f"{ref.store}/{identity}"),
                    {
                        "objectId": principal,
                        "tenantId": b.spec.azure.tenant_id,
                        "permissions": {"secrets": ["get"]},
                    },
                    (svc.name,),
                    rank=2,
                    extra={"resource_group": rg, "vault": ref.store, "identity": identity},
                )
            )
            continue
        scope = vault_resource_id(b.subscription_id, rg, ref.store)
        short = ref.store
        if svc.key_vault_scope == "secret":
            scope = f"{scope}/secrets/{ref.path}"
            short = f"{ref.store}/{ref.path}"
        assignment = (
            role_assignment_name(scope, principal, role_def)
            if principal != KNOWN_AFTER_APPLY
            else KNOWN_AFTER_APPLY
        )
        b.add(
            Desired(
                ResourceKey(System.AZURE, "role-assignment", f"{identity} -> {short}"),
                {"scope": scope, "roleDefinitionId": role_def, "principalId": principal},
                (svc.name,),
                rank=2,
                extra={
                    "assignment": assignment,
                    "role": "Key Vault Secrets User",
                    "identity": identity,
                    "description": f"created by secretsboot (spec {b.spec.metadata.name})",
                },
            )
        )


def pod_identity(b: Builder, svc: ServiceSpec, ns: str) -> None:
    assert b.spec.azure is not None  # noqa: S101
    identity = svc.identity_name
    obj_name = re.sub(r"[^a-z0-9-]", "-", identity.lower()).strip("-")
    resource_id = identity_resource_id(b.subscription_id, b.azure_rg, identity)
    b.add(
        Desired(
            ResourceKey(System.KUBERNETES, "AzureIdentity", f"{ns}/{obj_name}"),
            {
                "metadata": {"labels": b.labels(None)},
                "spec": {
                    "type": 0,
                    "resourceID": resource_id,
                    "clientID": b.ident(identity, "client_id"),
                },
            },
            (svc.name,),
            rank=1,
        )
    )
    b.add(
        Desired(
            ResourceKey(
                System.KUBERNETES, "AzureIdentityBinding", f"{ns}/{k8s_object_name(svc.name)}"
            ),
            {
                "metadata": {"labels": b.labels(svc.name)},
                "spec": {"azureIdentity": obj_name, "selector": svc.name},
            },
            (svc.name,),
            rank=2,
        )
    )
    issuer = b.spec.azure.oidc_issuer or "<azure.oidcIssuer>"
    sa = svc.service_account_name
    b.notes.append(
        Note(
            svc.name,
            "info",
            f"pods of '{svc.name}' must carry the label aadpodidbinding: {svc.name}",
        )
    )
    b.notes.append(
        Note(
            svc.name,
            "warning",
            "aad-pod-identity is deprecated (Oct 2022) and archived; move to workload identity",
            f"set identity: workload-identity on '{svc.name}': secretsboot then adds a "
            f"federated credential on '{identity}' (issuer {issuer}, subject "
            f"system:serviceaccount:{ns}:{sa}, audience {WORKLOAD_IDENTITY_AUDIENCE}), "
            f"annotates ServiceAccount {ns}/{sa} with {WI_CLIENT_ID_ANNOTATION}, and pods carry "
            'azure.workload.identity/use: "true" instead of aadpodidbinding',
        )
    )
