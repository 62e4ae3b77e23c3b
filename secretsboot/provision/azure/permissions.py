"""Preflight of permissions: ask ARM whether the caller may make the pending writes.

``GET {scope}/providers/Microsoft.Authorization/permissions`` once per scope, before
anything is written anywhere; every missing action is named with its scope, the
objects that need it and a built-in role that grants it.
"""

from __future__ import annotations

import functools
import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from secretsboot.errors import DeniedError
from secretsboot.provision.azure.arm import PERMISSION, Arm, error_code
from secretsboot.provision.azure.grants import vault_scope_short
from secretsboot.provision.model import Action, Change, System

log = logging.getLogger("secretsboot.provision.azure")


class Permissions:
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    def preflight(self, pending: Iterable[Change]) -> None:
        """Ask ARM whether the caller may make the pending writes, and refuse before
        anything is written anywhere.

        ``GET {scope}/providers/Microsoft.Authorization/permissions`` once per scope: the
        resource group for identities and federated credentials (an identity to create
        does not exist yet), the vault for role assignments and access policies (a grant
        made on the vault itself counts there; a vault not found falls back to its
        resource group). Every missing action is named with its scope, the objects that
        need it and a role that grants it. An ARM without the permissions API (404 with
        no ARM resource code, or 400 ``InvalidResourceType``) is not asked: its 403 then
        surfaces at the write itself.
        """
        needed: dict[_Scope, dict[str, list[str]]] = {}
        for c in pending:
            if c.key.system != System.AZURE or c.action is Action.NOOP:
                continue
            verb = "delete" if c.action is Action.DELETE else "write"
            action = PERMISSION.get((c.key.kind, verb))
            if action is None:
                continue
            users = needed.setdefault(self._scope_of(c), {}).setdefault(action, [])
            users.append(f"{c.key.kind} {c.key.name}")
        missing: list[tuple[_Scope, str, list[str]]] = []
        for scope, actions in sorted(needed.items(), key=lambda kv: kv[0].sort_key):
            perms = self._permissions_at(scope)
            if perms is None:
                return
            for action, users in sorted(actions.items()):
                if not any(_permits(p, action) for p in perms):
                    missing.append((scope, action, users))
        if missing:
            raise _preflight_denied(missing, self.arm.settings.subscription_id)

    def _permissions_at(self, scope: _Scope) -> list[Any] | None:
        """The caller's permission entries at ``scope`` (None: ARM has no such API)."""
        sub = self.arm.settings.subscription_id
        try:
            got = self.arm.call(
                f"read the caller's permissions on {scope.arm_id(sub)} (preflight)",
                "role-assignment",
                "read",
                functools.partial(self._list_permissions, scope),
            )
        except _NoPermissionsApi:
            log.warning(
                "azure: ARM at %s has no permissions API; a missing permission will show "
                "only at the write",
                self.arm.settings.arm_endpoint,
            )
            return None
        if got is None:  # the vault is not there (yet): ask its resource group
            return self._permissions_at(_Scope(scope.resource_group, None))
        return got

    def _list_permissions(self, scope: _Scope) -> list[Any] | None:
        """GET .../resourcegroups/{rg}[/providers/Microsoft.KeyVault/vaults/{vault}]/
        providers/Microsoft.Authorization/permissions (None: the vault does not exist)."""
        from azure.core.exceptions import HttpResponseError

        try:
            if scope.vault is None:
                return list(self.arm.auth.permissions.list_for_resource_group(scope.resource_group))
            return list(
                self.arm.auth.permissions.list_for_resource(
                    scope.resource_group, "Microsoft.KeyVault", "", "vaults", scope.vault
                )
            )
        except HttpResponseError as exc:
            status, code = exc.status_code or 0, error_code(exc)
            if status == 404 and code == "ResourceNotFound" and scope.vault is not None:
                return None
            if (status == 404 and code not in _ARM_NOT_FOUND_CODES) or (
                status == 400 and code == "InvalidResourceType"
            ):
                raise _NoPermissionsApi from None
            raise

    def _scope_of(self, change: Change) -> _Scope:
        """Where ARM checks the permission for ``change``: its vault, else its group."""
        src = change.desired.extra if change.desired is not None else {}
        raw = change.observed.raw if change.observed is not None else None
        raw_dict = raw if isinstance(raw, dict) else {}
        scope = ""
        if change.desired is not None:
            scope = str(change.desired.body.get("scope", ""))
        elif raw_dict:
            scope = str(raw_dict.get("scope") or "")
        rg = src.get("resource_group") or raw_dict.get("resource_group")
        if not rg:
            m = re.search(r"/resourceGroups/([^/]+)", scope, re.I)
            rg = m.group(1) if m else None
        if not rg and change.key.kind == "managed-identity":
            rg = change.key.name.partition("/")[0]
        vault: str | None = None
        if change.key.kind in ("role-assignment", "access-policy"):
            vault = src.get("vault") or raw_dict.get("vault")
            if not vault:
                short = vault_scope_short(scope)
                vault = short.split("/", 1)[0] if short else None
        return _Scope(str(rg or self.arm.rg), str(vault) if vault else None)


