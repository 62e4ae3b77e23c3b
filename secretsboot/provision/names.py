"""Deterministic names and Azure resource ids of everything provision manages.

Names are deterministic everywhere (identity, federated credential, role
assignment GUID, Kubernetes objects, Vault policy), so a re-run after a crash
finds what the first run created instead of duplicating it.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from secretsboot.contract import KEY_VAULT_SECRETS_USER
from secretsboot.spec import Spec

# uuid5 namespace of secretsboot's role-assignment names (fixed forever: changing it
# would make every existing assignment look foreign).
_ASSIGNMENT_NS = uuid.UUID("6f1d2c3e-5b4a-5e8f-9a7b-0c1d2e3f4a5b")


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
