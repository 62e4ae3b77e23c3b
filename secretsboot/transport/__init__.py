"""The transport floor: the one HTTP client every data-plane client is built on.

- :mod:`.deadline`: :class:`Deadline`, the remaining time handed down to every wait;
- :mod:`.client`: :class:`HttpClient` (proxies, TLS only, 307/308 to https, body
  cap, pooled keep-alive, TLS session resumption) and :class:`Response`;
- :mod:`._http1`: HTTP/1.1 framing, read strictly (why not :mod:`http.client`: there);
- :mod:`.proxy`: ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` as curl reads them;
- :mod:`.status`: the one status -> error map per system (Key Vault, Entra ID,
  Vault, Kubernetes).

Callers see only errors of :mod:`secretsboot.errors`, never a protocol, :mod:`ssl`
or socket exception.
"""

from __future__ import annotations

from secretsboot.transport._urls import form, quote, split_url
from secretsboot.transport.client import (
    INSECURE_ENV,
    HttpClient,
    Response,
    ca_file_from_env,
    require_tls,
)
from secretsboot.transport.deadline import Deadline

__all__ = [
    "INSECURE_ENV",
    "Deadline",
    "HttpClient",
    "Response",
    "ca_file_from_env",
    "form",
    "quote",
    "require_tls",
    "split_url",
]
