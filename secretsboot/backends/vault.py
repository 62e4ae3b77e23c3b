"""HashiCorp Vault / OpenBao: ``vault://MOUNT/PATH#KEY`` (KV v2 or v1).

REST calls: ``POST /v1/auth/<mount>/login`` once (body from
:func:`secretsboot.identity.vault.login_request`), then ``GET /v1/MOUNT/data/PATH``
(KV v2) or ``GET /v1/MOUNT/PATH`` (KV v1) per secret, and
``POST /v1/auth/token/revoke-self`` when the fetch ends: no token outlives the fetch
and none is written to disk. :class:`LeanVault` uses our pooled HTTP client,
:class:`SdkVault` uses hvac; both translate errors in :func:`vault_error` only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from secretsboot.backends._http import HttpClient
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.secret import SecretValue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from secretsboot.contract import VaultConfig
    from secretsboot.refs import Ref

    LoginRequest = Callable[[float], tuple[str, dict[str, Any]]]


def vault_error(
    status: int,
    body: Any,
    what: str,
    who: str,
    *,
    login: bool = False,
    retry_after: float | None = None,
) -> Exception:
    """The one translation of a Vault error (HTTP status + ``{"errors": [...]}``)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    detail = "; ".join(str(e) for e in errors)[:200] if isinstance(errors, list) and errors else ""
    if status == 429 or status >= 500:
        return UnavailableError(
            f"Vault answered {status} for {what}{': ' + detail if detail else ''}",
            retry_after=retry_after,
        )
    if login and status in (400, 401, 403):
        hint = "run secretsboot provision (the Vault role or its bindings are missing)"
        if "invalid role" in detail or ("role" in detail and "not found" in detail):
            hint = "create the Vault role (secretsboot provision) or fix vault.auth.role"
        return DeniedError(f"Vault login refused for {who}: {detail or status}", hint=hint)
    if status in (401, 403):
        return DeniedError(
            f"Vault denied {who} reading {what}",
            hint="grant 'read' on this path in a policy of the role (secretsboot provision)",
        )
    if status == 404:
        return NotFoundError(f"{what} not found in Vault")
    return BadInputError(f"Vault refused {what}: {detail or status}")


def kv_path(ref: Ref, kv_version: int) -> str:
    """The API path of a KV secret (``MOUNT/data/PATH`` for KV v2)."""
    if kv_version == 2:
        return f"{ref.store}/data/{ref.path}"
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


class LeanVault:
    """Vault over the lean HTTP client; one login shared by all threads."""

    scheme = "vault"
    client = "lean"

    def __init__(self, config: VaultConfig, login: LoginRequest, who: str) -> None:
        self._config = config
        self._login = login
        self._who = who
        self._http = HttpClient(config.address, ca_file=config.ca_cert, what="Vault")
        self._token: str | None = None
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

    def token(self, timeout: float) -> str:
        """``POST /v1/auth/<mount>/login`` once; every thread shares the token."""
        with self._lock:
            if self._token is None:
                path, body = self._login(timeout)
                resp = self._http.request(
                    "POST",
                    f"/v1/{path}",
                    headers=self._headers(),
                    body=json.dumps(body).encode(),
                    timeout=timeout,
                )
                reply = resp.json()
                auth = reply.get("auth") if isinstance(reply, dict) else None
                if resp.status != 200 or not isinstance(auth, dict) or not auth.get("client_token"):
                    raise vault_error(
                        resp.status or 500,
                        reply,
                        f"login at {path}",
                        self._who,
                        login=True,
                        retry_after=resp.retry_after,
                    )
                self._token = str(auth["client_token"])
            return self._token

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """``GET /v1/MOUNT/data/PATH`` (KV v2) or ``GET /v1/MOUNT/PATH`` (KV v1)."""
        token = self.token(timeout)
        path = kv_path(ref, self._config.kv_version)
        resp = self._http.request(
            "GET", f"/v1/{path}", headers=self._headers(token), timeout=timeout
        )
        reply = resp.json()
        if resp.status == 200:
            return extract(reply, ref, self._config.kv_version)
        raise vault_error(resp.status, reply, str(ref), self._who, retry_after=resp.retry_after)

    def close(self) -> None:
        """Revoke the token we obtained (``auth/token/revoke-self``), then close connections."""
        with self._lock:
            token, self._token = self._token, None
        try:
            if token:
                self._http.request(
                    "POST", "/v1/auth/token/revoke-self", headers=self._headers(token), timeout=5
                )
        except UnavailableError:
            pass  # the token expires on its own (short TTL); nothing to do better here
        finally:
            self._http.close()


class SdkVault:
    """Vault through hvac (``client.adapter`` login, ``secrets.kv`` reads, ``revoke_self``)."""

    scheme = "vault"
    client = "sdk"

    def __init__(self, config: VaultConfig, login: LoginRequest, who: str) -> None:
        import hvac

        from secretsboot.backends._http import ca_file_from_env

        self._config = config
        self._login = login
        self._who = who
        ca = config.ca_cert or (ca_file_from_env() if config.address.startswith("https") else None)
        self._client = hvac.Client(
            url=config.address, verify=ca if ca else True, namespace=config.namespace
        )
        self._logged_in = False
        self._lock = threading.Lock()

    def describe_identity(self) -> str:
        return self._who

    def _call(self, what: str, fn: Callable[[], Any], *, login: bool = False) -> Any:
        import hvac.exceptions as hx
        import requests

        try:
            return fn()
        except hx.VaultError as exc:
            status = int(getattr(exc, "status_code", None) or _hvac_status(exc))
            body = {"errors": list(getattr(exc, "errors", None) or [str(exc)])}
            raise vault_error(status, body, what, self._who, login=login) from None
        except requests.exceptions.RequestException as exc:
            raise UnavailableError(
                f"Vault at {self._config.address} unreachable ({type(exc).__name__})",
                hint="check the address, the CA and that the server is up",
            ) from None

    def _ensure_login(self, timeout: float) -> None:
        with self._lock:
            if self._logged_in:
                return
            path, body = self._login(timeout)
            reply = self._call(
                f"login at {path}",
                lambda: self._client.adapter.post(f"/v1/{path}", json=body, timeout=timeout),
                login=True,
            )
            self._client.token = reply["auth"]["client_token"]
            self._logged_in = True

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """hvac ``secrets.kv.v2.read_secret_version`` / ``kv.v1.read_secret``."""
        self._ensure_login(timeout)
        kv = self._client.secrets.kv
        if self._config.kv_version == 2:
            reply = self._call(
                str(ref),
                lambda: kv.v2.read_secret_version(
                    path=ref.path, mount_point=ref.store, raise_on_deleted_version=True
                ),
            )
        else:
            reply = self._call(
                str(ref), lambda: kv.v1.read_secret(path=ref.path, mount_point=ref.store)
            )
        return extract(reply, ref, self._config.kv_version)

    def close(self) -> None:
        with self._lock:
            logged_in, self._logged_in = self._logged_in, False
        try:
            if logged_in:
                self._call("revoke-self", self._client.auth.token.revoke_self)
        except UnavailableError:
            pass
        finally:
            self._client.token = None
            self._client.adapter.close()


def _hvac_status(exc: BaseException) -> int:
    names = {
        "InvalidRequest": 400,
        "Unauthorized": 401,
        "Forbidden": 403,
        "InvalidPath": 404,
        "RateLimitExceeded": 429,
        "InternalServerError": 500,
        "BadGateway": 502,
        "VaultNotInitialized": 501,
        "VaultDown": 503,
    }
    return names.get(type(exc).__name__, 500)
