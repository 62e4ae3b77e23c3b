"""HashiCorp Vault / OpenBao: ``vault://MOUNT/PATH#KEY`` (KV v2 or v1).

REST calls: ``POST /v1/auth/<mount>/login`` once (body from
:func:`secretsboot.identity.vault.login_request`), then ``GET /v1/MOUNT/data/PATH``
(KV v2) or ``GET /v1/MOUNT/PATH`` (KV v1) per secret, ``GET /v1/MOUNT/metadata/PATH``
for :meth:`Vault.version`, and ``POST /v1/auth/token/revoke-self`` when the fetch
ends: no token outlives the fetch and none is written to disk. A standby's 307 to
the active node is followed (https only) by the transport. Errors are translated
by :func:`secretsboot.transport.status.vault_error`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from secretsboot.errors import BadInputError, NotFoundError, UnavailableError
from secretsboot.secret import SecretValue
from secretsboot.transport import Deadline, HttpClient
from secretsboot.transport.status import vault_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from secretsboot.backends.base import StoreContext
    from secretsboot.contract import VaultConfig
    from secretsboot.refs import Ref

    LoginRequest = Callable[[Deadline], tuple[str, dict[str, Any]]]

SCHEME = "vault"
#: revoke-self gets this long when the fetch's own deadline has passed
CLOSE_BUDGET = 0.5


def kv_path(ref: Ref, kv_version: int, kind: str = "data") -> str:
    """The API path of a KV secret (``MOUNT/data/PATH`` or ``MOUNT/metadata/PATH`` for
    KV v2)."""
    if kv_version == 2:
        return f"{ref.store}/{kind}/{ref.path}"
    return f"{ref.store}/{ref.path}"


def extract(data: Any, ref: Ref, kv_version: int) -> SecretValue:
    """The ``#KEY`` field of a KV read reply."""
    inner = data.get("data") if isinstance(data, dict) else None
    if kv_version == 2 and isinstance(inner, dict):
        inner = inner.get("data")
    if not isinstance(inner, dict):
        raise NotFoundError(f"{ref} has no data (deleted, or a KV v1/v2 mismatch: kvVersion)")
    if ref.key not in inner:
        raise NotFoundError(f"{ref}: the secret has no key '{ref.key}'")
    value = inner[ref.key]
    if not isinstance(value, str):
        value = json.dumps(value)
    return SecretValue(value)


