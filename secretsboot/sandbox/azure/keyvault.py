"""The Key Vault data-plane fake (secrets), one HTTPS server per vault.

One port per vault, because ``azure-keyvault-secrets`` parses every secret id as
``https://host[:port]/secrets/{name}[/{version}]`` (``parse_key_vault_id`` refuses
any other path depth), so a path prefix per vault would break ``KeyVaultSecretIdentifier``
and ``SecretProperties.vault_url``.

Protocol, as ``SecretClient(vault_url, credential, verify_challenge_resource=False,
connection_verify=CA)`` sees it:

* a request without a token gets 401 and ``WWW-Authenticate: Bearer
  authorization="{authority}/{tenant}", resource="https://vault.azure.net"``
  (the challenge); a bad token gets 401 too (audience, issuer, signature, expiry,
  tenant are checked against the Entra fake's key);
* RBAC vaults authorise by role assignment at vault or secret scope (Key Vault
  Secrets User / Officer / Administrator / Reader data actions, looked up by the
  token's ``oid``); access-policy vaults by ``accessPolicies[].permissions.secrets``;
  denials are 403 ``Forbidden`` with inner code ``ForbiddenByRbac`` or
  ``AccessDenied`` and Azure's wording; a missing secret is 404 ``SecretNotFound``; a
  disabled secret 403 ``SecretDisabled``; with ``firewall_closed`` set, every
  authenticated request is 403 ``ForbiddenByFirewall`` (the vault's network rules);
* ``PUT /secrets/{name}``, ``GET /secrets/{name}[/{version}]``,
  ``PATCH /secrets/{name}/{version}``, ``GET /secrets`` and
  ``GET /secrets/{name}/versions`` (paged with ``maxresults`` and an absolute
  ``nextLink``), ``DELETE /secrets/{name}`` (soft delete),
  ``GET|DELETE /deletedsecrets/{name}``, ``POST /deletedsecrets/{name}/recover``;
  ``api-version`` is required.
"""

from __future__ import annotations

import time
from typing import Any

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.azure.auth import VAULT_AUDIENCES, VAULT_RESOURCE, TokenIssuer
from secretsboot.sandbox.azure.state import (
    SECRET_NAME_RE,
    AzureState,
    SecretVersion,
    StateError,
    Vault,
)
from secretsboot.sandbox.tokens import TokenError, unverified_claims

_ACTIONS = {
    "get": "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    "list": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
    "set": "Microsoft.KeyVault/vaults/secrets/setSecret/action",
    "update": "Microsoft.KeyVault/vaults/secrets/update/action",
    "delete": "Microsoft.KeyVault/vaults/secrets/delete",
    "recover": "Microsoft.KeyVault/vaults/secrets/recover/action",
    "purge": "Microsoft.KeyVault/vaults/secrets/purge/action",
    "getdeleted": "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
}
# access-policy permission needed by each operation
_POLICY = {
    "get": "get",
    "list": "list",
    "set": "set",
    "update": "set",
    "delete": "delete",
    "recover": "recover",
    "purge": "purge",
    "getdeleted": "list",
}
_RETENTION_DAYS = 90


