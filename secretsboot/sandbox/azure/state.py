"""The shared state of the Azure fakes: plain dataclasses in dicts, one lock.

Entra ID, IMDS, ARM and every Key Vault data plane read and write one
:class:`AzureState`, so an identity created over ARM can at once exchange a
service-account token at Entra and read a secret from a vault where ARM granted
it a role. Example::

    state = AzureState()
    mi = state.create_identity("rg", "orders")
    state.add_federated_credential(mi.id, "orders", issuer, "system:serviceaccount:shop:orders")
    vault = state.create_vault("shop-kv", mode="rbac")
    state.assign_role(vault.id, mi.principal_id, KEY_VAULT_SECRETS_USER)

Methods raise :class:`StateError` (an ARM-style code, message and HTTP status)
so the ARM fake can answer with Azure's own error and the test helpers can raise.
The resource dataclasses and built-in roles live in :mod:`.models` (re-exported here).
"""

from __future__ import annotations

from secretsboot.sandbox.azure.models import (
    BUILTIN_ROLES,
    CONTRIBUTOR,
    DEFAULT_LOCATION,
    GUID_RE,
    KEY_VAULT_ADMINISTRATOR,
    KEY_VAULT_READER,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    MAX_FEDERATED_CREDENTIALS,
    NAME_RE,
    OWNER,
    READER,
    SECRET_NAME_RE,
    SECRET_PERMISSIONS,
    TOKEN_EXCHANGE_AUDIENCE,
    USER_ACCESS_ADMINISTRATOR,
    VAULT_NAME_RE,
    AccessPolicy,
    ArmDenial,
    FederatedCredential,
    Identity,
    PodBinding,
    RoleAssignment,
    RoleDefinition,
    SecretVersion,
    ServicePrincipal,
    StateError,
    Vault,
    assignment_id,
    is_guid,
    matches_any,
    normalize_scope,
    now_iso,
    scope_contains,
)
from secretsboot.sandbox.azure.rbac import RbacState

# re-exported: callers import the models from here too
__all__ = [
    "BUILTIN_ROLES",
    "CONTRIBUTOR",
    "DEFAULT_LOCATION",
    "GUID_RE",
    "KEY_VAULT_ADMINISTRATOR",
    "KEY_VAULT_READER",
    "KEY_VAULT_SECRETS_OFFICER",
    "KEY_VAULT_SECRETS_USER",
    "MAX_FEDERATED_CREDENTIALS",
    "NAME_RE",
    "OWNER",
    "READER",
    "SECRET_NAME_RE",
    "SECRET_PERMISSIONS",
    "TOKEN_EXCHANGE_AUDIENCE",
    "USER_ACCESS_ADMINISTRATOR",
    "VAULT_NAME_RE",
    "AccessPolicy",
    "ArmDenial",
    "AzureState",
    "FederatedCredential",
    "Identity",
    "PodBinding",
    "RoleAssignment",
    "RoleDefinition",
    "SecretVersion",
    "ServicePrincipal",
    "StateError",
    "Vault",
    "assignment_id",
    "is_guid",
    "matches_any",
    "normalize_scope",
    "now_iso",
    "scope_contains",
]


class AzureState(RbacState):
    """Everything the Azure fakes know. Every public method takes the lock.

    One class over three service modules (a linear chain, so each sees what it
    uses): :mod:`.identities` (Entra ID, IMDS), :mod:`.vaults` (Key Vault) and
    :mod:`.rbac` (role assignments, ARM permissions), on :mod:`.state_base`.
    """
