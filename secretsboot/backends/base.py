"""The one interface every secret store implements, and the errors it may raise.

A backend turns a parsed source (:class:`secretsboot.refs.Ref`) into a
:class:`~secretsboot.secret.SecretValue`. Whatever client it uses (our lean HTTP
client or an official SDK), it translates that client's errors in ONE function
into our tree, so callers never import an SDK exception type:

- :class:`~secretsboot.errors.NotFoundError`: the secret, version or key is missing
  (the runtime tries the next fallback source);
- :class:`~secretsboot.errors.DeniedError`: 401/403 (no silent fallback, unless the
  config says ``fallbackOnDenied``); :class:`PropagationPendingError` is a denial that
  is typical of a fresh federated credential or role assignment, retried for the
  propagation window;
- :class:`~secretsboot.errors.UnavailableError` (``retry_after``): 429, 5xx, a
  connection failure; retried with backoff;
- :class:`~secretsboot.errors.BadInputError`: the request itself is wrong; never retried.
"""

from __future__ import annotations

from secretsboot.errors import DeniedError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    from secretsboot.refs import Ref
    from secretsboot.secret import SecretValue

    class SecretStore(Protocol):
        """A secret store as the fetch runtime sees it. Implementations are thread-safe."""

        scheme: str
        #: "lean" or "sdk": which client talks to the store.
        client: str

        def get(self, ref: Ref, timeout: float) -> SecretValue:
            """Read one secret; raise only errors of our tree (see the module docstring)."""
            ...

        def describe_identity(self) -> str:
            """Who we are to this store, for error messages (never a credential)."""
            ...

        def close(self) -> None:
            """Release connections and revoke any token obtained (Vault: revoke-self)."""
            ...


class PropagationPendingError(DeniedError):
    """A denial that a fresh grant may still cure (AADSTS70021, Key Vault RBAC 403).

    The runtime retries it while the propagation window lasts, then reports it as
    the :class:`DeniedError` it is.
    """
