"""Azure Key Vault: ``keyvault://VAULT/NAME[@VERSION]``.

REST call: ``GET {vault_url}/secrets/{name}/{version}?api-version=7.4`` with an Entra
token for ``https://vault.azure.net/.default``. Two clients behind one interface:
:class:`LeanKeyVault` (our pooled HTTP client; the default) and :class:`SdkKeyVault`
(azure-keyvault-secrets' ``SecretClient``). Both translate errors in
:func:`keyvault_error` only.
"""

from __future__ import annotations

import threading

from secretsboot.backends._http import HttpClient, quote
from secretsboot.backends.base import PropagationPendingError
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.secret import SecretValue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from secretsboot.contract import AzureConfig
    from secretsboot.identity.azure import TokenSource
    from secretsboot.refs import Ref

SCOPE = "https://vault.azure.net/.default"
API_VERSION = "7.4"


def keyvault_error(
    status: int,
    body: Any,
    ref: Ref,
    who: str,
    retry_after: float | None = None,
) -> Exception:
    """The one translation of a Key Vault data-plane error into our tree."""
    err = body.get("error") if isinstance(body, dict) else None
    code = str(err.get("code", "")) if isinstance(err, dict) else ""
    inner_obj = err.get("innererror") if isinstance(err, dict) else None
    inner = str(inner_obj.get("code", "")) if isinstance(inner_obj, dict) else ""
    vault = ref.store
    if status == 429 or status >= 500:
        return UnavailableError(
            f"Key Vault {vault} answered {status} for {ref}", retry_after=retry_after
        )
    if status == 404:
        return NotFoundError(f"secret '{ref.path}' not found in Key Vault {vault}")
    if status == 403:
        if inner == "ForbiddenByRbac":
            why = "no 'Key Vault Secrets User' role (vault in RBAC mode)"
        elif inner == "ForbiddenByPolicy":
            why = "no access policy with secret 'get' (vault in access-policy mode)"
        else:
            why = "no 'Key Vault Secrets User' role and no access policy"
        # A fresh role assignment takes minutes to reach the data plane: retried for a while.
        return PropagationPendingError(
            f"Key Vault {vault} denied {who}: {why}",
            hint="run secretsboot provision (new grants take a few minutes to apply)",
        )
    if status == 401:
        return DeniedError(
            f"Key Vault {vault} rejected the token of {who} ({code or 'Unauthorized'})",
            hint="check the tenant and authority host",
        )
    return BadInputError(f"Key Vault {vault} refused the request for {ref}: {code or status}")


class LeanKeyVault:
    """Key Vault over the lean HTTP client (one pooled client per vault URL)."""

    scheme = "keyvault"
    client = "lean"

    def __init__(self, config: AzureConfig, tokens: TokenSource) -> None:
        self._config = config
        self._tokens = tokens
        self._clients: dict[str, HttpClient] = {}
        self._lock = threading.Lock()

    def describe_identity(self) -> str:
        return self._tokens.describe()

    def _http(self, vault: str) -> HttpClient:
        url = self._config.vault_url(vault)
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = HttpClient(url, ca_file=self._config.ca_cert, what=f"Key Vault {vault}")
                self._clients[url] = client
            return client

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """``GET {vault}/secrets/{name}/{version}?api-version=7.4`` with a bearer token."""
        token = self._tokens.token(SCOPE, timeout)
        path = f"/secrets/{quote(ref.path)}/{quote(ref.version or '')}?api-version={API_VERSION}"
        resp = self._http(ref.store).request(
            "GET", path, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )
        body = resp.json()
        if resp.status == 200 and isinstance(body, dict) and isinstance(body.get("value"), str):
            return SecretValue(body["value"])
        if resp.status == 200:
            raise UnavailableError(f"Key Vault {ref.store} sent an unreadable reply for {ref}")
        raise keyvault_error(resp.status, body, ref, self.describe_identity(), resp.retry_after)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()  # the token source belongs to the caller, who closes it


class SdkKeyVault:
    """Key Vault through azure-keyvault-secrets (``SecretClient.get_secret``)."""

    scheme = "keyvault"
    client = "sdk"

    def __init__(
        self, config: AzureConfig, credential: Any, who: str, subject: str | None = None
    ) -> None:
        self._config = config
        self._credential = credential
        self._who = who
        self._subject = subject
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def describe_identity(self) -> str:
        return self._who

    def _client(self, vault: str) -> Any:
        from azure.keyvault.secrets import SecretClient

        from secretsboot.backends._http import ca_file_from_env

        url = self._config.vault_url(vault)
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                ca = ca_file_from_env(self._config.ca_cert)
                kwargs: dict[str, Any] = {"retry_total": 0}  # our policy retries
                if ca:
                    kwargs["connection_verify"] = ca
                client = SecretClient(
                    url, self._credential, verify_challenge_resource=False, **kwargs
                )
                self._clients[url] = client
            return client

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """``SecretClient.get_secret`` (the same REST call, through azure-core)."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            secret = self._client(ref.store).get_secret(
                ref.path, ref.version, connection_timeout=timeout, read_timeout=timeout
            )
        except ClientAuthenticationError as exc:
            # Raised both by the vault (401/403) and by the credential (Entra's answer):
            # the URL of the failed request tells which.
            request = getattr(exc.response, "request", None)
            url = str(getattr(request, "url", "") or "")
            if url.startswith(self._config.vault_url(ref.store)):
                raise self._translate_for(exc, ref) from None
            from secretsboot.identity.azure_sdk import credential_error

            raise credential_error(exc, self._who, self._subject) from None
        except HttpResponseError as exc:
            raise self._translate_for(exc, ref) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise UnavailableError(
                f"Key Vault {ref.store} unreachable ({type(exc).__name__})",
                hint="check the vault URL, the CA and the network",
            ) from None
        if secret.value is None:
            raise NotFoundError(f"secret '{ref.path}' in Key Vault {ref.store} has no value")
        return SecretValue(secret.value)

    def _translate_for(self, exc: Any, ref: Ref) -> Exception:
        response = exc.response
        body: Any = None
        retry_after = None
        if response is not None:
            try:
                body = response.json()
            except ValueError:
                body = None
            raw = response.headers.get("Retry-After")
            if raw and raw.replace(".", "", 1).isdigit():
                retry_after = float(raw)
        return keyvault_error(exc.status_code or 0, body, ref, self._who, retry_after)

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()  # the credential belongs to the caller, who closes it
