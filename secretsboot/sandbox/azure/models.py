"""The resources the Azure fakes hold: identities, FICs, roles, assignments, vaults.

Plain dataclasses (each renders its own ARM JSON with ``arm_body()``), the
built-in role definitions with their actions and data actions, and the scope
arithmetic of Azure RBAC. :mod:`.state` keeps them in dicts behind one lock.
Example::

    definition = BUILTIN_ROLES[KEY_VAULT_SECRETS_USER]
    definition.allows_data("Microsoft.KeyVault/vaults/secrets/getSecret/action")  # True
    scope_contains(vault_id, vault_id + "/secrets/db")                            # True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Any

from secretsboot.contract import KEY_VAULT_SECRETS_USER as KEY_VAULT_SECRETS_USER
from secretsboot.contract import WORKLOAD_IDENTITY_AUDIENCE
from secretsboot.secret import SecretValue

#: Entra's name for the audience workload-identity tokens carry
TOKEN_EXCHANGE_AUDIENCE = WORKLOAD_IDENTITY_AUDIENCE

# Built-in role definition ids (the same GUIDs in every Azure tenant).
KEY_VAULT_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KEY_VAULT_ADMINISTRATOR = "00482a5a-887f-4fb3-b363-3b7fe8e74483"
KEY_VAULT_READER = "21090545-7ca7-4776-b22c-e363652d74d2"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"

MAX_FEDERATED_CREDENTIALS = 20
DEFAULT_LOCATION = "eastus"

GUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,127}$")
VAULT_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
SECRET_NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class StateError(Exception):
    """A request the real service refuses: ARM error ``code``, ``message``, HTTP ``status``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner: str | None = None

    def with_inner(self, inner: str) -> StateError:
        """Set the ``innererror.code`` (Key Vault's ``ForbiddenByRbac`` ...)."""
        self.inner = inner
        return self


def is_guid(value: str) -> bool:
    return bool(GUID_RE.match(value))


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SANDBOX_CALLER = "secretsboot-sandbox"  # who "created" what the sandbox seeds itself


def new_system_data(by: str | None = None) -> dict[str, str]:
    """ARM's ``systemData`` of a resource created now by client id ``by``."""
    stamp = now_iso()
    who = by or SANDBOX_CALLER
    return {
        "createdBy": who,
        "createdByType": "Application",
        "createdAt": stamp,
        "lastModifiedBy": who,
        "lastModifiedByType": "Application",
        "lastModifiedAt": stamp,
    }


def touch(data: dict[str, str], by: str | None) -> None:
    """Record a modification by client id ``by`` in ``systemData``."""
    data.update(
        {
            "lastModifiedBy": by or SANDBOX_CALLER,
            "lastModifiedByType": "Application",
            "lastModifiedAt": now_iso(),
        }
    )


@dataclass(frozen=True)
class RoleDefinition:
    """A built-in role: its permissions decide control-plane and data-plane access."""

    guid: str
    role_name: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def arm_body(self, subscription_id: str) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{subscription_id}/providers/Microsoft.Authorization"
            f"/roleDefinitions/{self.guid}",
            "type": "Microsoft.Authorization/roleDefinitions",
            "name": self.guid,
            "properties": {
                "roleName": self.role_name,
                "type": "BuiltInRole",
                "description": self.description,
                "assignableScopes": ["/"],
                "permissions": [
                    {
                        "actions": list(self.actions),
                        "notActions": list(self.not_actions),
                        "dataActions": list(self.data_actions),
                        "notDataActions": list(self.not_data_actions),
                    }
                ],
                "createdOn": "2020-05-19T17:52:46.2349235Z",
                "updatedOn": "2021-11-11T20:13:47.8628684Z",
                "createdBy": None,
                "updatedBy": None,
            },
        }

    def allows_data(self, action: str) -> bool:
        return matches_any(action, self.data_actions) and not matches_any(
            action, self.not_data_actions
        )

    def allows(self, action: str) -> bool:
        return matches_any(action, self.actions) and not matches_any(action, self.not_actions)


def matches_any(action: str, patterns: tuple[str, ...]) -> bool:
    for pattern in patterns:
        regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
        if re.match(regex, action, re.IGNORECASE):
            return True
    return False


# the control-plane actions the Key Vault data roles share (as Azure defines them)
_KEY_VAULT_CONTROL_READS = (
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
)

