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

import hashlib
import threading
import time
import uuid
from typing import Literal

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
from secretsboot.secret import SecretValue

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


class AzureState:
    """Everything the Azure fakes know. Every public method takes the lock."""

    def __init__(self, tenant_id: str | None = None, subscription_id: str | None = None) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.subscription_id = subscription_id or str(uuid.uuid4())
        self.lock = threading.RLock()
        self.resource_groups: dict[str, str] = {}  # lower -> spelling
        self.identities: dict[str, Identity] = {}  # lower-case ARM id -> identity
        self.service_principals: dict[str, ServicePrincipal] = {}  # client id -> sp
        self.role_definitions: dict[str, RoleDefinition] = dict(BUILTIN_ROLES)
        self.role_assignments: dict[str, RoleAssignment] = {}  # lower-case id -> assignment
        self.vaults: dict[str, Vault] = {}  # lower-case name -> vault
        self.pod_bindings: list[PodBinding] = []
        self.imds_caller: str | None = None  # the aadpodidbinding selector of "the" caller
        self.arm_denials: list[ArmDenial] = []
        # principals ARM judges by their role assignments (everyone else acts as an Owner)
        self.arm_rbac_callers: set[str] = set()
        # Entra and Key Vault see a new FIC or role assignment only this long after ARM
        # accepted it (real propagation takes seconds to minutes); ARM reads see it at once.
        self.propagation_delay_s = 0.0
        # ARM refuses overlapping FIC writes on one identity; a write lasts this long
        self.fic_write_latency_s = 0.0
        self._fic_writes: set[str] = set()

    # ---- resource groups -------------------------------------------------------

    def ensure_resource_group(self, name: str) -> str:
        with self.lock:
            return self.resource_groups.setdefault(name.lower(), name)

    def has_resource_group(self, name: str) -> bool:
        with self.lock:
            return name.lower() in self.resource_groups

    def _rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}"

    # ---- identities --------------------------------------------------------------

    def identity_id(self, resource_group: str, name: str) -> str:
        return (
            f"{self._rg_id(resource_group)}/providers/Microsoft.ManagedIdentity"
            f"/userAssignedIdentities/{name}"
        )

    def create_identity(
        self,
        resource_group: str,
        name: str,
        *,
        location: str = DEFAULT_LOCATION,
        tags: dict[str, str] | None = None,
    ) -> Identity:
        """Create (or return the existing) user-assigned identity ``resource_group/name``."""
        if not NAME_RE.match(name):
            raise StateError(
                400,
                "InvalidResourceName",
                f"Resource name {name} is invalid. The name can contain only letters, numbers, "
                "underscores and hyphens, and must start with a letter or number.",
            )
        with self.lock:
            rg = self.ensure_resource_group(resource_group)
            key = self.identity_id(rg, name).lower()
            existing = self.identities.get(key)
            if existing is not None:
                if tags is not None:
                    existing.tags = dict(tags)
                return existing
            identity = Identity(
                resource_group=rg,
                name=name,
                client_id=str(uuid.uuid4()),
                principal_id=str(uuid.uuid4()),
                tenant_id=self.tenant_id,
                id=self.identity_id(rg, name),
                location=location,
                tags=dict(tags or {}),
            )
            self.identities[key] = identity
            return identity

    def get_identity(self, identity_id: str) -> Identity:
        with self.lock:
            identity = self.identities.get(identity_id.rstrip("/").lower())
        if identity is None:
            raise StateError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/"
                f"{identity_id.rstrip('/').rsplit('/', 1)[-1]}' under resource group "
                f"'{_rg_of(identity_id)}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return identity

    def delete_identity(self, identity_id: str) -> bool:
        with self.lock:
            return self.identities.pop(identity_id.rstrip("/").lower(), None) is not None

    def identity_by_client_id(self, client_id: str) -> Identity | None:
        with self.lock:
            for identity in self.identities.values():
                if identity.client_id.lower() == client_id.lower():
                    return identity
        return None

    def add_federated_credential(
        self,
        identity_id: str,
        name: str,
        issuer: str,
        subject: str,
        audiences: list[str] | None = None,
    ) -> FederatedCredential:
        """Create or update a FIC; the 21st on one identity is refused like Azure does."""
        audiences = list(audiences or [TOKEN_EXCHANGE_AUDIENCE])
        if not NAME_RE.match(name) or len(name) < 3:
            raise StateError(
                400,
                "BadRequest",
                f"Federated Identity Credential name '{name}' is invalid. It must be 3 to 120 "
                "characters long, start with a letter or number, and contain only letters, "
                "numbers, hyphens and underscores.",
            )
        if not issuer.startswith("https://"):
            raise StateError(
                400, "BadRequest", f"Issuer '{issuer}' is invalid. Issuer must be an https URL."
            )
        if not subject:
            raise StateError(400, "BadRequest", "Subject must not be empty.")
        if len(audiences) != 1:
            raise StateError(
                400, "BadRequest", "Exactly one audience must be specified in 'audiences'."
            )
        with self.lock:
            identity = self.get_identity(identity_id)
            existing = identity.federated.get(name.lower())
            if existing is None and len(identity.federated) >= MAX_FEDERATED_CREDENTIALS:
                raise StateError(
                    400,
                    "BadRequest",
                    "Too many Federated Identity Credentials are written to the managed identity "
                    f"'{identity.id}'. A managed identity can have at most "
                    f"{MAX_FEDERATED_CREDENTIALS} Federated Identity Credentials.",
                )
            for other in identity.federated.values():
                if (
                    other.name.lower() != name.lower()
                    and other.issuer == issuer
                    and other.subject == subject
                ):
                    raise StateError(
                        409,
                        "Conflict",
                        f"Federated Identity Credential '{other.name}' with the same issuer and "
                        "subject already exists on this managed identity.",
                    )
            fic_name = existing.name if existing else name
            fic = FederatedCredential(
                name=fic_name,
                issuer=issuer,
                subject=subject,
                audiences=audiences,
                id=f"{identity.id}/federatedIdentityCredentials/{fic_name}",
                effective_at=time.monotonic() + self.propagation_delay_s,
            )
            identity.federated[name.lower()] = fic
            return fic

    def begin_fic_write(self, identity_id: str) -> bool:
        """Mark a FIC write on ``identity_id`` in flight; False when one already is."""
        key = identity_id.lower()
        with self.lock:
            if key in self._fic_writes:
                return False
            self._fic_writes.add(key)
            return True

    def fic_writes_in_flight(self) -> set[str]:
        with self.lock:
            return set(self._fic_writes)

    def end_fic_write(self, identity_id: str) -> None:
        with self.lock:
            self._fic_writes.discard(identity_id.lower())

    def matching_federated_credential(
        self, identity: Identity, issuer: str, subject: str, audiences: list[str]
    ) -> FederatedCredential | None:
        """The FIC matching a presented assertion (case-sensitive, as Entra does)."""
        with self.lock:
            now = time.monotonic()
            for fic in identity.federated.values():
                if (
                    fic.effective_at <= now
                    and fic.issuer == issuer
                    and fic.subject == subject
                    and any(a in fic.audiences for a in audiences)
                ):
                    return fic
        return None

    # ---- service principals ------------------------------------------------------

    def add_service_principal(self, client_id: str, secret: str | SecretValue) -> str:
        """Register an app that signs in with ``client_id`` and ``secret``; its object id."""
        raw = secret.reveal() if isinstance(secret, SecretValue) else secret
        with self.lock:
            existing = self.service_principals.get(client_id.lower())
            object_id = existing.object_id if existing else str(uuid.uuid4())
            self.service_principals[client_id.lower()] = ServicePrincipal(
                client_id=client_id,
                object_id=object_id,
                secret_sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
            )
            return object_id

    def principal_exists(self, object_id: str) -> bool:
        oid = object_id.lower()
        with self.lock:
            return any(i.principal_id.lower() == oid for i in self.identities.values()) or any(
                sp.object_id.lower() == oid for sp in self.service_principals.values()
            )

    # ---- roles -------------------------------------------------------------------

    def role_definition(self, role: str) -> RoleDefinition:
        guid = role.rstrip("/").rsplit("/", 1)[-1].lower()
        with self.lock:
            found = self.role_definitions.get(guid)
        if found is None:
            raise StateError(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{guid.replace('-', '')}' does not exist.",
            )
        return found

    def role_definition_id(self, role: str) -> str:
        guid = self.role_definition(role).guid
        return (
            f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization"
            f"/roleDefinitions/{guid}"
        )

    def assign_role(
        self,
        scope: str,
        principal_id: str,
        role_definition_id: str,
        *,
        name: str | None = None,
        principal_type: str | None = None,
    ) -> RoleAssignment:
        """Create a role assignment; the same principal/role/scope under another name is a
        409 ``RoleAssignmentExists``. Idempotent for the same name and content."""
        scope = normalize_scope(scope)
        name = name or str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal_id}|{role_definition_id}")
        )
        if not is_guid(name):
            raise StateError(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be "
                "a GUID.",
            )
        self.check_scope(scope)
        definition = self.role_definition(role_definition_id)
        full_role_id = self.role_definition_id(definition.guid)
        if principal_type is None and not self.principal_exists(principal_id):
            raise StateError(
                400,
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist in the directory "
                f"{self.tenant_id}. Check that you have the correct principal ID. If you are "
                "creating this principal and then immediately assigning a role, this error might "
                "be related to a replication delay. In this case, set the role assignment "
                "principalType property to a value, such as ServicePrincipal, User, or Group.  "
                "See https://aka.ms/docs-principaltype",
            )
        candidate = RoleAssignment(
            name=name,
            scope=scope,
            role_definition_id=full_role_id,
            principal_id=principal_id,
            principal_type=principal_type or "ServicePrincipal",
            effective_at=time.monotonic() + self.propagation_delay_s,
        )
        with self.lock:
            existing = self.role_assignments.get(candidate.id.lower())
            if existing is not None:
                if (
                    existing.principal_id.lower() == principal_id.lower()
                    and existing.role_guid == definition.guid
                ):
                    return existing
                raise StateError(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be "
                    "updated.",
                )
            for other in self.role_assignments.values():
                if (
                    other.scope.lower() == scope.lower()
                    and other.principal_id.lower() == principal_id.lower()
                    and other.role_guid == definition.guid
                ):
                    raise StateError(
                        409,
                        "RoleAssignmentExists",
                        "The role assignment already exists. The ID of the existing role "
                        f"assignment is {other.name.replace('-', '')}.",
                    )
            self.role_assignments[candidate.id.lower()] = candidate
            return candidate

    def get_role_assignment(self, scope: str, name: str) -> RoleAssignment:
        key = assignment_id(normalize_scope(scope), name)
        with self.lock:
            found = self.role_assignments.get(key.lower())
        if found is None:
            raise StateError(
                404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found."
            )
        return found

    def delete_role_assignment(self, scope: str, name: str) -> RoleAssignment | None:
        key = assignment_id(normalize_scope(scope), name)
        with self.lock:
            return self.role_assignments.pop(key.lower(), None)

    def role_assignments_list(
        self, scope: str, *, at_scope: bool = False, principal_id: str | None = None
    ) -> list[RoleAssignment]:
        """Assignments visible at ``scope`` as ARM lists them: at, above and below the scope
        (``atScope()``: at and above only), optionally for one principal."""
        scope = normalize_scope(scope)
        with self.lock:
            items = list(self.role_assignments.values())
        out = []
        for ra in items:
            above = scope_contains(ra.scope, scope)
            below = scope_contains(scope, ra.scope)
            if at_scope and not above:
                continue
            if not (above or below):
                continue
            if principal_id and ra.principal_id.lower() != principal_id.lower():
                continue
            out.append(ra)
        return sorted(out, key=lambda r: r.created_on)

    def data_action_allowed(self, principal_id: str, resource: str, action: str) -> bool:
        """RBAC data plane: does any assignment at or above ``resource`` grant ``action``?"""
        with self.lock:
            items = list(self.role_assignments.values())
            defs = dict(self.role_definitions)
        now = time.monotonic()
        for ra in items:
            if ra.principal_id.lower() != principal_id.lower() or ra.effective_at > now:
                continue
            if not scope_contains(ra.scope, resource):
                continue
            definition = defs.get(ra.role_guid)
            if definition is not None and definition.allows_data(action):
                return True
        return False

    def check_scope(self, scope: str) -> None:
        """ARM refuses assignments at a scope in another subscription or a missing group."""
        parts = [p for p in scope.split("/") if p]
        if len(parts) < 2 or parts[0].lower() != "subscriptions":
            raise StateError(
                400, "InvalidScope", f"The scope '{scope}' is not valid for this operation."
            )
        if parts[1].lower() != self.subscription_id.lower():
            raise StateError(
                404, "SubscriptionNotFound", f"The subscription '{parts[1]}' could not be found."
            )
        if len(parts) >= 4 and parts[2].lower() == "resourcegroups":
            if not self.has_resource_group(parts[3]):
                raise StateError(
                    404,
                    "ResourceGroupNotFound",
                    f"Resource group '{parts[3]}' could not be found.",
                )
            if len(parts) >= 8 and parts[4].lower() == "providers":
                kind = f"{parts[5]}/{parts[6]}".lower()
                if kind == "microsoft.keyvault/vaults" and self.find_vault(parts[7]) is None:
                    raise StateError(
                        404,
                        "ResourceNotFound",
                        f"The Resource 'Microsoft.KeyVault/vaults/{parts[7]}' under resource "
                        f"group '{parts[3]}' was not found. For more details please go to "
                        "https://aka.ms/ARMResourceNotFoundFix",
                    )

    # ---- ARM caller permission knobs --------------------------------------------
    #
    # By default every caller with a valid tenant token acts as an Owner of the
    # subscription. ``deny_arm_action`` takes actions away (like a deny assignment);
    # ``restrict_arm_caller`` makes ARM judge one principal by its role assignments.
    # ARM's authorization of each request and its permissions API
    # (``arm_permissions``) read the same knobs, so a preflight sees what a write hits.

    def deny_arm_action(self, action: str, principal_id: str | None = None) -> None:
        with self.lock:
            self.arm_denials.append(ArmDenial(action, principal_id))

    def restrict_arm_caller(self, principal_id: str) -> None:
        """From now on ARM grants ``principal_id`` only what its role assignments at or
        above a scope allow (no implicit Owner); :meth:`clear_arm_denials` undoes it."""
        with self.lock:
            self.arm_rbac_callers.add(principal_id.lower())

    def clear_arm_denials(self) -> None:
        """Back to the default: every caller acts as an Owner."""
        with self.lock:
            self.arm_denials.clear()
            self.arm_rbac_callers.clear()

    def _denied_patterns(self, principal_id: str) -> list[str]:
        with self.lock:
            denials = list(self.arm_denials)
        out: list[str] = []
        for d in denials:
            mine = d.principal_id is None or d.principal_id.lower() == principal_id.lower()
            if mine and d.action not in out:
                out.append(d.action)
        return out

    def arm_action_denied(self, principal_id: str, action: str) -> bool:
        return matches_any(action, tuple(self._denied_patterns(principal_id)))

    def _caller_roles(self, principal_id: str, scope: str) -> list[RoleDefinition]:
        """The role definitions assigned to ``principal_id`` at or above ``scope``."""
        with self.lock:
            items = list(self.role_assignments.values())
            defs = dict(self.role_definitions)
        out = []
        for ra in sorted(items, key=lambda r: r.created_on):
            if ra.principal_id.lower() != principal_id.lower():
                continue
            if not scope_contains(ra.scope, scope):
                continue
            definition = defs.get(ra.role_guid)
            if definition is not None:
                out.append(definition)
        return out

    def arm_action_allowed(self, principal_id: str, action: str, scope: str) -> bool:
        """May ``principal_id`` perform control-plane ``action`` on ``scope``?"""
        if self.arm_action_denied(principal_id, action):
            return False
        with self.lock:
            restricted = principal_id.lower() in self.arm_rbac_callers
        if not restricted:
            return True
        return any(d.allows(action) for d in self._caller_roles(principal_id, scope))

    def arm_permissions(self, principal_id: str, scope: str) -> list[dict[str, list[str]]]:
        """What ``GET {scope}/providers/Microsoft.Authorization/permissions`` answers: one
        entry per role the caller holds at or above ``scope`` (the implicit Owner first,
        unless the caller is restricted), each denied action added to its ``notActions``.

        An action is allowed when some entry's ``actions`` match it and that entry's
        ``notActions`` do not: exactly when :meth:`arm_action_allowed` is true.
        """
        denied = self._denied_patterns(principal_id)
        with self.lock:
            restricted = principal_id.lower() in self.arm_rbac_callers
        roles = self._caller_roles(principal_id, scope)
        if not restricted:
            roles.insert(0, self.role_definitions.get(OWNER) or BUILTIN_ROLES[OWNER])
        entries = []
        for role in roles:
            not_actions = list(role.not_actions)
            not_actions += [a for a in denied if a not in not_actions]
            entries.append(
                {
                    "actions": list(role.actions),
                    "notActions": not_actions,
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            )
        return entries

    # ---- vaults ------------------------------------------------------------------

    def create_vault(
        self,
        name: str,
        *,
        mode: Literal["rbac", "access-policy"] = "rbac",
        resource_group: str = "rg",
        location: str = DEFAULT_LOCATION,
        access_policies: list[AccessPolicy] | None = None,
    ) -> Vault:
        if not VAULT_NAME_RE.match(name) or "--" in name:
            raise StateError(
                400,
                "VaultNameNotValid",
                f"The vault name '{name}' is invalid. A vault's name must be between 3-24 "
                "alphanumeric characters. The name must begin with a letter, end with a letter "
                "or digit, and not contain consecutive hyphens. Follow this link for more "
                "information: https://go.microsoft.com/fwlink/?linkid=2147742",
            )
        if mode not in ("rbac", "access-policy"):
            raise ValueError("mode must be 'rbac' or 'access-policy'")
        with self.lock:
            rg = self.ensure_resource_group(resource_group)
            existing = self.vaults.get(name.lower())
            if existing is not None:
                if existing.resource_group.lower() != rg.lower():
                    raise StateError(
                        409,
                        "VaultAlreadyExists",
                        f"The vault name '{name}' is already in use. Vault names are globally "
                        "unique so it is possible that the name is already taken.",
                    )
                existing.rbac = mode == "rbac"
                if access_policies is not None:
                    existing.access_policies = list(access_policies)
                return existing
            vault = Vault(
                name=name,
                resource_group=rg,
                subscription_id=self.subscription_id,
                tenant_id=self.tenant_id,
                rbac=mode == "rbac",
                location=location,
                access_policies=list(access_policies or []),
            )
            self.vaults[name.lower()] = vault
            return vault

    def find_vault(self, name: str) -> Vault | None:
        with self.lock:
            return self.vaults.get(name.lower())

    def get_vault(self, name: str) -> Vault:
        vault = self.find_vault(name)
        if vault is None:
            raise KeyError(f"no vault named {name!r} in the sandbox")
        return vault

    def update_access_policies(
        self, vault: Vault, kind: str, policies: list[AccessPolicy]
    ) -> list[AccessPolicy]:
        """``add`` merges permissions per object id, ``remove`` takes them away,
        ``replace`` sets them (Microsoft.KeyVault/vaults/accessPolicies/{kind})."""
        with self.lock:
            current = {p.object_id.lower(): p for p in vault.access_policies}
            for pol in policies:
                key = pol.object_id.lower()
                have = current.get(key)
                if kind == "replace" or have is None:
                    if kind != "remove":
                        current[key] = AccessPolicy(
                            pol.tenant_id,
                            pol.object_id,
                            list(pol.secrets),
                            list(pol.keys),
                            list(pol.certificates),
                            pol.application_id,
                        )
                    continue
                if kind == "add":
                    have.secrets = _union(have.secrets, pol.secrets)
                    have.keys = _union(have.keys, pol.keys)
                    have.certificates = _union(have.certificates, pol.certificates)
                else:  # remove
                    have.secrets = _minus(have.secrets, pol.secrets)
                    have.keys = _minus(have.keys, pol.keys)
                    have.certificates = _minus(have.certificates, pol.certificates)
                    if not (have.secrets or have.keys or have.certificates):
                        del current[key]
            vault.access_policies = list(current.values())
            return list(vault.access_policies)

    def access_policy_allows(self, vault: Vault, object_id: str, permission: str) -> bool:
        with self.lock:
            for pol in vault.access_policies:
                if pol.object_id.lower() == object_id.lower() and (
                    permission.lower() in (s.lower() for s in pol.secrets)
                    or "all" in (s.lower() for s in pol.secrets)
                ):
                    return True
        return False

    def set_secret(
        self,
        vault_name: str,
        name: str,
        value: str | SecretValue,
        *,
        content_type: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> SecretVersion:
        """Add a new version of secret ``name`` (the latest from now on)."""
        if not SECRET_NAME_RE.match(name):
            raise StateError(
                400,
                "BadParameter",
                "The request URI contains an invalid name: " + name,
            )
        secret = value if isinstance(value, SecretValue) else SecretValue(value)
        with self.lock:
            vault = self.get_vault(vault_name)
            key = name.lower()
            if key in vault.deleted:
                raise StateError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its name "
                    "cannot be reused; in this state, the secret can only be recovered or purged.",
                ).with_inner("ObjectIsDeletedButRecoverable")
            stamp = int(time.time())
            version = SecretVersion(
                version=uuid.uuid4().hex,
                value=secret,
                content_type=content_type,
                enabled=True,
                created=stamp,
                updated=stamp,
                tags=dict(tags or {}),
            )
            vault.secret_names.setdefault(key, name)
            vault.secrets.setdefault(key, []).append(version)
            return version

    # ---- IMDS / aad-pod-identity -------------------------------------------------

    def bind_pod_identity(self, identity_id: str, selector: str | None = None) -> PodBinding:
        identity = self.get_identity(identity_id)
        binding = PodBinding(identity.id, selector)
        with self.lock:
            if binding not in self.pod_bindings:
                self.pod_bindings.append(binding)
        return binding

    def imds_identities(self, selector: str | None) -> list[Identity]:
        """The identities an IMDS caller may use: those bound to its selector (a pod with
        ``aadpodidbinding: selector``) or, for a caller with no selector, the node's."""
        with self.lock:
            bindings = list(self.pod_bindings)
        out: list[Identity] = []
        for b in bindings:
            if b.selector == selector:
                identity = self.identities.get(b.identity_id.lower())
                if identity is not None and identity not in out:
                    out.append(identity)
        return out


def _union(a: list[str], b: list[str]) -> list[str]:
    seen = {x.lower() for x in a}
    return list(a) + [x for x in b if x.lower() not in seen]


def _minus(a: list[str], b: list[str]) -> list[str]:
    drop = {x.lower() for x in b}
    return [x for x in a if x.lower() not in drop]


def _rg_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    for i, p in enumerate(parts):
        if p.lower() == "resourcegroups" and i + 1 < len(parts):
            return parts[i + 1]
    return ""
