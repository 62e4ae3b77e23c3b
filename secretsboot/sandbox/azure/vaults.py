"""Key Vault's side of :class:`~.state.AzureState`: vaults, access policies and secrets."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Literal

from secretsboot.sandbox.azure.identities import IdentityState
from secretsboot.sandbox.azure.models import (
    DEFAULT_LOCATION,
    SECRET_NAME_RE,
    VAULT_NAME_RE,
    AccessPolicy,
    DeletedVault,
    SecretVersion,
    StateError,
    Vault,
    new_system_data,
    touch,
)
from secretsboot.secret import SecretValue


class VaultState(IdentityState):
    # ---- vaults ------------------------------------------------------------------

    def create_vault(
        self,
        name: str,
        *,
        mode: Literal["rbac", "access-policy"] = "rbac",
        resource_group: str = "rg",
        location: str = DEFAULT_LOCATION,
        access_policies: list[AccessPolicy] | None = None,
        by: str | None = None,
        propagate: bool = False,
    ) -> Vault:
        """Create or update vault ``name``; a soft-deleted name is 409 ``ConflictError``
        until it is purged or recovered (``by``: the caller's client id, for systemData)."""
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
            if name.lower() in self.deleted_vaults:
                raise StateError(
                    409,
                    "ConflictError",
                    "A vault with the same name already exists in deleted state. You need to "
                    "either recover or purge existing key vault. Follow this link "
                    "https://go.microsoft.com/fwlink/?linkid=2149745 for more information on "
                    "soft delete.",
                )
            existing = self.vaults.get(name.lower())
            if existing is not None:
                touch(existing.system_data, by)
                if existing.resource_group.lower() != rg.lower():
                    raise StateError(
                        409,
                        "VaultAlreadyExists",
                        f"The vault name '{name}' is already in use. Vault names are globally "
                        "unique so it is possible that the name is already taken.",
                    )
                existing.rbac = mode == "rbac"
                if access_policies is not None:
                    self.update_access_policies(
                        existing, "replace", access_policies, propagate=propagate
                    )
                    wanted = {p.object_id.lower() for p in access_policies}
                    existing.access_policies = [
                        p for p in existing.access_policies if p.object_id.lower() in wanted
                    ]
                return existing
            vault = Vault(
                name=name,
                resource_group=rg,
                subscription_id=self.subscription_id,
                tenant_id=self.tenant_id,
                rbac=mode == "rbac",
                location=location,
                system_data=new_system_data(by),
            )
            self.update_access_policies(vault, "add", access_policies or [], propagate=propagate)
            self.vaults[name.lower()] = vault
            return vault

    def delete_vault(self, name: str) -> bool:
        """Soft-delete vault ``name`` (with its secrets) for the retention period."""
        now = dt.datetime.now(dt.UTC)
        with self.lock:
            vault = self.vaults.pop(name.lower(), None)
            if vault is None:
                return False
            self.deleted_vaults[name.lower()] = DeletedVault(
                vault,
                now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                (now + dt.timedelta(days=vault.retention_days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            return True

    def deleted_vault(self, name: str, location: str | None = None) -> DeletedVault:
        with self.lock:
            found = self.deleted_vaults.get(name.lower())
        if found is None or (location and found.vault.location.lower() != location.lower()):
            raise StateError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.KeyVault/deletedVaults/{name}' was not found. For "
                "more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return found

    def purge_deleted_vault(self, name: str, location: str) -> None:
        self.deleted_vault(name, location)
        with self.lock:
            self.deleted_vaults.pop(name.lower(), None)

    def recover_vault(self, name: str, resource_group: str, by: str | None = None) -> Vault:
        """``createMode: recover``: the soft-deleted vault comes back with its secrets."""
        found = self.deleted_vault(name)
        with self.lock:
            if found.vault.resource_group.lower() != resource_group.lower():
                raise StateError(
                    400,
                    "BadRequest",
                    f"The deleted vault '{name}' belonged to resource group "
                    f"'{found.vault.resource_group}'; recover it there.",
                )
            self.deleted_vaults.pop(name.lower(), None)
            touch(found.vault.system_data, by)
            self.vaults[name.lower()] = found.vault
            return found.vault

    def find_vault(self, name: str) -> Vault | None:
        with self.lock:
            return self.vaults.get(name.lower())

    def get_vault(self, name: str) -> Vault:
        vault = self.find_vault(name)
        if vault is None:
            raise KeyError(f"no vault named {name!r} in the sandbox")
        return vault

    def update_access_policies(
        self, vault: Vault, kind: str, policies: list[AccessPolicy], *, propagate: bool = False
    ) -> list[AccessPolicy]:
        """``add`` merges permissions per object id, ``remove`` takes them away,
        ``replace`` sets them (Microsoft.KeyVault/vaults/accessPolicies/{kind}). A changed
        policy's new secret permissions take effect after the propagation delay (a random
        one when ``propagate``: a write over ARM); a policy removed entirely goes at once."""
        effective_at = self.effective_from(propagate=propagate)
        now = time.monotonic()
        with self.lock:
            current = {p.object_id.lower(): p for p in vault.access_policies}
            for pol in policies:
                key = pol.object_id.lower()
                have = current.get(key)
                before = list(have.secrets_in_effect(now)) if have is not None else []
                if kind == "replace" or have is None:
                    if kind != "remove":
                        current[key] = AccessPolicy(
                            pol.tenant_id,
                            pol.object_id,
                            list(pol.secrets),
                            list(pol.keys),
                            list(pol.certificates),
                            pol.application_id,
                            effective_at,
                            before,
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
                        continue
                have.before, have.effective_at = before, effective_at
            vault.access_policies = list(current.values())
            return list(vault.access_policies)

    def access_policy_allows(self, vault: Vault, object_id: str, permission: str) -> bool:
        now = time.monotonic()
        with self.lock:
            for pol in vault.access_policies:
                granted = [s.lower() for s in pol.secrets_in_effect(now)]
                if pol.object_id.lower() == object_id.lower() and (
                    permission.lower() in granted or "all" in granted
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


def _union(a: list[str], b: list[str]) -> list[str]:
    seen = {x.lower() for x in a}
    return list(a) + [x for x in b if x.lower() not in seen]


def _minus(a: list[str], b: list[str]) -> list[str]:
    drop = {x.lower() for x in b}
    return [x for x in a if x.lower() not in drop]
