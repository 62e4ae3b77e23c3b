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
  ``GET /deletedsecrets``, ``GET|DELETE /deletedsecrets/{name}``,
  ``POST /deletedsecrets/{name}/recover``, ``POST /secrets/{name}/backup``,
  ``POST /secrets/restore`` (bodies and behaviour in :mod:`.keyvault_ops`);
  an invalid secret name is 400 ``BadParameter``; ``api-version`` is required.
"""

from __future__ import annotations

from typing import Any

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.azure.auth import VAULT_AUDIENCES, VAULT_RESOURCE, TokenIssuer
from secretsboot.sandbox.azure.keyvault_ops import SecretOps, kv_error
from secretsboot.sandbox.azure.state import SECRET_NAME_RE, AzureState, StateError, Vault
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
    "backup": "Microsoft.KeyVault/vaults/secrets/backup/action",
    "restore": "Microsoft.KeyVault/vaults/secrets/restore/action",
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
    "backup": "backup",
    "restore": "restore",
}


class KeyVaultApp(SecretOps, FakeApp):
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
        if parts == ["deletedsecrets"] and req.method == "GET":
            self._authorize(vault, claims, "getdeleted", None)
            return self._list_deleted(req, vault)
        if parts == ["secrets", "restore"] and req.method == "POST":
            self._authorize(vault, claims, "restore", None)
            return self._restore(req, vault)
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
        if version == "backup" and m == "POST":
            self._authorize(vault, claims, "backup", name)
            return self._backup(vault, name)
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
