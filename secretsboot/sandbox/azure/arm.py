"""The Azure Resource Manager fake: managed identities, FICs, RBAC and Key Vault vaults.

Enough of ARM for the official management clients configured with
``base_url=arm_url, credential_scopes=["https://management.azure.com/.default"]``:

* ``ManagedServiceIdentityClient`` (azure-mgmt-msi 7.x): user-assigned identities
  create/get/list/delete; federated identity credentials create/get/list/delete,
  20 per identity at most (the 21st is a 400 ``BadRequest``).
* ``AuthorizationManagementClient`` (4.x): role definitions get/list (built-ins:
  Key Vault Secrets User/Officer/Administrator/Reader, Reader, Contributor, Owner,
  User Access Administrator), role assignments create/get/list/delete at any scope
  (``$filter=atScope()``, ``principalId eq '...'``); a second assignment of the
  same principal, role and scope is 409 ``RoleAssignmentExists``.
* ``KeyVaultManagementClient`` (azure-mgmt-keyvault): vaults create (answered
  synchronously: 200/201 with ``provisioningState: Succeeded``, which the LRO
  poller accepts as done), get, list, delete, and ``accessPolicies/{add|replace|remove}``.

Every request needs a bearer token issued by the Entra fake for the management
audience (401 ``AuthenticationFailed`` / ``InvalidAuthenticationToken`` /
``InvalidAuthenticationTokenAudience`` / ``ExpiredAuthenticationToken``) and an
``api-version``. Every caller acts as an Owner unless told otherwise:
``state.deny_arm_action(action, principal_id)`` makes ARM answer 403
``AuthorizationFailed`` naming the action, as for a caller without the role, and
``state.restrict_arm_caller(principal_id)`` makes ARM judge that principal by its role
assignments (their built-in roles' actions/notActions, at or above the scope).
``GET {scope}/providers/Microsoft.Authorization/permissions`` (subscription, resource
group or resource scope; ``PermissionsOperations.list_for_resource_group`` /
``list_for_resource``) answers ``{"value": [{"actions", "notActions", "dataActions",
"notDataActions"}]}`` from the same knobs (denied actions appear in ``notActions``), so a
permission preflight sees exactly what the writes would hit.
Errors have ARM's shape ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.azure.arm_common import (
    CALLER,
    KV,
    MI,
    arm_error,
    json_body,
    no_route,
    not_allowed,
    properties,
)
from secretsboot.sandbox.azure.arm_vaults import VaultRoutes
from secretsboot.sandbox.azure.auth import ARM_AUDIENCES, TokenIssuer
from secretsboot.sandbox.azure.state import (
    AzureState,
    StateError,
    Vault,
    normalize_scope,
)
from secretsboot.sandbox.tokens import TokenError

_AUTHZ = "/providers/microsoft.authorization/"
KV_LOCATIONS = "microsoft.keyvault/locations"


class ArmApp(VaultRoutes, FakeApp):
    name = "arm"

    def __init__(
        self,
        state: AzureState,
        issuer: TokenIssuer,
        on_vault: Callable[[Vault], None] | None = None,
    ) -> None:
        super().__init__()
        self.state = state
        self.tokens = issuer
        self.on_vault = on_vault  # starts the data plane of a vault created over ARM

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 429:
            return arm_error(
                429,
                "TooManyRequests",
                "The request is being throttled as the limit has been reached for operation "
                "type - Read_ObservationWindow_00:05:00. For more information, see - "
                "https://aka.ms/srpthrottlinglimits",
                headers,
            )
        return arm_error(
            status,
            "ServiceUnavailable" if status == 503 else "InternalServerError",
            "The server is currently unable to handle the request. Please retry later.",
            headers,
        )

    # ---- entry -------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        token = req.bearer_token
        if token is None:
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {
                    "WWW-Authenticate": f'Bearer authorization_uri="{self.tokens.authority}/'
                    f'{self.state.tenant_id}", error="invalid_token", error_description="The '
                    "authentication failed because of missing 'Authorization' header.\""
                },
            )
        try:
            claims = self.tokens.verify(token, ARM_AUDIENCES)
        except TokenError as exc:
            return self._token_error(exc, token)
        if not req.arg("api-version"):
            return arm_error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        oid = str(claims.get("oid", ""))
        CALLER.set(str(claims.get("appid") or claims.get("azp") or oid))
        try:
            return self._route(req, oid)
        except StateError as exc:
            return arm_error(exc.status, exc.code, exc.message)

    def _token_error(self, exc: TokenError, token: str) -> Response:
        if exc.reason == "expired":
            return arm_error(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
            )
        if exc.reason == "bad_audience":
            from secretsboot.sandbox.tokens import unverified_claims

            try:
                aud = unverified_claims(token).get("aud")
            except TokenError:
                aud = None
            return arm_error(
                401,
                "InvalidAuthenticationTokenAudience",
                f"The access token has been obtained for wrong audience or resource '{aud}'. It "
                "should exactly match with one of the allowed audiences "
                "'https://management.core.windows.net/','https://management.core.windows.net',"
                "'https://management.azure.com/','https://management.azure.com'.",
            )
        if exc.reason == "bad_tenant":
            return arm_error(
                401,
                "InvalidAuthenticationTokenTenant",
                "The access token is from the wrong issuer. It must match the tenant "
                f"'https://sts.windows.net/{self.state.tenant_id}/' associated with this "
                "subscription. Please use the authority (URL) "
                f"'{self.tokens.authority}/{self.state.tenant_id}' to get the token.",
            )
        return arm_error(401, "InvalidAuthenticationToken", "The access token is invalid.")

    def _authorize(self, oid: str, action: str, scope: str) -> None:
        if not self.state.arm_action_allowed(oid, action, scope):
            raise StateError(
                403,
                "AuthorizationFailed",
                f"The client '{oid}' with object id '{oid}' does not have authorization to "
                f"perform action '{action}' over scope '{scope}' or the scope is invalid. If "
                "access was recently granted, please refresh your credentials.",
            )

    def _check_subscription(self, sub: str) -> None:
        if sub.lower() != self.state.subscription_id.lower():
            raise StateError(
                404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found."
            )

    def _check_rg(self, rg: str) -> None:
        if not self.state.has_resource_group(rg):
            raise StateError(
                404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found."
            )

    def _route(self, req: Request, oid: str) -> Response:
        path = "/" + req.path.strip("/")
        low = path.lower()
        at = low.rfind(_AUTHZ)
        if at >= 0:
            scope = path[:at] or "/"
            rest = [p for p in path[at + len(_AUTHZ) :].split("/") if p]
            return self._authorization(req, oid, scope, rest)
        parts = [p for p in path.split("/") if p]
        lp = [p.lower() for p in parts]
        if len(parts) < 2 or lp[0] != "subscriptions":
            return no_route(req, path)
        self._check_subscription(parts[1])
        if len(parts) >= 4 and lp[2] == "resourcegroups":
            rg = parts[3]
            if len(parts) == 4:
                return self._resource_group(req, oid, path, rg)
            self._check_rg(rg)
            tail, ltail = parts[4:], lp[4:]
        else:
            rg = None
            tail, ltail = parts[2:], lp[2:]
        if len(tail) >= 3 and ltail[0] == "providers":
            kind = f"{ltail[1]}/{ltail[2]}"
            names = tail[3:]
            in_groups = {
                MI.lower(): (MI, self._identities, self.state.identities),
                KV.lower(): (KV, self._vaults, self.state.vaults),
            }
            if kind in in_groups:
                type_name, one, resources = in_groups[kind]
                if not names:
                    return self._list_in_group(req, oid, path, rg, type_name + "/", resources)
                return one(req, oid, path, rg, names) if rg is not None else no_route(req, path)
            if rg is None and kind in ("microsoft.keyvault/deletedvaults", KV_LOCATIONS):
                return self._deleted_vaults(req, oid, path, kind, names)
            return arm_error(
                400,
                "InvalidResourceType",
                f"The resource type '{tail[2]}' could not be found in the namespace '{tail[1]}' "
                f"for api version '{req.arg('api-version')}'.",
            )
        return no_route(req, path)

    # ---- resource groups ---------------------------------------------------------

    def _resource_group(self, req: Request, oid: str, path: str, rg: str) -> Response:
        action = "Microsoft.Resources/subscriptions/resourceGroups/"
        if req.method in ("PUT", "PATCH"):
            self._authorize(oid, action + "write", path)
            data = json_body(req)
            created = not self.state.has_resource_group(rg)
            name = self.state.ensure_resource_group(rg)
            return Response(201 if created else 200, self._rg_body(name, data.get("location")))
        self._authorize(oid, action + "read", path)
        self._check_rg(rg)
        if req.method == "HEAD":
            return Response(204)
        if req.method == "GET":
            return Response(200, self._rg_body(self.state.ensure_resource_group(rg), None))
        return not_allowed(req)

    def _rg_body(self, rg: str, location: Any) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{self.state.subscription_id}/resourceGroups/{rg}",
            "name": rg,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location or "eastus",
            "properties": {"provisioningState": "Succeeded"},
        }

    def _list_in_group(
        self, req: Request, oid: str, path: str, rg: str | None, action: str, resources: Any
    ) -> Response:
        """GET on a collection: every resource of the subscription, or of one group."""
        if req.method != "GET":
            return not_allowed(req)
        self._authorize(oid, action + "read", path)
        with self.state.lock:
            items = [
                r.arm_body()
                for r in resources.values()
                if rg is None or r.resource_group.lower() == rg.lower()
            ]
        return Response(200, {"value": items})

    # ---- managed identities ------------------------------------------------------

    def _identities(self, req: Request, oid: str, path: str, rg: str, names: list[str]) -> Response:
        action = MI + "/"
        name = names[0]
        identity_id = self.state.identity_id(rg, name)
        if len(names) == 1:
            if req.method == "PUT":
                self._authorize(oid, action + "write", path)
                data = json_body(req)
                if not isinstance(data.get("location"), str):
                    return arm_error(
                        400,
                        "LocationRequired",
                        "The location property is required for this definition.",
                    )
                existed = identity_id.lower() in self.state.identities
                tags = data.get("tags") if isinstance(data.get("tags"), dict) else None
                identity = self.state.create_identity(
                    rg, name, location=data["location"], tags=tags, by=CALLER.get(), propagate=True
                )
                return Response(200 if existed else 201, identity.arm_body())
            if req.method == "PATCH":
                self._authorize(oid, action + "write", path)
                identity = self.state.get_identity(identity_id)
                data = json_body(req)
                if isinstance(data.get("tags"), dict):
                    identity.tags = {str(k): str(v) for k, v in data["tags"].items()}
                return Response(200, identity.arm_body())
            if req.method == "GET":
                self._authorize(oid, action + "read", path)
                return Response(200, self.state.get_identity(identity_id).arm_body())
            if req.method == "DELETE":
                self._authorize(oid, action + "delete", path)
                return Response(200 if self.state.delete_identity(identity_id) else 204)
            return not_allowed(req)
        if names[1].lower() != "federatedidentitycredentials" or len(names) > 3:
            return no_route(req, path)
        return self._fics(req, oid, path, identity_id, names[2] if len(names) == 3 else None)

    def _fics(
        self, req: Request, oid: str, path: str, identity_id: str, fic_name: str | None
    ) -> Response:
        action = MI + "/federatedIdentityCredentials/"
        identity = self.state.get_identity(identity_id)
        if fic_name is None:
            if req.method != "GET":
                return not_allowed(req)
            self._authorize(oid, action + "read", path)
            with self.state.lock:
                items = [f.arm_body() for f in identity.federated.values()]
            return self._page(req, items)
        if req.method == "PUT":
            self._authorize(oid, action + "write", path)
            data = json_body(req)
            props = properties(data)
            issuer, subject, audiences = (
                props.get("issuer"),
                props.get("subject"),
                props.get("audiences"),
            )
            if not isinstance(issuer, str) or not isinstance(subject, str):
                return arm_error(
                    400,
                    "BadRequest",
                    "The properties 'issuer' and 'subject' are required.",
                )
            if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
                return arm_error(400, "BadRequest", "The property 'audiences' is required.")
            if not self.state.begin_fic_write(identity.id):
                return arm_error(
                    409,
                    "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
                    "Too many Federated Identity Credentials are written concurrently for the "
                    f"managed identity '{identity.id.lower()}'. Concurrent Federated Identity "
                    "Credentials writes under the same managed identity are not supported.",
                )
            try:
                if self.state.fic_write_latency_s:
                    time.sleep(self.state.fic_write_latency_s)
                existed = fic_name.lower() in identity.federated
                fic = self.state.add_federated_credential(
                    identity.id,
                    fic_name,
                    issuer,
                    subject,
                    audiences,
                    propagate=True,
                    by=CALLER.get(),
                )
            finally:
                self.state.end_fic_write(identity.id)
            return Response(200 if existed else 201, fic.arm_body())
        found = identity.federated.get(fic_name.lower())
        if req.method == "GET":
            self._authorize(oid, action + "read", path)
            if found is None:
                return arm_error(
                    404,
                    "NotFound",
                    f"Federated Identity Credential '{fic_name}' was not found on managed "
                    f"identity '{identity.id}'.",
                )
            return Response(200, found.arm_body())
        if req.method == "DELETE":
            self._authorize(oid, action + "delete", path)
            with self.state.lock:
                identity.federated.pop(fic_name.lower(), None)
            return Response(200 if found else 204)
        return not_allowed(req)

    def _page(self, req: Request, items: list[dict[str, Any]]) -> Response:
        """``$top``/``$skiptoken`` paging with an absolute ``nextLink``, as ARM pages."""
        try:
            top = int(req.arg("$top") or 0)
            skip = int(req.arg("$skiptoken") or 0)
        except ValueError:
            return arm_error(
                400, "InvalidQueryParameterValue", "$top and $skiptoken must be numbers"
            )
        if top <= 0:
            return Response(200, {"value": items[skip:]})
        page = items[skip : skip + top]
        body: dict[str, Any] = {"value": page}
        if skip + top < len(items):
            body["nextLink"] = (
                f"{self.base_url}{req.path}?api-version={req.arg('api-version')}"
                f"&$top={top}&$skiptoken={skip + top}"
            )
        return Response(200, body)

    # ---- Microsoft.Authorization -------------------------------------------------

    def _authorization(self, req: Request, oid: str, scope: str, rest: list[str]) -> Response:
        if not rest:
            return arm_error(404, "NotFound", f"No route for {req.method} {req.path}.")
        kind = rest[0].lower()
        if kind == "roleassignments" and len(rest) <= 2:
            return self._role_assignments(req, oid, scope, rest[1] if len(rest) == 2 else None)
        if kind == "roledefinitions" and len(rest) <= 2:
            return self._role_definitions(req, oid, scope, rest[1] if len(rest) == 2 else None)
        if kind == "permissions" and len(rest) == 1:
            return self._permissions(req, oid, scope)
        return arm_error(
            400,
            "InvalidResourceType",
            f"The resource type '{rest[0]}' could not be found in the namespace "
            f"'Microsoft.Authorization' for api version '{req.arg('api-version')}'.",
        )

    def _role_assignments(self, req: Request, oid: str, scope: str, name: str | None) -> Response:
        action = "Microsoft.Authorization/roleAssignments/"
        full = req.path
        if name is None:
            if req.method != "GET":
                return not_allowed(req)
            self._authorize(oid, action + "read", scope)
            self.state.check_scope(scope)
            flt = req.arg("$filter") or ""
            m = re.search(r"(?:principalId\s+eq\s+|assignedTo\()'([^']+)'", flt, re.IGNORECASE)
            items = self.state.role_assignments_list(
                scope,
                at_scope="atscope()" in flt.replace(" ", "").lower(),
                principal_id=m.group(1) if m else None,
            )
            return Response(200, {"value": [ra.arm_body() for ra in items]})
        if req.method == "PUT":
            self._authorize(oid, action + "write", full)
            data = json_body(req)
            props = properties(data)
            role_id, principal = props.get("roleDefinitionId"), props.get("principalId")
            if not isinstance(role_id, str) or not isinstance(principal, str):
                return arm_error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized: 'Required "
                    "properties 'roleDefinitionId' and 'principalId' not found in JSON.'",
                )
            ptype = props.get("principalType")
            existed = self._exists(scope, name)
            ra = self.state.assign_role(
                scope,
                principal,
                role_id,
                name=name,
                principal_type=ptype if isinstance(ptype, str) else None,
                propagate=True,
            )
            return Response(200 if existed else 201, ra.arm_body())
        if req.method == "GET":
            self._authorize(oid, action + "read", full)
            return Response(200, self.state.get_role_assignment(scope, name).arm_body())
        if req.method == "DELETE":
            self._authorize(oid, action + "delete", full)
            gone = self.state.delete_role_assignment(scope, name)
            return Response(200, gone.arm_body()) if gone else Response(204)
        return not_allowed(req)

    def _permissions(self, req: Request, oid: str, scope: str) -> Response:
        """GET {scope}/providers/Microsoft.Authorization/permissions: the caller's own
        permissions at a subscription, resource group or resource (no role needed)."""
        if req.method != "GET":
            return not_allowed(req)
        # the SDK's list_for_resource sends an empty parentResourcePath as "//"
        scope = normalize_scope(re.sub(r"/{2,}", "/", scope))
        self.state.check_scope(scope)
        return Response(200, {"value": self.state.arm_permissions(oid, scope)})

    def _exists(self, scope: str, name: str) -> bool:
        try:
            self.state.get_role_assignment(scope, name)
        except StateError:
            return False
        return True

    def _role_definitions(self, req: Request, oid: str, scope: str, guid: str | None) -> Response:
        if req.method != "GET":
            return arm_error(
                403,
                "AuthorizationFailed",
                f"The client '{oid}' with object id '{oid}' does not have authorization to "
                "perform action 'Microsoft.Authorization/roleDefinitions/write' over scope "
                f"'{scope}' or the scope is invalid. (Built-in roles cannot be changed.)",
            )
        self._authorize(oid, "Microsoft.Authorization/roleDefinitions/read", scope)
        sub = self.state.subscription_id
        if guid is not None:
            with self.state.lock:
                found = self.state.role_definitions.get(guid.lower())
            if found is None:
                return arm_error(
                    404,
                    "RoleDefinitionDoesNotExist",
                    f"The specified role definition with ID '{guid.replace('-', '')}' does not "
                    "exist.",
                )
            return Response(200, found.arm_body(sub))
        flt = req.arg("$filter") or ""
        m = re.search(r"roleName\s+eq\s+'([^']*)'", flt, re.IGNORECASE)
        with self.state.lock:
            defs = list(self.state.role_definitions.values())
        if m:
            defs = [d for d in defs if d.role_name.lower() == m.group(1).lower()]
        return Response(200, {"value": [d.arm_body(sub) for d in defs]})
