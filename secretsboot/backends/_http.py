"""A lean, pooled HTTP/1.1 client on bare sockets for the init-container hot path.

Why not an SDK: ``import azure.identity`` costs ~170 ms and ``hvac`` ~120 ms, more
than the whole fetch should take (see ``scripts/bench_fetch.py``); even
:mod:`http.client` pulls in the :mod:`email` package (~15 ms). This client does what
the fetch needs and nothing else: HTTP/1.1 with ``Content-Length`` or chunked
bodies, keep-alive connections pooled per origin (at most :data:`MAX_CONNECTIONS`,
shared by threads), TLS verified against the configured CA, and one translation of
socket errors into :class:`~secretsboot.errors.UnavailableError`.

>>> client = HttpClient("https://127.0.0.1:8200", ca_file="ca.pem", what="Vault")  # doctest: +SKIP
>>> client.request("GET", "/v1/sys/health", timeout=5).status  # doctest: +SKIP
200
"""

from __future__ import annotations

import json
import os
import socket
import threading

from secretsboot.errors import BadInputError, UnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any

MAX_CONNECTIONS = 6
_MAX_LINE = 65536
_MAX_HEADERS = 200

_contexts: dict[tuple[str | None, str | None], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def ca_file_from_env(explicit: str | None = None) -> str | None:
    """The CA bundle to trust: ``explicit``, else $SSL_CERT_FILE, else $REQUESTS_CA_BUNDLE."""
    return explicit or os.environ.get("SSL_CERT_FILE") or os.environ.get("REQUESTS_CA_BUNDLE")


def ssl_context(ca_file: str | None, ca_data: str | None = None) -> ssl.SSLContext:
    """One verifying TLS context per CA (file or PEM text), shared by every connection."""
    with _contexts_lock:
        ctx = _contexts.get((ca_file, ca_data))
        if ctx is None:
            import ssl

            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            try:
                if ca_data:
                    ctx.load_verify_locations(cadata=ca_data)
                elif ca_file:
                    ctx.load_verify_locations(cafile=ca_file)
                else:
                    ctx.load_default_certs()
            except (OSError, ssl.SSLError) as exc:
                raise BadInputError(
                    f"cannot load the CA bundle {ca_file}: {exc}",
                    hint="point caCert / VAULT_CACERT / SSL_CERT_FILE at a PEM file",
                ) from None
            _contexts[(ca_file, ca_data)] = ctx
        return ctx


class Response:
    """Status, lower-cased headers and body of one reply."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def __repr__(self) -> str:  # the body may hold a secret
        return f"Response({self.status}, {len(self.body)} bytes)"

    def json(self) -> Any:
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return None


_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode ``text`` for a URL path segment or a form value (RFC 3986).

    >>> quote("a b/c")
    'a%20b%2Fc'
    """
    allowed = _SAFE | frozenset(safe.encode())
    return "".join(chr(b) if b in allowed else f"%{b:02X}" for b in text.encode("utf-8"))


def form(fields: dict[str, str]) -> bytes:
    """``application/x-www-form-urlencoded`` body (or query string) of ``fields``."""
    return "&".join(f"{quote(k)}={quote(v)}" for k, v in fields.items()).encode("ascii")


class ProtocolError(OSError):
    """The server's reply is not HTTP/1.1 we understand."""


def split_url(url: str) -> tuple[str, str, int, str]:
    """``(scheme, host, port, path)`` of an http(s) URL; ValueError otherwise.

    >>> split_url("https://[::1]:8443/base/")
    ('https', '::1', 8443, '/base')
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("http", "https"):
        raise ValueError(url)
    netloc, slash, path = rest.partition("/")
    netloc = netloc.rpartition("@")[2]
    if netloc.startswith("["):
        host, _, port_text = netloc[1:].partition("]")
        port_text = port_text.lstrip(":")
    else:
        host, _, port_text = netloc.partition(":")
    if not host:
        raise ValueError(url)
    port = int(port_text) if port_text else (443 if scheme == "https" else 80)
    return scheme, host, port, ("/" + path if slash else "").split("?")[0].rstrip("/")


def _open_socket(host: str, port: int, timeout: float) -> socket.socket:
    """``socket.create_connection``, with the host as bytes when it is ASCII: a text host
    makes ``getaddrinfo`` load the IDNA codec (a few ms of a start-up budget)."""
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


class _Connection:
    __slots__ = ("rfile", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.rfile = sock.makefile("rb")

    def close(self) -> None:
        try:
            self.rfile.close()
        finally:
            self.sock.close()


class HttpClient:
    """Pooled keep-alive connections to one origin (``scheme://host:port``), thread-safe."""

    def __init__(
        self,
        base_url: str,
        *,
        ca_file: str | None = None,
        what: str = "server",
        ca_data: str | None = None,
        client_cert: tuple[str, str] | None = None,
    ) -> None:
        try:
            self.scheme, self.host, self.port, self.prefix = split_url(base_url)
        except ValueError:
            raise BadInputError(f"'{base_url}' is not an http(s) URL for the {what}") from None
        self.what = what
        self._ca_file = ca_file_from_env(ca_file) if self.scheme == "https" else None
        self._ca_data = ca_data
        self._client_cert = client_cert
        self._client_ctx: ssl.SSLContext | None = None
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def preload_tls(self) -> None:
        """Build the TLS context now (it reads the CA and any client certificate files)."""
        if self.scheme == "https":
            self._tls()

    def _tls(self) -> ssl.SSLContext:
        if self._client_cert is None:
            return ssl_context(self._ca_file, self._ca_data)
        with self._lock:
            if self._client_ctx is None:
                import ssl

                own = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                if self._ca_data:
                    own.load_verify_locations(cadata=self._ca_data)
                elif self._ca_file:
                    own.load_verify_locations(cafile=self._ca_file)
                else:
                    own.load_default_certs()
                own.load_cert_chain(*self._client_cert)
                self._client_ctx = own
            return self._client_ctx

    def _connect(self, timeout: float) -> _Connection:
        sock = _open_socket(self.host, self.port, timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                sock = self._tls().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """Send one request; retry once on a pooled connection the server had closed."""
        timeout = max(0.05, timeout)
        host = f"[{self.host}]" if ":" in self.host else self.host
        lines = [f"{method} {self.prefix}{path} HTTP/1.1", f"Host: {host}:{self.port}"]
        lines.append("User-Agent: secretsboot")
        for name, value in (headers or {}).items():
            if "\r" in value or "\n" in value:
                raise BadInputError(f"header {name} holds a line break")
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        payload = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
        with self._slots:
            for attempt in (0, 1):
                with self._lock:
                    conn = self._idle.pop() if self._idle else None
                reused = conn is not None
                try:
                    if conn is None:
                        conn = self._connect(timeout)
                    conn.sock.settimeout(timeout)
                    conn.sock.sendall(payload)
                    resp, keep = _read_response(conn, method)
                except (OSError, ValueError) as exc:
                    if conn is not None:
                        conn.close()
                    if reused and attempt == 0 and not isinstance(exc, TimeoutError):
                        continue  # the server closed an idle keep-alive connection
                    raise UnavailableError(
                        f"{self.what} at {self.origin} unreachable ({_reason(exc)})",
                        hint="check the address, the CA and that the server is up",
                    ) from None
                if keep:
                    with self._lock:
                        self._idle.append(conn)
                else:
                    conn.close()
                return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _read_response(conn: _Connection, method: str) -> tuple[Response, bool]:
    """Read one reply; ``(response, keep the connection)``."""
    rfile = conn.rfile
    line = rfile.readline(_MAX_LINE + 1)
    if not line:
        raise ProtocolError("connection closed before a reply")
    version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
    if not version.startswith("HTTP/1."):
        raise ProtocolError("not an HTTP/1.x reply")
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for _ in range(_MAX_HEADERS):
        raw = rfile.readline(_MAX_LINE + 1)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    else:
        raise ProtocolError("too many headers")
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
        return Response(status, headers, b""), keep
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size_line = rfile.readline(_MAX_LINE + 1)
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while rfile.readline(_MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
                    pass
                break
            parts.append(_read_exact(rfile, size))
            rfile.readline(_MAX_LINE + 1)
        return Response(status, headers, b"".join(parts)), keep
    if "content-length" in headers:
        return Response(status, headers, _read_exact(rfile, int(headers["content-length"]))), keep
    return Response(status, headers, rfile.read()), False


def _read_exact(rfile: Any, size: int) -> bytes:
    data = rfile.read(size)
    if len(data) != size:
        raise ProtocolError("connection closed in the middle of a body")
    return bytes(data)


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return "TLS certificate not trusted: wrong CA bundle"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, ProtocolError):
        return str(exc)
    return name


def status_error(
    status: int, message: str, *, hint: str | None = None, retry_after: float | None = None
) -> Exception:
    """The error of our tree for an HTTP status (429/5xx transient, 401/403 denied...)."""
    from secretsboot.errors import DeniedError, NotFoundError

    if status == 429 or status >= 500:
        return UnavailableError(message, hint=hint, retry_after=retry_after)
    if status in (401, 403):
        return DeniedError(message, hint=hint)
    if status == 404:
        return NotFoundError(message, hint=hint)
    return BadInputError(message, hint=hint)