BUILTIN_ROLES: dict[str, RoleDefinition] = {
    r.guid: r
    for r in (
        RoleDefinition(
            KEY_VAULT_SECRETS_USER,
            "Key Vault Secrets User",
            "Read secret contents. Only works for key vaults that use the 'Azure role-based "
            "access control' permission model.",
            data_actions=(
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(
            KEY_VAULT_SECRETS_OFFICER,
            "Key Vault Secrets Officer",
            "Perform any action on the secrets of a key vault, except manage permissions.",
            actions=_KEY_VAULT_CONTROL_READS,
            data_actions=("Microsoft.KeyVault/vaults/secrets/*",),
        ),
        RoleDefinition(
            KEY_VAULT_ADMINISTRATOR,
            "Key Vault Administrator",
            "Perform all data plane operations on a key vault and all objects in it.",
            actions=_KEY_VAULT_CONTROL_READS,
            data_actions=("Microsoft.KeyVault/vaults/*",),
        ),
        RoleDefinition(
            KEY_VAULT_READER,
            "Key Vault Reader",
            "Read metadata of key vaults and its certificates, keys, and secrets.",
            actions=("Microsoft.Authorization/*/read", "Microsoft.KeyVault/vaults/*/read"),
            data_actions=(
                "Microsoft.KeyVault/vaults/*/read",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ),
        RoleDefinition(READER, "Reader", "View all resources.", actions=("*/read",)),
        RoleDefinition(
            CONTRIBUTOR,
            "Contributor",
            "Grants full access to manage all resources, but does not allow you to assign "
            "roles in Azure RBAC.",
            actions=("*",),
            not_actions=(
                "Microsoft.Authorization/*/Delete",
                "Microsoft.Authorization/*/Write",
                "Microsoft.Authorization/elevateAccess/Action",
            ),
        ),
        RoleDefinition(OWNER, "Owner", "Grants full access to manage all resources.", ("*",)),
        RoleDefinition(
            USER_ACCESS_ADMINISTRATOR,
            "User Access Administrator",
            "Lets you manage user access to Azure resources.",
            actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
        ),
    )
}


@dataclass
class FederatedCredential:
    name: str
    issuer: str
    subject: str
    audiences: list[str]
    id: str
    effective_at: float = 0.0  # time.monotonic() from which Entra honours it
    system_data: dict[str, str] = field(default_factory=new_system_data)

    def arm_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials",
            "systemData": dict(self.system_data),
            "properties": {
                "issuer": self.issuer,
                "subject": self.subject,
                "audiences": list(self.audiences),
            },
        }


@dataclass
class Identity:
    """A user-assigned managed identity (its service principal lives in the tenant)."""

    resource_group: str
    name: str
    client_id: str
    principal_id: str
    tenant_id: str
    id: str
    location: str = DEFAULT_LOCATION
    tags: dict[str, str] = field(default_factory=dict)
    federated: dict[str, FederatedCredential] = field(default_factory=dict)
    system_data: dict[str, str] = field(default_factory=new_system_data)
    # time.monotonic() from which its service principal has replicated through the
    # directory (before that, a role assignment without principalType: PrincipalNotFound)
    replicated_at: float = 0.0

    def arm_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.ManagedIdentity/userAssignedIdentities",
            "location": self.location,
            "tags": dict(self.tags),
            "systemData": dict(self.system_data),
            "properties": {
                "tenantId": self.tenant_id,
                "principalId": self.principal_id,
                "clientId": self.client_id,
                "isolationScope": "None",
            },
        }


@dataclass
class ServicePrincipal:
    """An app registration's service principal that signs in with a client secret."""

    client_id: str
    object_id: str
    secret_sha256: str

    def secret_matches(self, presented: str) -> bool:
        digest = hashlib.sha256(presented.encode("utf-8")).hexdigest()
        return hmac.compare_digest(digest, self.secret_sha256)


@dataclass
class RoleAssignment:
    name: str
    scope: str
    role_definition_id: str  # the full ARM id of the role definition
    principal_id: str
    principal_type: str
    created_on: str = field(default_factory=now_iso)
    effective_at: float = 0.0  # time.monotonic() from which Key Vault honours it

    @property
    def id(self) -> str:
        return assignment_id(self.scope, self.name)

    @property
    def role_guid(self) -> str:
        return self.role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()

    def arm_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "Microsoft.Authorization/roleAssignments",
            "name": self.name,
            "properties": {
                "roleDefinitionId": self.role_definition_id,
                "principalId": self.principal_id,
                "principalType": self.principal_type,
                "scope": self.scope,
                "condition": None,
                "conditionVersion": None,
                "createdOn": self.created_on,
                "updatedOn": self.created_on,
                "createdBy": None,
                "updatedBy": None,
                "delegatedManagedIdentityResourceId": None,
                "description": None,
            },
        }


