"""Azure RBAC's side of :class:`~.state.AzureState`: role definitions and assignments, the
data-plane check and ARM's caller permission knobs."""

from __future__ import annotations

import time
import uuid

from secretsboot.sandbox.azure.models import (
    BUILTIN_ROLES,
    OWNER,
    ArmDenial,
    RoleAssignment,
    RoleDefinition,
    StateError,
    assignment_id,
    is_guid,
    matches_any,
    normalize_scope,
    scope_contains,
)
from secretsboot.sandbox.azure.vaults import VaultState


class RbacState(VaultState):
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
        propagate: bool = False,
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
            effective_at=self.effective_from(propagate=propagate),
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
