"""Key Vault grants: role assignments (RBAC vaults) and access policies, and the check
that every declared Key Vault exists, in its resource group and in its declared mode.

Reads: each declared vault once (``GET .../Microsoft.KeyVault/vaults/{vault}``: it
proves the vault and its mode, and holds an access-policy vault's policies), the
role assignments of each resource group holding an RBAC vault in one list, and with
``--prune`` the assignments of each managed identity that goes. A role assignment is
secretsboot's when its name is the deterministic GUID secretsboot gives it on a
managed identity; an access policy when its identity was created by secretsboot.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from typing import Any

from secretsboot.contract import KEY_VAULT_SECRETS_USER
from secretsboot.errors import BadInputError, NotFoundError
from secretsboot.provision.azure.arm import Arm, error_code
from secretsboot.provision.model import (
    Change,
    Desired,
    Note,
    Observed,
    Ownership,
    ResourceKey,
    System,
)
from secretsboot.provision.names import role_assignment_name
from secretsboot.spec import KeyVaultMode


class Grants:
    def __init__(self, arm: Arm) -> None:
        self.arm = arm
        self.missing_groups: set[str] = set()

    def _vault_rgs(self) -> dict[str, tuple[str, KeyVaultMode]]:
        azure = self.arm.spec.azure
        assert azure is not None  # noqa: S101
        return {
            kv.name: (kv.resource_group or azure.resource_group, kv.mode) for kv in azure.key_vaults
        }

    # -- reads -----------------------------------------------------------------------

    def check_vaults(self, users: dict[str, list[str]], problems: list[Note]) -> dict[str, Any]:
        """GET each declared Key Vault; a missing one or one in the other mode is a problem.
        Returns the vaults found, by name."""
        found: dict[str, Any] = {}
        for i, (vault, (rg, mode)) in enumerate(sorted(self._vault_rgs().items())):
            who = ", ".join(users.get(vault, [])) or "(spec)"
            try:
                got = self.arm.call(
                    f"read Key Vault '{vault}' (resource group '{rg}')",
                    "access-policy",
                    "read",
                    functools.partial(self.arm.kv.vaults.get, rg, vault),
                )
            except NotFoundError as exc:
                if "resource group does not exist" in exc.message:
                    self.missing_groups.add(rg.lower())
                    problem = f"its resource group '{rg}' does not exist"
                else:
                    problem = f"it does not exist in resource group '{rg}'"
                rbac = "true" if mode is KeyVaultMode.RBAC else "false"
                problems.append(
                    Note(
                        who,
                        "error",
                        f"azure: Key Vault '{vault}' is declared in azure.keyVaults but {problem}",
                        f"create it (az keyvault create -n {vault} -g {rg} "
                        f"--enable-rbac-authorization {rbac}), or fix the name or resourceGroup "
                        f"of azure.keyVaults[{i}] to name an existing vault",
                        kind="not-found",
                    )
                )
                continue
            rbac_mode = bool(getattr(got.properties, "enable_rbac_authorization", False))
            actual = KeyVaultMode.RBAC if rbac_mode else KeyVaultMode.ACCESS_POLICY
            if actual is not mode:
                problems.append(
                    Note(
                        who,
                        "error",
                        f"azure: Key Vault '{vault}' is in {actual.value} mode but the spec "
                        f"declares mode: {mode.value}",
                        f"set mode: {actual.value} on azure.keyVaults[{i}] (grants differ: "
                        "role assignments in rbac mode, access policies otherwise)",
                        kind="bad-input",
                    )
                )
                continue
            found[vault] = got
        return found

    def observe(
        self,
        vaults: dict[str, Any],
        out: dict[ResourceKey, Observed],
        going: Iterable[str],
    ) -> None:
        self._observe_role_assignments(out)
        self._observe_orphan_assignments(out, going)
        for vault, got in sorted(vaults.items()):
            rg, mode = self._vault_rgs()[vault]
            if mode is KeyVaultMode.ACCESS_POLICY:
                self._add_access_policies(out, vault, rg, got)

    def _observe_role_assignments(self, out: dict[ResourceKey, Observed]) -> None:
        """GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Authorization/
        roleAssignments, once per resource group holding an RBAC vault of the spec."""
        sub = self.arm.settings.subscription_id
        groups = {rg for rg, mode in self._vault_rgs().values() if mode is KeyVaultMode.RBAC}
        for rg in sorted(groups):
            if rg.lower() in self.missing_groups:
                continue
            scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
            items = self.arm.call(
                f"list role assignments of resource group '{rg}'",
                "role-assignment",
                "read",
                functools.partial(self._list_assignments, scope),
            )
            for ra in items:
                self._add_assignment(out, ra)

    def _observe_orphan_assignments(
        self, out: dict[ResourceKey, Observed], going: Iterable[str]
    ) -> None:
        """GET /subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments
        ?$filter=principalId eq '{id}', per managed identity --prune removes: its grants on
        vaults the spec no longer names would otherwise outlive it."""
        sub = self.arm.settings.subscription_id
        for name in sorted(going):
            principal = self.arm.index.infos[name].principal_id
            items = self.arm.call(
                f"list role assignments of identity '{name}'",
                "role-assignment",
                "read",
                functools.partial(
                    self._list_assignments, f"/subscriptions/{sub}", f"principalId eq '{principal}'"
                ),
            )
            for ra in items:
                self._add_assignment(out, ra)

    def _add_assignment(self, out: dict[ResourceKey, Observed], ra: Any) -> None:
        index = self.arm.index
        identity = index.by_principal.get(str(ra.principal_id).lower())
        role_suffix = KEY_VAULT_SECRETS_USER.lower()
        if identity is None or not str(ra.role_definition_id).lower().endswith(role_suffix):
            return
        short = vault_scope_short(str(ra.scope))
        if short is None:
            return
        key = ResourceKey(System.AZURE, "role-assignment", f"{identity} -> {short}")
        mine = identity in index.managed and ra.name == (
            role_assignment_name(str(ra.scope), str(ra.principal_id), str(ra.role_definition_id))
        )
        out[key] = Observed(
            key,
            {
                "scope": ra.scope,
                "roleDefinitionId": ra.role_definition_id,
                "principalId": ra.principal_id,
            },
            managed=mine,
            raw={"scope": ra.scope, "name": ra.name},
            ownership=Ownership.CREATED if mine else None,
        )

    def _list_assignments(self, scope: str, flt: str | None = None) -> list[Any]:
        return list(self.arm.auth.role_assignments.list_for_scope(scope, filter=flt))

    def _add_access_policies(
        self, out: dict[ResourceKey, Observed], vault: str, rg: str, got: Any
    ) -> None:
        index = self.arm.index
        for p in getattr(got.properties, "access_policies", None) or []:
            identity = index.by_principal.get(str(p.object_id).lower())
            if identity is None:
                continue
            secrets = [_enum_text(s) for s in (getattr(p.permissions, "secrets", None) or [])]
            key = ResourceKey(System.AZURE, "access-policy", f"{vault}/{identity}")
            # Access policies carry no record: only those of identities secretsboot
            # created are its own (an adopted identity's policies may predate it).
            mine = identity in index.created
            out[key] = Observed(
                key,
                {
                    "objectId": p.object_id,
                    "tenantId": p.tenant_id,
                    # A policy granting more than get satisfies "get": compare as such.
                    "permissions": {"secrets": ["get"] if "get" in secrets else secrets},
                },
                managed=mine,
                raw={"vault": vault, "resource_group": rg, "secrets": secrets},
                ownership=Ownership.CREATED if mine else None,
            )

    # -- writes ----------------------------------------------------------------------

    def put_role_assignment(self, want: Desired, what: str) -> None:
        """PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{uuid5 name}."""
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        arm = self.arm
        try:
            arm.call(
                what,
                "role-assignment",
                "write",
                lambda: arm.auth.role_assignments.create(
                    want.body["scope"],
                    want.extra["assignment"],
                    RoleAssignmentCreateParameters(
                        role_definition_id=want.body["roleDefinitionId"],
                        principal_id=want.body["principalId"],
                        principal_type="ServicePrincipal",
                        description=want.extra.get("description"),
                    ),
                ),
            )
        except BadInputError as exc:
            # The same grant under another (foreign) name: the grant exists, nothing to do.
            if "RoleAssignmentExists" not in exc.message:
                raise

    def put_access_policy(self, want: Desired, what: str) -> None:
        """PUT .../Microsoft.KeyVault/vaults/{vault}/accessPolicies/add (secrets: get)."""
        self._access_policy(
            what, "write", want.extra["resource_group"], want.extra["vault"], "add", want.body
        )

    def delete_access_policy(self, change: Change, what: str) -> None:
        """PUT .../accessPolicies/remove with the permissions the policy holds."""
        have = change.observed
        assert have is not None  # noqa: S101
        raw = have.raw
        body = {**have.body, "permissions": {"secrets": raw["secrets"]}}
        self._access_policy(what, "delete", raw["resource_group"], raw["vault"], "remove", body)

    def _access_policy(
        self, what: str, verb: str, rg: str, vault: str, kind: str, policy: dict[str, Any]
    ) -> None:
        from azure.mgmt.keyvault.models import VaultAccessPolicyParameters

        body = {
            "properties": {
                "accessPolicies": [
                    {
                        "tenantId": policy["tenantId"],
                        "objectId": policy["objectId"],
                        "permissions": {"secrets": list(policy["permissions"]["secrets"])},
                    }
                ]
            }
        }
        self.arm.call(
            what,
            "access-policy",
            verb,
            lambda: self.arm.kv.vaults.update_access_policy(
                rg, vault, kind, VaultAccessPolicyParameters(body)
            ),
        )

    def delete_role_assignment(self, change: Change, what: str) -> None:
        assert change.observed is not None  # noqa: S101
        raw = change.observed.raw
        self.arm.call(
            what,
            "role-assignment",
            "delete",
            lambda: self.arm.auth.role_assignments.delete(raw["scope"], raw["name"]),
        )


def vault_scope_short(scope: str) -> str | None:
    """``.../vaults/NAME`` -> NAME, ``.../vaults/NAME/secrets/S`` -> NAME/S, else None."""
    m = re.search(
        r"/providers/Microsoft\.KeyVault/vaults/([^/]+)(?:/secrets/([^/]+))?/?$", scope, re.I
    )
    if not m:
        return None
    return f"{m.group(1)}/{m.group(2)}" if m.group(2) else m.group(1)


def _enum_text(value: Any) -> str:
    """``SecretPermissions.GET`` -> ``get`` (the SDK hands back enums or strings)."""
    return str(getattr(value, "value", value)).lower()


def is_missing_vault(exc: Any) -> bool:
    """A 404 ``ResourceNotFound`` from ARM (the vault is not there)."""
    return (exc.status_code or 0) == 404 and error_code(exc) == "ResourceNotFound"
