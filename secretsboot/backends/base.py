"""The one interface every secret store implements, and the errors it may raise.

A backend turns a parsed source (:class:`secretsboot.refs.Ref`) into a
:class:`~secretsboot.secret.SecretValue` over the transport's HTTP client, and
translates the store's replies with its map in :mod:`secretsboot.transport.status`,
so callers see only errors of our tree:

- :class:`~secretsboot.errors.NotFoundError`: the secret, version or key is missing
  (the runtime tries the next fallback source);
- :class:`~secretsboot.errors.DeniedError`: 401/403 (no silent fallback, unless the
  config says ``fallbackOnDenied``); :class:`~secretsboot.errors.PropagationPendingError`
  is a denial typical of a fresh federated credential or role assignment, retried for
  the propagation window;
- :class:`~secretsboot.errors.UnavailableError` (``retry_after``): 429, 5xx, a
  connection failure, an unparsable reply, the deadline; retried until the deadline;
- :class:`~secretsboot.errors.BadInputError`: the request or the config is wrong
  (an ``http://`` address, say); never retried.

Each backend module declares ``SCHEME``, its ``FETCH_BACKEND`` class and
``build(context)``; :data:`secretsboot.backends.STORES` maps schemes to modules.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Protocol

    from secretsboot.contract import FetchConfig
    from secretsboot.identity.azure import TokenSource
    from secretsboot.refs import Ref
    from secretsboot.secret import SecretValue
    from secretsboot.transport import Deadline

    class SecretStore(Protocol):
        """A secret store as the fetch runtime sees it. Implementations are thread-safe."""

        scheme: str

        def get(self, ref: Ref, deadline: Deadline) -> SecretValue:
            """Read one secret within ``deadline``; raise only errors of our tree."""
            ...

        def version(self, ref: Ref, deadline: Deadline) -> str:
            """A cheap, opaque token that changes when the secret's value may have changed,
            read without fetching the value where the store allows it (Key Vault: the
            newest version from ``/secrets/{name}/versions``; Vault KV v2: the
            ``metadata`` endpoint's ``current_version``; Kubernetes: the Secret's
            ``resourceVersion``). For refresh: compare with the last token seen."""
            ...

        def describe_identity(self) -> str:
            """Who we are to this store, for error messages (never a credential)."""
            ...

        def close(self, deadline: Deadline | None = None) -> None:
            """Release connections and revoke any token obtained (Vault: revoke-self),
            within ``deadline`` (a short default) when given."""
            ...

    class StoreContext(Protocol):
        """What a backend module's ``build`` gets from the fetch runtime."""

        config: FetchConfig
        env: Mapping[str, str]

        def azure_tokens(self) -> TokenSource:
            """The fetch's one Azure token source (shared by Key Vault and Vault logins)."""
            ...