class Vault:
    """Vault over the transport's client; one login shared by all threads."""

    scheme = SCHEME

    def __init__(
        self,
        config: VaultConfig,
        login: LoginRequest,
        who: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._config = config
        self._login = login
        self._who = who
        self._http = HttpClient(config.address, ca_file=config.ca_cert, what="Vault", env=env)
        self._token: str | None = None
        self._ttl: float | None = None
        self._lock = threading.Lock()

    def describe_identity(self) -> str:
        return self._who

    def _headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["X-Vault-Token"] = token
        if self._config.namespace:
            headers["X-Vault-Namespace"] = self._config.namespace
        return headers

    def token(self, deadline: Deadline) -> str:
        """``POST /v1/auth/<mount>/login`` once; every thread shares the token."""
        if not self._lock.acquire(timeout=max(0.0, deadline.remaining())):
            raise UnavailableError(f"Vault login for {self._who}: the deadline passed")
        try:
            if self._token is None:
                path, body = self._login(deadline)
                resp = self._http.request(
                    "POST",
                    f"/v1/{path}",
                    headers=self._headers(),
                    body=json.dumps(body).encode(),
                    deadline=deadline,
                )
                if resp.status != 200:
                    raise vault_error(
                        resp.status,
                        resp.json_or_none(),
                        f"login at {path}",
                        self._who,
                        login=True,
                        retry_after=resp.retry_after,
                    )
                reply = resp.json()
                auth = reply.get("auth") if isinstance(reply, dict) else None
                if not isinstance(auth, dict) or not auth.get("client_token"):
                    raise UnavailableError(f"Vault sent a login reply without a token ({path})")
                self._token = str(auth["client_token"])
                self._ttl = _lease(auth)
            return self._token
        finally:
            self._lock.release()

    def token_ttl(self) -> float | None:
        """Seconds the held token was granted at its login or last renewal (for refresh)."""
        return self._ttl if self._token else None

    def renew_token(self, deadline: Deadline) -> None:
        """``POST /v1/auth/token/renew-self``: extend the held token (refresh renews it at
        2/3 of its TTL); a refusal raises, and the caller logs in afresh."""
        token = self._token
        if token is None:
            return
        resp = self._http.request(
            "POST", "/v1/auth/token/renew-self", headers=self._headers(token), deadline=deadline
        )
        reply = resp.json_or_none()
        auth = reply.get("auth") if isinstance(reply, dict) else None
        if resp.status != 200 or not isinstance(auth, dict):
            raise vault_error(resp.status, reply, "renew-self", self._who)
        self._ttl = _lease(auth)

    def _read(self, ref: Ref, path: str, deadline: Deadline) -> Any:
        token = self.token(deadline)
        resp = self._http.request(
            "GET", f"/v1/{path}", headers=self._headers(token), deadline=deadline
        )
        if resp.status != 200:
            raise vault_error(
                resp.status, resp.json_or_none(), str(ref), self._who, retry_after=resp.retry_after
            )
        return resp.json()

    def get(self, ref: Ref, deadline: Deadline) -> SecretValue:
        """``GET /v1/MOUNT/data/PATH`` (KV v2) or ``GET /v1/MOUNT/PATH`` (KV v1)."""
        kv = self._config.kv_version
        return extract(self._read(ref, kv_path(ref, kv), deadline), ref, kv)

    def version(self, ref: Ref, deadline: Deadline) -> str:
        """KV v2: ``current_version`` from ``GET /v1/MOUNT/metadata/PATH`` (no value read).
        KV v1 keeps no versions: the fingerprint of the value (it must be read)."""
        if self._config.kv_version != 2:
            return self.get(ref, deadline).fingerprint
        reply = self._read(ref, kv_path(ref, 2, "metadata"), deadline)
        data = reply.get("data") if isinstance(reply, dict) else None
        current = data.get("current_version") if isinstance(data, dict) else None
        if not isinstance(current, int):
            raise UnavailableError(f"Vault sent metadata without current_version for {ref}")
        return str(current)

    def close(self, deadline: Deadline | None = None) -> None:
        """Revoke the token we obtained (``auth/token/revoke-self``), then close connections."""
        with self._lock:
            token, self._token = self._token, None
        try:
            if token:
                budget = deadline if deadline and not deadline.expired() else None
                self._http.request(
                    "POST",
                    "/v1/auth/token/revoke-self",
                    headers=self._headers(token),
                    deadline=budget or Deadline.after(CLOSE_BUDGET),
                )
        except UnavailableError:
            pass  # the token expires on its own (short TTL); nothing to do better here
        finally:
            self._http.close()


def _lease(auth: dict[str, Any]) -> float | None:
    """A token's TTL from a login or renew reply; None for a token that never expires."""
    duration = auth.get("lease_duration")
    return float(duration) if isinstance(duration, int | float) and duration > 0 else None


def build(context: StoreContext) -> Vault:
    """The Vault backend of one fetch: the login its ``vault.auth`` says, and who we are."""
    from secretsboot.identity.kubernetes import read_serviceaccount_token
    from secretsboot.identity.vault import describe_login, login_request

    config = context.config
    vault_cfg = config.vault
    if vault_cfg is None:
        raise BadInputError(
            f"{config.source}: vault:// sources need the vault section",
            hint="set vault.address (or VAULT_ADDR) and vault.auth",
        )
    auth = vault_cfg.auth
    needs_azure = auth.method == "azure" or (auth.method == "jwt" and auth.jwt_source == "entra")
    azure = context.azure_tokens() if needs_azure else None
    sa_desc = None
    if config.namespace and config.service_account:
        sa_desc = f"system:serviceaccount:{config.namespace}:{config.service_account}"
    elif not needs_azure:
        from secretsboot.identity.azure import token_subject

        try:
            sa_desc = token_subject(read_serviceaccount_token(context.env, auth.token_path))
        except BadInputError:
            sa_desc = None  # reported by the login itself
    who = describe_login(auth, azure.describe() if azure else sa_desc)
    env = context.env

    def login(deadline: Deadline) -> tuple[str, dict[str, Any]]:
        return login_request(
            auth, lambda: read_serviceaccount_token(env, auth.token_path), azure, deadline
        )

    return Vault(vault_cfg, login, who, env)


FETCH_BACKEND = Vault