def kv_error(
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response(status, {"error": error}, headers or {})


class KeyVaultApp(FakeApp):
    """The data plane of one vault (``state.vaults[name]``)."""

    name = "keyvault"

    def __init__(self, state: AzureState, issuer: TokenIssuer, vault_name: str) -> None:
        super().__init__()
        self.state = state
        self.tokens = issuer
        self.vault_name = vault_name
        self.name = f"keyvault-{vault_name}"
        #: deny every caller as network rules that do not include the pod's address do
        self.firewall_closed = False

    @property
    def url(self) -> str:
        return self.base_url

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 429:
            return kv_error(
                429,
                "Throttled",
                "Request was not processed because too many requests were received. Reason: "
                "VaultRequestTypeLimitReached",
                headers=headers,
            )
        return kv_error(
            status,
            "ServiceUnavailable" if status == 503 else "InternalServerError",
            "The service is temporarily unavailable. Please retry.",
            headers=headers,
        )

    def _challenge(self) -> dict[str, str]:
        return {
            "WWW-Authenticate": f'Bearer authorization="{self.tokens.authority}/'
            f'{self.state.tenant_id}", resource="{VAULT_RESOURCE}"'
        }

    # ---- entry -------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        vault = self.state.find_vault(self.vault_name)
        if vault is None:
            return kv_error(404, "VaultNotFound", f"The vault '{self.vault_name}' does not exist.")
        token = req.bearer_token
        if token is None:
            return kv_error(
                401,
                "Unauthorized",
                "AKV10000: Request is missing a Bearer or PoP token.",
                headers=self._challenge(),
            )
        try:
            claims = self.tokens.verify(token, VAULT_AUDIENCES)
        except TokenError as exc:
            return kv_error(
                401, "Unauthorized", self._token_message(exc, token), headers=self._challenge()
            )
        if self.firewall_closed:
            return kv_error(
                403,
                "Forbidden",
                "Client address is not authorized and caller is not a trusted service.\r\n"
                f"Client address: {req.client}\r\nCaller: {self._caller(claims)}\r\n"
                f"Vault: {vault.name};location={vault.location}",
                "ForbiddenByFirewall",
            )
        api_version = req.arg("api-version")
        if not api_version:
            return kv_error(
                400, "BadParameter", "The request URI contains an invalid or missing api-version."
            )
        parts = [p for p in req.path.split("/") if p]
        try:
            return self._route(req, vault, claims, parts)
        except StateError as exc:
            return kv_error(exc.status, exc.code, exc.message, exc.inner)

    def _token_message(self, exc: TokenError, token: str) -> str:
        try:
            claims = unverified_claims(token)
        except TokenError:
            claims = {}
        if exc.reason == "bad_audience":
            return (
                f"AKV10022: Invalid audience. Expected {VAULT_RESOURCE}, found: "
                f"{claims.get('aud')}."
            )
        if exc.reason in ("bad_issuer", "bad_tenant"):
            return (
                f"AKV10032: Invalid issuer. Expected one of {self.tokens.v1_issuer}, "
                f"{self.tokens.issuer}, found {claims.get('iss')}."
            )
        if exc.reason == "expired":
            return "Token validation failed: the access token has expired."
        return f"Token validation failed: {exc.message}."

    def _route(
        self, req: Request, vault: Vault, claims: dict[str, Any], parts: list[str]
    ) -> Response:
        if parts == ["secrets"] and req.method == "GET":
            self._authorize(vault, claims, "list", None)
            return self._list(req, vault, None)
        named = len(parts) >= 2 and parts[0] in ("secrets", "deletedsecrets")
        if named and not SECRET_NAME_RE.match(parts[1]):  # as Key Vault: 400, not 404
            return kv_error(
                400, "BadParameter", f"The request URI contains an invalid name: {parts[1]}"
            )
        found = None
        if named and parts[0] == "secrets":
            found = self._secret_op(req, vault, claims, parts)
        elif named:
            found = self._deleted_op(req, vault, claims, parts)
        if found is not None:
            return found
        return kv_error(
            400,
            "BadParameter",
            f"The request URI contains an invalid operation: {req.method} {req.path}",
        )

    def _secret_op(
        self, req: Request, vault: Vault, claims: dict[str, Any], parts: list[str]
    ) -> Response | None:
        """``/secrets/{name}[/{version}|/versions]``: set, delete, list versions, get, update."""
        m, name = req.method, parts[1]
        version = parts[2] if len(parts) == 3 else ""
        if len(parts) == 2 and m in ("PUT", "DELETE"):
            op = "set" if m == "PUT" else "delete"
            self._authorize(vault, claims, op, name)
            return self._set(req, vault, name) if m == "PUT" else self._delete(vault, name)
        if version == "versions" and m == "GET":
            self._authorize(vault, claims, "list", name)
            return self._list(req, vault, name)
        if len(parts) <= 3 and m == "GET":
            self._authorize(vault, claims, "get", name)
            return self._get(vault, name, version)
        if len(parts) <= 3 and m == "PATCH":
            self._authorize(vault, claims, "update", name)
            return self._update(req, vault, name, version)
        return None

    def _deleted_op(
        self, req: Request, vault: Vault, claims: dict[str, Any], parts: list[str]
    ) -> Response | None:
        """``/deletedsecrets/{name}[/recover]``: get, purge, recover a soft-deleted secret."""
        m, name = req.method, parts[1]
        if len(parts) == 2 and m == "GET":
            self._authorize(vault, claims, "getdeleted", name)
            return self._get_deleted(vault, name)
        if len(parts) == 2 and m == "DELETE":
            self._authorize(vault, claims, "purge", name)
            return self._purge(vault, name)
        if len(parts) == 3 and parts[2] == "recover" and m == "POST":
            self._authorize(vault, claims, "recover", name)
            return self._recover(vault, name)
        return None

    # ---- authorization -----------------------------------------------------------

    def _caller(self, claims: dict[str, Any]) -> str:
        appid = claims.get("appid", claims.get("azp"))
        return f"appid={appid};oid={claims.get('oid')};iss={claims.get('iss')}"

    def _authorize(self, vault: Vault, claims: dict[str, Any], op: str, secret: str | None) -> None:
        oid = str(claims.get("oid", ""))
        if vault.rbac:
            resource = vault.id + (f"/secrets/{secret}" if secret else "")
            if self.state.data_action_allowed(oid, resource, _ACTIONS[op]):
                return
            raise StateError(
                403,
                "Forbidden",
                "Caller is not authorized to perform action on resource.\r\n"
                "If role assignments, deny assignments or role definitions were changed "
                "recently, please observe propagation time.\r\n"
                f"Caller: {self._caller(claims)}\r\n"
                f"Action: '{_ACTIONS[op]}'\r\n"
                f"Resource: '{resource.lower()}'\r\n"
                "Assignment: (not found)\r\n"
                "DenyAssignmentId: null\r\n"
                "DecisionReason: null \r\n"
                f"Vault: {vault.name};location={vault.location}\r\n",
            ).with_inner("ForbiddenByRbac")
        if self.state.access_policy_allows(vault, oid, _POLICY[op]):
            return
        raise StateError(
            403,
            "Forbidden",
            f"The user, group or application '{self._caller(claims)}' does not have secrets "
            f"{_POLICY[op]} permission on key vault '{vault.name};location={vault.location}'. "
            "For help resolving this issue, please see https://go.microsoft.com/fwlink/"
            "?linkid=2125287",
        ).with_inner("AccessDenied")

    # ---- bodies ------------------------------------------------------------------

    def _attributes(self, v: SecretVersion) -> dict[str, Any]:
        return {
            "enabled": v.enabled,
            "created": v.created,
            "updated": v.updated,
            "recoveryLevel": "Recoverable+Purgeable",
            "recoverableDays": _RETENTION_DAYS,
        }

    def _item(
        self, vault: Vault, name: str, v: SecretVersion, *, versioned: bool
    ) -> dict[str, Any]:
        spelled = vault.secret_names.get(name.lower(), name)
        item: dict[str, Any] = {
            "id": f"{self.url}/secrets/{spelled}" + (f"/{v.version}" if versioned else ""),
            "attributes": self._attributes(v),
            "tags": dict(v.tags),
        }
        if v.content_type is not None:
            item["contentType"] = v.content_type
        return item

    def _bundle(self, vault: Vault, name: str, v: SecretVersion) -> dict[str, Any]:
        body = self._item(vault, name, v, versioned=True)
        body["value"] = v.value.reveal()
        return body

    def _not_found(self, name: str, version: str = "") -> StateError:
        ident = f"{name}/{version}" if version else name
        return StateError(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {ident} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125182",
        )

    def _versions(self, vault: Vault, name: str) -> list[SecretVersion]:
        with self.state.lock:
            versions = list(vault.secrets.get(name.lower(), []))
        if not versions:
            raise self._not_found(name)
        return versions

    # ---- operations --------------------------------------------------------------

    def _get(self, vault: Vault, name: str, version: str) -> Response:
        versions = self._versions(vault, name)
        if version:
            found = next((v for v in versions if v.version == version.lower()), None)
            if found is None:
                raise self._not_found(name, version)
        else:
            found = versions[-1]
        if not found.enabled:
            raise StateError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret."
            ).with_inner("SecretDisabled")
        return Response(200, self._bundle(vault, name, found))

    def _set(self, req: Request, vault: Vault, name: str) -> Response:
        try:
            data = req.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("value"), str):
            return kv_error(
                400, "BadParameter", "Property 'value' is required and must be a string."
            )
        content_type = data.get("contentType")
        tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
        version = self.state.set_secret(
            vault.name,
            name,
            data["value"],
            content_type=content_type if isinstance(content_type, str) else None,
            tags={str(k): str(v) for k, v in (tags or {}).items()},
        )
        attrs = data.get("attributes")
        if isinstance(attrs, dict) and attrs.get("enabled") is False:
            version.enabled = False
        return Response(200, self._bundle(vault, name, version))

    def _update(self, req: Request, vault: Vault, name: str, version: str) -> Response:
        versions = self._versions(vault, name)
        found = (
            next((v for v in versions if v.version == version.lower()), None)
            if version
            else versions[-1]
        )
        if found is None:
            raise self._not_found(name, version)
        try:
            data = req.json()
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return kv_error(400, "BadParameter", "The request body must be a JSON object.")
        with self.state.lock:
            attrs = data.get("attributes")
            if isinstance(attrs, dict) and isinstance(attrs.get("enabled"), bool):
                found.enabled = attrs["enabled"]
            if isinstance(data.get("contentType"), str):
                found.content_type = data["contentType"]
            if isinstance(data.get("tags"), dict):
                found.tags = {str(k): str(v) for k, v in data["tags"].items()}
            found.updated = int(time.time())
        return Response(200, self._item(vault, name, found, versioned=True))

    def _list(self, req: Request, vault: Vault, name: str | None) -> Response:
        try:
            maxresults = int(req.arg("maxresults") or 25)
            skip = int(req.arg("$skiptoken") or 0)
        except ValueError:
            return kv_error(400, "BadParameter", "maxresults and $skiptoken must be integers.")
        if not 1 <= maxresults <= 25:
            return kv_error(
                400, "BadParameter", "The value of maxresults must be between 1 and 25."
            )
        if name is None:
            with self.state.lock:
                latest = [(n, vs[-1]) for n, vs in sorted(vault.secrets.items()) if vs]
            items = [self._item(vault, n, v, versioned=False) for n, v in latest]
            path = "/secrets"
        else:
            items = [
                self._item(vault, name, v, versioned=True) for v in self._versions(vault, name)
            ]
            path = f"/secrets/{vault.secret_names.get(name.lower(), name)}/versions"
        page = items[skip : skip + maxresults]
        next_link = None
        if skip + maxresults < len(items):
            next_link = (
                f"{self.url}{path}?api-version={req.arg('api-version')}"
                f"&$skiptoken={skip + maxresults}&maxresults={maxresults}"
            )
        return Response(200, {"value": page, "nextLink": next_link})

    def _deleted_body(
        self, vault: Vault, name: str, stamp: int, v: SecretVersion
    ) -> dict[str, Any]:
        body = self._item(vault, name, v, versioned=True)
        spelled = vault.secret_names.get(name.lower(), name)
        body.update(
            {
                "recoveryId": f"{self.url}/deletedsecrets/{spelled}",
                "deletedDate": stamp,
                "scheduledPurgeDate": stamp + _RETENTION_DAYS * 86400,
            }
        )
        return body

    def _delete(self, vault: Vault, name: str) -> Response:
        stamp = int(time.time())
        with self.state.lock:
            versions = vault.secrets.pop(name.lower(), None)
            if not versions:
                raise self._not_found(name)
            vault.deleted[name.lower()] = (stamp, versions)
        return Response(200, self._deleted_body(vault, name, stamp, versions[-1]))

    def _deleted(self, vault: Vault, name: str) -> tuple[int, list[SecretVersion]]:
        with self.state.lock:
            entry = vault.deleted.get(name.lower())
        if entry is None:
            raise StateError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return entry

    def _get_deleted(self, vault: Vault, name: str) -> Response:
        stamp, versions = self._deleted(vault, name)
        return Response(200, self._deleted_body(vault, name, stamp, versions[-1]))

    def _purge(self, vault: Vault, name: str) -> Response:
        self._deleted(vault, name)
        with self.state.lock:
            vault.deleted.pop(name.lower(), None)
            vault.secret_names.pop(name.lower(), None)
        return Response(204)

    def _recover(self, vault: Vault, name: str) -> Response:
        _, versions = self._deleted(vault, name)
        with self.state.lock:
            vault.deleted.pop(name.lower(), None)
            vault.secrets[name.lower()] = versions
        return Response(200, self._bundle(vault, name, versions[-1]))
