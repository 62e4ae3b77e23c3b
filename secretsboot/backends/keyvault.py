"""Azure Key Vault: ``keyvault://VAULT/NAME[@VERSION]``.

REST calls: ``GET {vault_url}/secrets/{name}/{version}?api-version=7.4`` with an Entra
token; ``GET {vault_url}/secrets/{name}/versions`` for :meth:`KeyVault.version`.

The token's scope comes from the vault's own challenge, as ``SecretClient`` does it:
the first request to a vault goes without a token, the vault answers 401 with
``WWW-Authenticate: Bearer authorization="...", resource="https://vault.azure.net"``,
and the token is asked for that resource. For a real Key Vault domain
(:data:`KEYVAULT_DOMAINS`) the resource must be the vault host's own domain, else no
token is sent (the SDK's ``verify_challenge_resource``): a token never goes to a
foreign host. A host outside those domains (a local fake) skips the check.
Errors are translated by :func:`secretsboot.transport.status.keyvault_error`.
"""

from __future__ import annotations

import threading

from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.secret import SecretValue
from secretsboot.transport import HttpClient, quote, split_url
from secretsboot.transport.status import keyvault_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from secretsboot.backends.base import StoreContext
    from secretsboot.contract import AzureConfig
    from secretsboot.identity.azure import TokenSource
    from secretsboot.refs import Ref
    from secretsboot.transport import Deadline, Response

SCHEME = "keyvault"
API_VERSION = "7.4"
#: the data-plane domains of Key Vault and Managed HSM in each Azure cloud
KEYVAULT_DOMAINS = (
    "vault.azure.net",
    "vault.azure.cn",
    "vault.usgovcloudapi.net",
    "vault.microsoftazure.de",
    "managedhsm.azure.net",
)
DEFAULT_SCOPE = "https://vault.azure.net/.default"


def keyvault_domain(url: str) -> str | None:
    """The Key Vault domain ``url``'s host belongs to, or None (a local fake, a proxy).

    >>> keyvault_domain("https://shop.vault.azure.cn/"), keyvault_domain("https://127.0.0.1:9")
    ('vault.azure.cn', None)
    """
    try:
        host = split_url(url)[1].lower().rstrip(".")
    except ValueError:
        return None
    return next((d for d in KEYVAULT_DOMAINS if host.endswith("." + d)), None)


def verify_challenge_resource(url: str) -> bool:
    """What to pass as ``SecretClient(verify_challenge_resource=...)`` for ``url``: the
    check stays on for real Key Vault domains and is skipped only for other hosts."""
    return keyvault_domain(url) is not None


def challenge_scope(resp: Response, url: str, vault: str) -> str:
    """The token scope a 401 challenge asks for, checked against the vault's domain."""
    import re

    header = resp.headers.get("www-authenticate", "")
    params = dict(re.findall(r'(\w+)="([^"]*)"', header))
    domain = keyvault_domain(url)
    scope = params.get("scope") or ""
    resource = params.get("resource") or scope.removesuffix("/.default")
    if not resource:
        return f"https://{domain}/.default" if domain else DEFAULT_SCOPE
    if domain is not None:
        try:
            resource_host = split_url(resource)[1].lower()
        except ValueError:
            resource_host = ""
        host = split_url(url)[1].lower()
        if not resource_host or not host.endswith("." + resource_host):
            raise BadInputError(
                f"Key Vault {vault} at {url} asked for a token for {resource}, which is not "
                "its own domain: no token sent",
                hint="check the vault's URL (azure.keyVaults); it must be the vault itself",
            )
    return scope or resource.rstrip("/") + "/.default"


