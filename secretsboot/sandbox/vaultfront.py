"""The front of the sandbox's OpenBao: every request passes straight through.

Clients reach OpenBao through this HTTPS front (a certificate of the sandbox CA,
like OpenBao's own listener), so the sandbox has fault knobs for Vault as for
every fake (``sandbox fault openbao --stop|--start|--latency S``) and a place to
answer the paths OpenBao lacks: HashiCorp Vault's ``azure`` auth method
(:mod:`.vault_azure`, once :meth:`VaultFront.enable_azure_auth` is called), and
any handler in ``routes``. Everything else is forwarded unchanged (method,
including Vault's ``LIST``, path, query, headers, body) and OpenBao's answer is
relayed unchanged (status, headers, body).

Example::

    front = FakeServer(VaultFront(bao.server_address, ca.ca_path), ssl_context=ctx).start()
    hvac.Client(url=front.url, verify=str(ca.ca_path))
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

from secretsboot.sandbox._http import FakeApp, Request, Response
from secretsboot.sandbox.vault_azure import VaultAzureAuth
from secretsboot.sandbox.vault_azure_login import AzureDirectory

#: Hop-by-hop headers (RFC 9110 section 7.6.1) and the ones the server sets itself.
_NOT_FORWARDED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
    }
)

Route = Callable[[Request], Response | None]


class VaultFront(FakeApp):
    """Forwards to OpenBao at ``upstream`` (``https://127.0.0.1:PORT``), TLS verified."""

    name = "openbao"

    def __init__(self, upstream: str, ca_path: Path, *, timeout: float = 60.0) -> None:
        super().__init__()
        import ssl

        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 443
        self.timeout = timeout
        self._ssl = ssl.create_default_context(cafile=str(ca_path))
        self._idle: list[http.client.HTTPSConnection] = []  # kept-alive, not in use
        self._lock = threading.Lock()
        #: ``(method, path prefix) -> handler``; a handler returning None forwards.
        self.routes: list[tuple[str, str, Route]] = []
        #: Vault's azure auth method (None until :meth:`enable_azure_auth`)
        self.azure: VaultAzureAuth | None = None
        self.ca_path = ca_path

    def enable_azure_auth(
        self, root_token: str, authority: str, directory: AzureDirectory | None = None
    ) -> VaultAzureAuth:
        """Answer ``sys/auth`` mounts of ``type: azure`` and their ``auth/PATH/*`` here.

        ``authority`` stands for every Azure cloud's Entra ID (the sandbox's Entra
        fake); ``root_token`` creates the tokens of granted logins.
        """
        self.azure = VaultAzureAuth(
            self.forward, root_token, authority=authority, ca_path=self.ca_path, directory=directory
        )
        return self.azure

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        """Vault's error shape: ``{"errors": [...]}``."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        return Response(status, {"errors": [f"injected fault ({status})"]}, headers)

    def handle(self, req: Request) -> Response:
        for method, prefix, route in self.routes:
            if req.method == method and req.path.startswith(prefix):
                answer = route(req)
                if answer is not None:
                    return answer
        if self.azure is not None:
            answer = self.azure.route(req)
            if answer is not None:
                return answer
        return self.forward(req)

    def _connection(self) -> http.client.HTTPSConnection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return http.client.HTTPSConnection(
            self.host, self.port, timeout=self.timeout, context=self._ssl
        )

    def _release(self, conn: http.client.HTTPSConnection) -> None:
        with self._lock:
            if len(self._idle) < 8:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close the kept-alive connections to OpenBao."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def forward(self, req: Request) -> Response:
        """Send ``req`` to OpenBao as it came; relay the answer as it came."""
        target = quote(req.path, safe="/:@!$&'()*+,;=-._~")
        if req.query:
            target += "?" + urlencode(req.query, doseq=True)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _NOT_FORWARDED}
        for attempt in (1, 2):  # a kept-alive connection OpenBao closed: one fresh retry
            conn = self._connection()
            try:
                conn.request(req.method, target, body=req.body or None, headers=headers)
                upstream = conn.getresponse()
                body = upstream.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                if attempt == 2:
                    return Response(502, {"errors": ["the sandbox's OpenBao is not answering"]})
                continue
            relayed = {k: v for k, v in upstream.getheaders() if k.lower() not in _NOT_FORWARDED}
            if upstream.will_close:
                conn.close()
            else:
                self._release(conn)
            return Response(upstream.status, body, relayed)
        raise AssertionError("unreachable")  # pragma: no cover
