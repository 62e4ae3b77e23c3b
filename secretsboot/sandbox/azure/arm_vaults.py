"""The ARM fake's ``Microsoft.KeyVault/vaults``: create, get, list, delete, access policies,
and the soft-deleted vaults.

A mixin of :class:`~.arm.ArmApp` (which routes to it and authorizes the caller). As in
Azure, DELETE soft-deletes a vault: its name stays taken (a create is 409
``ConflictError``) until ``POST .../locations/{loc}/deletedVaults/{name}/purge``, or it
comes back with its secrets through a PUT with ``properties.createMode: recover``;
``GET .../providers/Microsoft.KeyVault/deletedVaults`` and
``GET .../locations/{loc}/deletedVaults/{name}`` show them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.azure.arm_common import (
    CALLER,
    KV,
    arm_error,
    json_body,
    no_route,
    not_allowed,
    properties,
)
from secretsboot.sandbox.azure.state import (
    SECRET_PERMISSIONS,
    AccessPolicy,
    AzureState,
    StateError,
    Vault,
)


class VaultRoutes:
    """ARM's Key Vault routes (a mixin of :class:`~.arm.ArmApp`)."""

    state: AzureState
    on_vault: Callable[[Vault], None] | None

    if TYPE_CHECKING:

        def _authorize(self, oid: str, action: str, scope: str) -> None: ...

    # ---- Microsoft.KeyVault/vaults -----------------------------------------------

    def _vaults(self, req: Request, oid: str, path: str, rg: str, names: list[str]) -> Response:
        action = KV + "/"
        name = names[0]
        vault = self.state.find_vault(name)
        if vault is not None and vault.resource_group.lower() != rg.lower():
            vault = None if req.method != "PUT" else vault
        not_found = arm_error(
            404,
            "ResourceNotFound",
            f"The Resource '{KV}/{name}' under resource group '{rg}' was not found. For more "
            "details please go to https://aka.ms/ARMResourceNotFoundFix",
        )
        if len(names) == 3 and names[1].lower() == "accesspolicies":
            if req.method != "PUT":
                return not_allowed(req)
            self._authorize(oid, action + "accessPolicies/write", path)
            if vault is None:
                return not_found
            kind = names[2].lower()
            if kind not in ("add", "replace", "remove"):
                return arm_error(
                    400,
                    "BadRequest",
                    f"The operation kind '{names[2]}' is invalid; use add, replace or remove.",
                )
            data = json_body(req)
            policies = self._policies(properties(data).get("accessPolicies"))
            updated = self.state.update_access_policies(vault, kind, policies, propagate=True)
            return Response(
                200,
                {
                    "id": f"{vault.id}/accessPolicies/{kind}",
                    "type": "Microsoft.KeyVault/vaults/accessPolicies",
                    "location": vault.location,
                    "properties": {"accessPolicies": [p.arm_body() for p in updated]},
                },
            )
        if len(names) != 1:
            return no_route(req, path)
        if req.method == "GET":
            self._authorize(oid, action + "read", path)
            return Response(200, vault.arm_body()) if vault else not_found
        if req.method == "DELETE":
            self._authorize(oid, action + "delete", path)
            if vault is None:
                return Response(204)
            self.state.delete_vault(vault.name)
            return Response(200)
        if req.method in ("PUT", "PATCH"):
            self._authorize(oid, action + "write", path)
            return self._put_vault(req, rg, name, vault, patch=req.method == "PATCH")
        return not_allowed(req)

    def _policies(self, raw: Any) -> list[AccessPolicy]:
        """The access policies of a request body (a 400 ``BadRequest``, raised, if malformed)."""
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise StateError(400, "BadRequest", "'accessPolicies' must be an array.")
        out = []
        for item in raw:
            if not isinstance(item, dict) or not isinstance(item.get("objectId"), str):
                raise StateError(400, "BadRequest", "Each access policy needs 'objectId'.")
            raw_perms = item.get("permissions")
            perms: dict[str, Any] = raw_perms if isinstance(raw_perms, dict) else {}
            secrets = [str(s) for s in perms.get("secrets") or []]
            bad = [s for s in secrets if s.lower() not in (*SECRET_PERMISSIONS, "all")]
            if bad:
                raise StateError(
                    400,
                    "BadRequest",
                    f"Invalid value found at accessPolicies[].permissions.secrets: {bad[0]}",
                )
            out.append(
                AccessPolicy(
                    tenant_id=str(item.get("tenantId") or self.state.tenant_id),
                    object_id=item["objectId"],
                    secrets=secrets,
                    keys=[str(s) for s in perms.get("keys") or []],
                    certificates=[str(s) for s in perms.get("certificates") or []],
                    application_id=item.get("applicationId"),
                )
            )
        return out

    def _put_vault(
        self, req: Request, rg: str, name: str, vault: Vault | None, *, patch: bool
    ) -> Response:
        data = json_body(req)
        props = properties(data)
        if patch and vault is None:
            return arm_error(404, "ResourceNotFound", f"The Resource '{KV}/{name}' was not found.")
        if not patch:
            missing = [k for k in ("tenantId", "sku") if k not in props]
            if missing:
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'Required "
                    f"property '{missing[0]}' not found in JSON. Path 'properties'.'",
                )
            if str(props["tenantId"]).lower() != self.state.tenant_id.lower():
                return arm_error(
                    400,
                    "BadRequest",
                    f"The tenant '{props['tenantId']}' is not the tenant of subscription "
                    f"'{self.state.subscription_id}'.",
                )
        policies = (
            self._policies(props.get("accessPolicies")) if "accessPolicies" in props else None
        )
        if vault is None:
            rbac = bool(props.get("enableRbacAuthorization", False))
        else:
            rbac = bool(props.get("enableRbacAuthorization", vault.rbac))
        if str(props.get("createMode", "")).lower() == "recover":
            vault = self.state.recover_vault(name, rg, by=CALLER.get())
            if self.on_vault is not None:
                self.on_vault(vault)
            return Response(200, vault.arm_body())
        created = vault is None
        raw_location = data.get("location")
        location = raw_location if isinstance(raw_location, str) else "eastus"
        vault = self.state.create_vault(
            name,
            mode="rbac" if rbac else "access-policy",
            resource_group=rg,
            location=location if created else (vault.location if vault else location),
            access_policies=policies,
            by=CALLER.get(),
            propagate=True,
        )
        if self.on_vault is not None:
            self.on_vault(vault)
        headers = {"x-ms-request-id": str(uuid.uuid4())}
        return Response(201 if created else 200, vault.arm_body(), headers)

    # ---- Microsoft.KeyVault/deletedVaults ----------------------------------------

    def _deleted_vaults(
        self, req: Request, oid: str, path: str, kind: str, names: list[str]
    ) -> Response:
        """``/providers/Microsoft.KeyVault/deletedVaults`` (list) and
        ``/providers/Microsoft.KeyVault/locations/{loc}/deletedVaults/{name}[/purge]``."""
        read = "Microsoft.KeyVault/deletedVaults/read"
        if kind.endswith("/deletedvaults"):
            if names or req.method != "GET":
                return no_route(req, path)
            self._authorize(oid, read, path)
            with self.state.lock:
                items = [d.arm_body() for d in self.state.deleted_vaults.values()]
            return Response(200, {"value": items})
        if len(names) < 3 or names[1].lower() != "deletedvaults" or len(names) > 4:
            return no_route(req, path)
        location, name = names[0], names[2]
        if len(names) == 3 and req.method == "GET":
            self._authorize(oid, read, path)
            return Response(200, self.state.deleted_vault(name, location).arm_body())
        if len(names) == 4 and names[3].lower() == "purge" and req.method == "POST":
            self._authorize(oid, "Microsoft.KeyVault/locations/deletedVaults/purge/action", path)
            self.state.purge_deleted_vault(name, location)
            return Response(200)
        return not_allowed(req)