class KeyVault:
    """Key Vault over the transport's client (one pooled client per vault URL)."""

    scheme = SCHEME

    def __init__(
        self, config: AzureConfig, tokens: TokenSource, env: Mapping[str, str] | None = None
    ) -> None:
        self._config = config
        self._tokens = tokens
        self._env = env
        self._clients: dict[str, HttpClient] = {}
        self._scopes: dict[str, str] = {}
        self._lock = threading.Lock()
        self._challenge_lock = threading.Lock()

    def describe_identity(self) -> str:
        return self._tokens.describe()

    def _http(self, vault: str) -> tuple[HttpClient, str]:
        url = self._config.vault_url(vault)
        with self._lock:
            client = self._clients.get(url)
            if client is None:
                client = HttpClient(
                    url, ca_file=self._config.ca_cert, what=f"Key Vault {vault}", env=self._env
                )
                self._clients[url] = client
            return client, url

    def _request(self, vault: str, path: str, deadline: Deadline) -> Response:
        """``GET path`` with a token whose scope the vault's challenge named."""
        client, url = self._http(vault)
        scope = self._scopes.get(url)
        if scope is None:
            # one challenge per vault, however many threads start at once
            if not self._challenge_lock.acquire(timeout=max(0.0, deadline.remaining())):
                raise UnavailableError(f"Key Vault {vault}: the deadline passed")
            try:
                scope = self._scopes.get(url)
                if scope is None:
                    first = client.request("GET", path, deadline=deadline)
                    if first.status != 401:
                        return first  # the vault answered without asking for a token
                    scope = self._scopes[url] = challenge_scope(first, url, vault)
            finally:
                self._challenge_lock.release()
        token = self._tokens.token(scope, deadline)
        headers = {"Authorization": f"Bearer {token}"}
        return client.request("GET", path, headers=headers, deadline=deadline)

    def _error(self, resp: Response, ref: Ref) -> Exception:
        return keyvault_error(
            resp.status,
            resp.json_or_none(),
            ref.store,
            ref.path,
            self.describe_identity(),
            resp.retry_after,
        )

    def _bundle(self, ref: Ref, deadline: Deadline, field: str) -> str:
        """``field`` of the secret bundle of ``GET /secrets/{name}/{version}``."""
        path = f"/secrets/{quote(ref.path)}/{quote(ref.version or '')}?api-version={API_VERSION}"
        resp = self._request(ref.store, path, deadline)
        if resp.status != 200:
            raise self._error(resp, ref)
        body = resp.json()
        if isinstance(body, dict) and isinstance(body.get(field), str):
            return str(body[field])
        raise UnavailableError(f"Key Vault {ref.store} sent an unreadable reply for {ref}")

    def get(self, ref: Ref, deadline: Deadline) -> SecretValue:
        """``GET {vault}/secrets/{name}/{version}?api-version=7.4`` with a bearer token."""
        return SecretValue(self._bundle(ref, deadline, "value"))

    def version(self, ref: Ref, deadline: Deadline) -> str:
        """The current version id, from ``GET /secrets/{name}/versions`` (attributes only,
        no value; the newest ``created`` wins, as "latest" does; a tie within one second is
        settled by ``GET /secrets/{name}``). A pinned ``@VERSION``
        is itself. Without the list permission (an access policy with ``get`` only),
        falls back to ``GET /secrets/{name}`` and keeps only the id."""
        if ref.version:
            return ref.version
        path = f"/secrets/{quote(ref.path)}/versions?api-version={API_VERSION}&maxresults=25"
        newest: tuple[int, list[str]] = (-1, [])
        url = self._config.vault_url(ref.store)
        while path:
            resp = self._request(ref.store, path, deadline)
            if resp.status == 403:
                return self._version_by_get(ref, deadline)
            if resp.status != 200:
                raise self._error(resp, ref)
            body = resp.json()
            page = body.get("value") if isinstance(body, dict) else None
            for item in page if isinstance(page, list) else []:
                created, ident = _created_and_id(item)
                if created < 0:
                    continue
                if created > newest[0]:
                    newest = (created, [ident])
                elif created == newest[0]:
                    newest[1].append(ident)
            path = _same_origin_path(body.get("nextLink") if isinstance(body, dict) else None, url)
        if not newest[1]:
            raise UnavailableError(f"Key Vault {ref.store} listed no version of {ref}")
        if len(newest[1]) > 1:  # created in the same second: only "latest" can tell
            return self._version_by_get(ref, deadline)
        return newest[1][0]

    def _version_by_get(self, ref: Ref, deadline: Deadline) -> str:
        return self._bundle(ref, deadline, "id").rstrip("/").rsplit("/", 1)[-1]

    def close(self, deadline: Deadline | None = None) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()  # the token source belongs to the caller, who closes it


def _created_and_id(item: Any) -> tuple[int, str]:
    """``(attributes.created, version id)`` of a listed version; (-1, "") if unreadable."""
    attrs = item.get("attributes") if isinstance(item, dict) else None
    created = attrs.get("created") if isinstance(attrs, dict) else None
    ident = item.get("id") if isinstance(item, dict) else None
    if not isinstance(created, int) or not isinstance(ident, str):
        return -1, ""
    return created, ident.rstrip("/").rsplit("/", 1)[-1]


def _same_origin_path(link: object, url: str) -> str:
    """The path and query of a ``nextLink`` on the vault's own origin ('' to stop)."""
    if not isinstance(link, str) or not link:
        return ""
    scheme, host, port, _ = split_url(url)
    try:
        if split_url(link)[:3] != (scheme, host, port):
            return ""
    except ValueError:
        return ""
    rest = link.split("://", 1)[1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else ""


def build(context: StoreContext) -> KeyVault:
    """The Key Vault backend of one fetch (the fetch's Azure token source)."""
    from secretsboot.contract import AzureConfig

    return KeyVault(context.config.azure or AzureConfig(), context.azure_tokens(), context.env)


FETCH_BACKEND = KeyVault