SECRET_PERMISSIONS = ("get", "list", "set", "delete", "recover", "backup", "restore", "purge")


@dataclass
class AccessPolicy:
    tenant_id: str
    object_id: str
    secrets: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    certificates: list[str] = field(default_factory=list)
    application_id: str | None = None
    # Key Vault honours ``secrets`` from ``effective_at`` (time.monotonic()); ``before``
    # until then (the permissions this object id had before the last write propagates)
    effective_at: float = 0.0
    before: list[str] = field(default_factory=list)

    def secrets_in_effect(self, now: float) -> list[str]:
        return self.secrets if self.effective_at <= now else self.before

    def arm_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "tenantId": self.tenant_id,
            "objectId": self.object_id,
            "permissions": {
                "secrets": list(self.secrets),
                "keys": list(self.keys),
                "certificates": list(self.certificates),
            },
        }
        if self.application_id:
            body["applicationId"] = self.application_id
        return body


@dataclass
class SecretVersion:
    version: str
    value: SecretValue
    content_type: str | None
    enabled: bool
    created: int
    updated: int
    tags: dict[str, str] = field(default_factory=dict)
    nbf: int | None = None  # not before (Unix seconds), informational as in Key Vault
    exp: int | None = None  # expires (Unix seconds), informational as in Key Vault


@dataclass
class Vault:
    name: str
    resource_group: str
    subscription_id: str
    tenant_id: str
    rbac: bool
    location: str = DEFAULT_LOCATION
    access_policies: list[AccessPolicy] = field(default_factory=list)
    # secret name (lower-case) -> versions, oldest first; names keep their first spelling
    secrets: dict[str, list[SecretVersion]] = field(default_factory=dict)
    secret_names: dict[str, str] = field(default_factory=dict)
    deleted: dict[str, tuple[int, list[SecretVersion]]] = field(default_factory=dict)
    url: str = ""  # the data-plane URL, set when its server starts
    tags: dict[str, str] = field(default_factory=dict)
    system_data: dict[str, str] = field(default_factory=new_system_data)
    retention_days: int = 90

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.KeyVault/vaults/{self.name}"
        )

    def arm_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": "Microsoft.KeyVault/vaults",
            "location": self.location,
            "tags": dict(self.tags),
            "systemData": dict(self.system_data),
            "properties": {
                "sku": {"family": "A", "name": "standard"},
                "tenantId": self.tenant_id,
                "accessPolicies": [p.arm_body() for p in self.access_policies],
                "enabledForDeployment": False,
                "enabledForDiskEncryption": False,
                "enabledForTemplateDeployment": False,
                "enableSoftDelete": True,
                "softDeleteRetentionInDays": self.retention_days,
                "enableRbacAuthorization": self.rbac,
                "vaultUri": (self.url.rstrip("/") + "/") if self.url else None,
                "provisioningState": "Succeeded",
                "publicNetworkAccess": "Enabled",
            },
        }


@dataclass
class DeletedVault:
    """A soft-deleted vault: its name stays taken until it is purged or recovered."""

    vault: Vault
    deletion_date: str
    scheduled_purge_date: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.vault.subscription_id}/providers/Microsoft.KeyVault"
            f"/locations/{self.vault.location}/deletedVaults/{self.vault.name}"
        )

    def arm_body(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.vault.name,
            "type": "Microsoft.KeyVault/deletedVaults",
            "properties": {
                "vaultId": self.vault.id,
                "location": self.vault.location,
                "deletionDate": self.deletion_date,
                "scheduledPurgeDate": self.scheduled_purge_date,
                "tags": dict(self.vault.tags),
                "purgeProtectionEnabled": False,
            },
        }


@dataclass(frozen=True)
class PodBinding:
    """aad-pod-identity: callers presenting ``selector`` may get ``identity_id``.

    ``selector=None`` binds the identity to the node itself: every IMDS caller gets it.
    """

    identity_id: str
    selector: str | None


@dataclass(frozen=True)
class ArmDenial:
    """The "caller lacks permission" knob: ``action`` (wildcards allowed) is refused
    to ``principal_id`` (``None``: to every caller)."""

    action: str
    principal_id: str | None


def assignment_id(scope: str, name: str) -> str:
    return f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}"


def normalize_scope(scope: str) -> str:
    scope = "/" + scope.strip("/")
    return scope


def scope_contains(outer: str, inner: str) -> bool:
    """True when ``inner`` equals ``outer`` or lies below it (case-insensitive)."""
    o = normalize_scope(outer).lower().rstrip("/")
    i = normalize_scope(inner).lower().rstrip("/")
    return o == "" or i == o or i.startswith(o + "/")
