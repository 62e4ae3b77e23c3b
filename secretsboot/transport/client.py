"""The one HTTP client: HTTP/1.1 with pooling, proxies, TLS and a deadline.

:mod:`._http1` speaks the protocol (chunked and ``Content-Length`` bodies, a body
cut short, interim replies; the reasons it replaces :mod:`http.client` are there);
this module adds what an init container needs:

- every wait is bounded by the *remaining* :class:`~.deadline.Deadline`: connect,
  the proxy's ``CONNECT`` reply, the TLS handshake, each read (the socket's timeout
  is set to what remains before every ``recv``), the wait for a pooled connection;
- ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (:mod:`.proxy`);
- interim ``1xx`` replies are skipped;
- ``307``/``308`` are followed for idempotent methods, to ``https://`` only (a Vault
  standby names the active node), at most :data:`MAX_REDIRECTS` times, without the
  ``Authorization`` header when the host changes;
- a body over ``max_body`` bytes fails as unavailable before it is read (no
  ``MemoryError``); a connection is pooled again only after a complete reply;
- TLS only: an ``http://`` URL is refused unless the caller allows it (IMDS) or the
  development setting ``SECRETSBOOT_INSECURE_ALLOW_HTTP=1`` is set, which warns on
  every run;
- every failure is an error of our tree (:class:`~secretsboot.errors.UnavailableError`
  or :class:`~secretsboot.errors.BadInputError`): callers never see a protocol,
  :mod:`ssl` or socket exception.

>>> client = HttpClient("https://127.0.0.1:8200", what="Vault")  # doctest: +SKIP
>>> client.request("GET", "/v1/sys/health", deadline=Deadline.after(5)).status  # doctest: +SKIP
200
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
from collections.abc import Mapping

from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.transport._conn import Connection, Pool, TunnelRefused, ssl_context
from secretsboot.transport._http1 import (
    BodyTooLarge,
    IncompleteReply,
    NoReply,
    ProtocolError,
    host_header,
)
from secretsboot.transport._urls import origin_of, resolve, split_url
from secretsboot.transport.deadline import Deadline
from secretsboot.transport.proxy import Proxy, proxy_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any

MAX_CONNECTIONS = 6
MAX_BODY = 8 * 1024 * 1024  # a Kubernetes Secret is at most 1 MiB, a Key Vault secret 25 KiB
MAX_REDIRECTS = 3
INSECURE_ENV = "SECRETSBOOT_INSECURE_ALLOW_HTTP"
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
DEFAULT_PORT = {"http": 80, "https": 443}


def ca_file_from_env(
    explicit: str | None = None, env: Mapping[str, str] | None = None
) -> str | None:
    """The CA bundle to trust: ``explicit``, else $SSL_CERT_FILE, else $REQUESTS_CA_BUNDLE."""
    env = os.environ if env is None else env
    return explicit or env.get("SSL_CERT_FILE") or env.get("REQUESTS_CA_BUNDLE")


def is_cleartext_allowed(env: Mapping[str, str] | None = None) -> bool:
    """Whether the development setting ``SECRETSBOOT_INSECURE_ALLOW_HTTP=1`` is on."""
    env = os.environ if env is None else env
    return env.get(INSECURE_ENV, "") == "1"


_warned: set[str] = set()


def require_tls(url: str, what: str, env: Mapping[str, str] | None = None) -> None:
    """Refuse an ``http://`` URL (BadInputError, exit 2), unless the development setting
    allows it; then warn on stderr, once per URL and run."""
    if not url.lower().startswith("http://"):
        return
    scheme, _, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    url = f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}"  # never a password
    if not is_cleartext_allowed(env):
        raise BadInputError(
            f"the {what} URL {url} is http://: secretsboot sends tokens over TLS only",
            hint=f"use https:// (for a local test only, {INSECURE_ENV}=1 allows http)",
        )
    if url not in _warned:
        _warned.add(url)
        print(
            f"secretsboot: WARNING: {INSECURE_ENV}=1: talking to the {what} at {url} "
            "in clear text; credentials can be read on the network (development only)",
            file=sys.stderr,
        )


class Response:
    """Status, lower-cased headers and body of one reply."""

    __slots__ = ("body", "headers", "status", "what")

    def __init__(self, status: int, headers: dict[str, str], body: bytes, what: str = "") -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.what = what

    def __repr__(self) -> str:  # the body may hold a secret
        return f"Response({self.status}, {len(self.body)} bytes)"

    def json(self) -> Any:
        """The body as JSON; an unparsable body is :class:`UnavailableError` (retried):
        a proxy's error page or a cut reply must never read as "not found"."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            raise UnavailableError(
                f"{self.what or 'the server'} sent a reply that is not JSON "
                f"(HTTP {self.status}, {len(self.body)} bytes)",
                hint="a proxy or load balancer in the way, or a server fault",
            ) from None

    def json_or_none(self) -> Any:
        """The body as JSON, or None: for error replies, whose status says enough."""
        try:
            return json.loads(self.body) if self.body else None
        except (ValueError, UnicodeDecodeError):
            return None

    @property
    def retry_after(self) -> float | None:
        """``Retry-After`` in seconds (a number of seconds or an HTTP date)."""
        value = self.headers.get("retry-after")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        from email.utils import parsedate_to_datetime

        try:
            import time

            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class HttpClient:
    """Pooled keep-alive connections to one origin (``scheme://host:port[/prefix]``).

    Thread-safe. ``env`` (default ``os.environ``) gives the proxy variables, the
    default CA bundle and the development setting. ``cleartext_ok`` is for endpoints
    that are plain http by design (IMDS on the node's link-local address).
    """

    def __init__(
        self,
        base_url: str,
        *,
        what: str = "server",
        ca_file: str | None = None,
        ca_data: str | None = None,
        client_cert: tuple[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cleartext_ok: bool = False,
        max_body: int = MAX_BODY,
    ) -> None:
        try:
            self.scheme, self.host, self.port, self.prefix = split_url(base_url)
        except ValueError:
            raise BadInputError(f"'{base_url}' is not an http(s) URL for the {what}") from None
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.what = what
        self.cleartext_ok = cleartext_ok
        if self.scheme == "http" and not cleartext_ok:
            require_tls(base_url, what, self.env)
        self.max_body = max_body
        self._ca_file = ca_file_from_env(ca_file, self.env)
        self._ca_data = ca_data
        self._client_cert = client_cert
        self._pools: dict[tuple[str, str, int], Pool] = {}
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        return origin_of(self.scheme, self.host, self.port)

    def preload_tls(self) -> None:
        """Build the TLS context now (it reads the CA and any client certificate files)."""
        if self.scheme == "https":
            self._tls()

    def _tls(self) -> ssl.SSLContext:
        return ssl_context(self._ca_file, self._ca_data, self._client_cert)

    def _pool(self, key: tuple[str, str, int]) -> Pool:
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = self._pools[key] = Pool(MAX_CONNECTIONS)
            return pool

    def request(
        self,
        method: str,
        path: str,
        *,
        deadline: Deadline,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """Send one request (``path`` after the base URL's path); follow 307/308 to https
        for idempotent methods. Raises only errors of our tree."""
        sent = {"User-Agent": "secretsboot", **(headers or {})}
        for name, value in sent.items():
            if "\r" in value or "\n" in value:
                raise BadInputError(f"header {name} holds a line break")
        scheme, host, port, target = self.scheme, self.host, self.port, self.prefix + path
        for _ in range(MAX_REDIRECTS + 1):
            resp = self._send(scheme, host, port, method, target, sent, body, deadline)
            location = resp.headers.get("location")
            if resp.status not in (307, 308) or method not in IDEMPOTENT or not location:
                return resp
            new = resolve(location, scheme, host, port)
            if new[0] != "https" and not (self.cleartext_ok or is_cleartext_allowed(self.env)):
                raise BadInputError(
                    f"the {self.what} redirected to {location}: followed to https:// only",
                    hint="give the https address of the active server",
                )
            if new[1:3] != (host, port):
                sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
            scheme, host, port, target = new
        raise UnavailableError(f"the {self.what} redirected more than {MAX_REDIRECTS} times")

    def _connection(
        self, scheme: str, host: str, port: int, deadline: Deadline, pool: Pool
    ) -> Connection:
        proxy = proxy_for(scheme, host, port, self.env)
        tls = self._tls() if scheme == "https" else None
        at = (host, port) if proxy is None else (proxy.host, proxy.port)
        conn = Connection(
            *at, tls=tls, server_hostname=host, deadline=deadline, session=pool.session
        )
        if proxy is not None and scheme == "https":
            auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else None
            conn.set_tunnel(host, port, headers=auth)
        conn.via = proxy
        return conn

    def _send(
        self,
        scheme: str,
        host: str,
        port: int,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes | None,
        deadline: Deadline,
    ) -> Response:
        origin = origin_of(scheme, host, port)
        pool = self._pool((scheme, host, port))
        left = deadline.remaining()
        if left <= 0 or not pool.slots.acquire(timeout=left):
            raise UnavailableError(
                f"{self.what} at {origin}: the deadline passed before a connection was free"
            )
        try:
            for attempt in (0, 1):
                conn = pool.take()
                reused = conn is not None
                if conn is None:
                    conn = self._connection(scheme, host, port, deadline, pool)
                conn.arm(deadline)
                proxy = conn.via
                line = target
                if proxy is not None and scheme == "http":  # a forward proxy wants the URL
                    line = origin + target
                try:
                    reply = conn.exchange(
                        method, line, host=host_header(host, port, DEFAULT_PORT[scheme]),
                        headers=headers, body=body, limit=self.max_body,
                    )  # fmt: skip
                except BodyTooLarge as exc:
                    conn.close()
                    size = f"{exc.size} bytes" if exc.size is not None else "unbounded"
                    raise UnavailableError(
                        f"{self.what} at {origin} sent a reply too large to read ({size}, "
                        f"limit {self.max_body} bytes)"
                    ) from None
                except (OSError, ProtocolError, ValueError) as exc:
                    conn.close()
                    if reused and attempt == 0 and isinstance(exc, _STALE):
                        continue  # the server had closed the idle keep-alive connection
                    raise self._failure(exc, origin, proxy, deadline) from None
                pool.give(conn, keep=reply.keep)
                return Response(reply.status, dict(reply.headers), reply.body, self.what)
        finally:
            pool.slots.release()
        raise AssertionError("unreachable")  # pragma: no cover

    def _failure(
        self, exc: BaseException, origin: str, proxy: Proxy | None, deadline: Deadline
    ) -> Exception:
        via = f" through the proxy {proxy.host}:{proxy.port}" if proxy else ""
        reason = _reason(exc, deadline)
        if type(exc) is ValueError:  # a request that would break the framing
            reason = "invalid request"
        return UnavailableError(
            f"{self.what} at {origin} unreachable{via} ({reason})",
            hint="check the address, the CA, the proxy settings and that the server is up",
        )

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


_STALE = (NoReply, ConnectionResetError, BrokenPipeError)


def _reason(exc: BaseException, deadline: Deadline) -> str:
    """A short, value-free reason for a transport failure."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        if exc.verify_code == 62 or "mismatch" in str(exc.verify_message).lower():
            return "TLS certificate is for another host name"
        return "TLS certificate not trusted: wrong CA bundle"
    if isinstance(exc, TimeoutError):
        return "timed out: the deadline passed" if deadline.expired() else "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or type(exc).__name__}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, IncompleteReply | NoReply):
        return str(exc)
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"
    if isinstance(exc, TunnelRefused):
        return f"the proxy refused the tunnel: {exc}"
    if isinstance(exc, ProtocolError):
        return f"not a valid HTTP reply: {exc}"
    return type(exc).__name__