def _permits(permission: Any, action: str) -> bool:
    """Does one ARM permission entry allow ``action``? Its ``actions`` must match and its
    ``notActions`` must not (they subtract from this entry only; another entry may still
    grant the action). Matching is ARM's: case-insensitive, ``*`` spans any characters,
    ``/`` included (``*``, ``Microsoft.Authorization/*``, ``*/read``)."""
    allowed = any(_action_matches(str(a), action) for a in permission.actions or [])
    denied = any(_action_matches(str(a), action) for a in permission.not_actions or [])
    return allowed and not denied


@functools.lru_cache(maxsize=256)
def _action_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.IGNORECASE
    )


def _action_matches(pattern: str, action: str) -> bool:
    return _action_pattern(pattern).match(action) is not None


@dataclass(frozen=True)
class _Scope:
    """Where a permission is checked: a resource group, or a Key Vault inside one."""

    resource_group: str
    vault: str | None

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.resource_group.lower(), (self.vault or "").lower())

    def arm_id(self, subscription_id: str) -> str:
        rg = f"/subscriptions/{subscription_id}/resourceGroups/{self.resource_group}"
        return f"{rg}/providers/Microsoft.KeyVault/vaults/{self.vault}" if self.vault else rg


class _NoPermissionsApi(Exception):
    """This ARM does not serve Microsoft.Authorization/permissions."""


# 404 codes ARM gives for a missing scope (any other 404: the API itself is missing)
_ARM_NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"}
)

# A built-in role that grants each action the provisioner writes with (the narrowest one).
_GRANTING_ROLE = {
    "Microsoft.ManagedIdentity/": "Managed Identity Contributor",
    "Microsoft.Authorization/roleAssignments/": "Role Based Access Control Administrator",
    "Microsoft.KeyVault/": "Key Vault Contributor",
}


def _granting_role(action: str) -> str:
    for prefix, role in _GRANTING_ROLE.items():
        if action.lower().startswith(prefix.lower()):
            return role
    return "Owner"


def _preflight_denied(missing: list[tuple[_Scope, str, list[str]]], sub: str) -> DeniedError:
    """One line naming every missing action, its scope and what needs it; the fix."""
    parts = []
    for scope, action, users in missing:
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        parts.append(f"{action} on scope '{scope.arm_id(sub)}' (needed by {shown})")
    assignee = os.environ.get("AZURE_CLIENT_ID") or "<the provisioning principal>"
    fixes = []
    for scope, action, _ in missing:
        fix = (
            f'az role assignment create --assignee {assignee} --role "{_granting_role(action)}" '
            f"--scope {scope.arm_id(sub)}"
        )
        if fix not in fixes:
            fixes.append(fix)
    return DeniedError(
        "azure: the caller lacks " + "; ".join(parts) + " (ARM permissions API, preflight); "
        "nothing was written anywhere",
        hint="grant a role that allows it at that scope or above, then re-run: " + "; ".join(fixes),
    )
