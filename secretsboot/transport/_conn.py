"""Connections whose every wait is bounded by the deadline.

The socket's timeout is set to what remains of the :class:`~.deadline.Deadline`
before every ``recv`` and ``send`` (plain and TLS sockets alike), the TCP connect and
the whole TLS handshake get what remains when they start, and the proxy's
``CONNECT`` reply is read through the same sockets. The protocol itself is
:mod:`._http1`. :class:`Pool` holds idle connections to one origin.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Mapping

from secretsboot.errors import BadInputError
from secretsboot.transport._http1 import (
    NoReply,
    ProtocolError,
    Reader,
    Reply,
    encode_request,
    host_header,
    read_head,
    read_reply,
)
from secretsboot.transport.deadline import Deadline

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any

    from secretsboot.transport.proxy import Proxy

# ---- sockets whose every wait is bounded by the deadline ------------------------------


class _DeadlineSocketMixin:
    """Sets the socket timeout to what remains of ``deadline`` before every read or send."""

    deadline: Deadline | None = None

    def _arm(self) -> None:
        if self.deadline is not None:
            self.settimeout(self.deadline.left())  # type: ignore[attr-defined]

    def recv_into(self, *args: Any, **kwargs: Any) -> int:
        self._arm()
        return super().recv_into(*args, **kwargs)  # type: ignore[misc, no-any-return]

    def recv(self, *args: Any, **kwargs: Any) -> bytes:
        self._arm()
        return super().recv(*args, **kwargs)  # type: ignore[misc, no-any-return]

    def sendall(self, *args: Any, **kwargs: Any) -> None:
        self._arm()
        super().sendall(*args, **kwargs)  # type: ignore[misc]


class _DeadlineSocket(_DeadlineSocketMixin, socket.socket):
    pass


_tls_socket_class: type | None = None


def _deadline_tls_class() -> type:
    global _tls_socket_class
    if _tls_socket_class is None:
        import ssl

        class _DeadlineTLSSocket(_DeadlineSocketMixin, ssl.SSLSocket):
            pass

        _tls_socket_class = _DeadlineTLSSocket
    return _tls_socket_class


_contexts: dict[tuple[str | None, str | None, tuple[str, str] | None], ssl.SSLContext] = {}
_contexts_lock = threading.Lock()


def ssl_context(
    ca_file: str | None, ca_data: str | None = None, client_cert: tuple[str, str] | None = None
) -> ssl.SSLContext:
    """One verifying TLS context per CA (file or PEM text) and client certificate."""
    key = (ca_file, ca_data, client_cert)
    with _contexts_lock:
        ctx = _contexts.get(key)
        if ctx is None:
            import ssl

            try:
                ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_data)
                if client_cert is not None:
                    ctx.load_cert_chain(*client_cert)
            except (OSError, ssl.SSLError, ValueError) as exc:
                what = "client certificate" if client_cert else f"CA bundle {ca_file or ''}"
                raise BadInputError(
                    f"cannot load the {what.strip()}: {type(exc).__name__}",
                    hint="point caCert / SSL_CERT_FILE (or the kubeconfig) at PEM data",
                ) from None
            ctx.sslsocket_class = _deadline_tls_class()
            _contexts[key] = ctx
        return ctx


def look_up(
    host: str, port: int, deadline: Deadline, getaddrinfo: Callable[..., Any] = socket.getaddrinfo
) -> list[Any]:
    """``getaddrinfo`` for a TCP connection, bounded by the deadline.

    The C resolver cannot be interrupted, and with resolv.conf's defaults (5 s a
    try, two tries, every search domain of a pod's ``ndots:5``) an unanswering DNS
    server holds it for tens of seconds: a name is looked up in a daemon thread and
    abandoned when the deadline passes (TimeoutError). An IP address is parsed in
    place, with no lookup and no thread. The host goes in as bytes when ASCII (text
    loads the IDNA codec).
    """
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    try:
        return getaddrinfo(name, port, 0, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST)  # type: ignore[no-any-return]
    except socket.gaierror:
        pass  # a name, not an address
    found: list[Any] = []
    failed: list[OSError] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            found.extend(getaddrinfo(name, port, 0, socket.SOCK_STREAM))
        except OSError as exc:
            failed.append(exc)
        finally:
            done.set()

    threading.Thread(target=lookup, name="secretsboot-dns", daemon=True).start()
    if not done.wait(max(deadline.left(), 0.0)):
        raise TimeoutError(f"resolving {host} timed out")
    if failed:
        raise failed[0]
    return found


def _open_socket(host: str, port: int, deadline: Deadline) -> _DeadlineSocket:
    """``socket.create_connection`` bounded by the deadline, as a :class:`_DeadlineSocket`."""
    error: OSError | None = None
    for family, kind, proto, _, address in look_up(host, port, deadline):
        sock = _DeadlineSocket(family, kind, proto)
        try:
            sock.settimeout(deadline.left())
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.deadline = deadline
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


# ---- one keep-alive connection ----------------------------------------------------------


class Connection:
    """One keep-alive connection to an origin, directly or through a proxy (plain
    requests to a forward proxy, or a ``CONNECT`` tunnel for https)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: ssl.SSLContext | None,
        server_hostname: str,
        deadline: Deadline,
        session: ssl.SSLSession | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sock: socket.socket | None = None
        self._tls = tls
        self._server_hostname = server_hostname
        self._session = session
        self._tunnel: tuple[str, dict[str, str]] | None = None
        self._reader: Reader | None = None
        #: the TLS session the next connection to this origin can resume
        self.session: ssl.SSLSession | None = None
        self.deadline = deadline
        #: the proxy this connection goes through, if any
        self.via: Proxy | None = None

    def set_tunnel(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        """Reach ``host:port`` through the proxy this connection goes to, by ``CONNECT``."""
        self._tunnel = (host_header(host, port, -1), dict(headers or {}))

    def arm(self, deadline: Deadline) -> None:
        self.deadline = deadline
        if self.sock is not None:
            self.sock.deadline = deadline  # type: ignore[attr-defined]

    def connect(self) -> None:
        sock: socket.socket = _open_socket(self.host, self.port, self.deadline)
        try:
            if self._tunnel is not None:
                _open_tunnel(sock, *self._tunnel)
            if self._tls is not None:
                sock.settimeout(self.deadline.left())  # the whole handshake
                name = self._server_hostname  # as bytes when ASCII: text loads the IDNA codec
                sock = self._tls.wrap_socket(
                    sock,
                    server_hostname=name.encode("ascii") if name.isascii() else name,
                    session=self._session,
                )
                sock.deadline = self.deadline  # type: ignore[attr-defined]
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._reader = Reader(sock)

    def exchange(
        self,
        method: str,
        target: str,
        *,
        host: str,
        headers: Mapping[str, str],
        body: bytes | None,
        limit: int,
    ) -> Reply:
        """Send one request and read its reply (connecting first if need be)."""
        data = encode_request(method, target, host, headers, body)
        if self.sock is None or self._reader is None:
            self.connect()
        sock, reader = self.sock, self._reader
        if sock is None or reader is None:  # pragma: no cover - connect() sets both or raises
            raise NoReply("not connected")
        sock.sendall(data)
        reply = read_reply(reader, method, limit)
        if self.session is None and self._tls is not None:
            # TLS 1.3 sends the session ticket after the handshake: read with the reply.
            # Asked once per connection: the getter copies the session.
            self.session = sock.session  # type: ignore[attr-defined]
        return reply

    def close(self) -> None:
        sock, self.sock, self._reader = self.sock, None, None
        if sock is not None:
            sock.close()


def _open_tunnel(sock: socket.socket, authority: str, headers: dict[str, str]) -> None:
    """``CONNECT authority`` through the proxy at the other end of ``sock``."""
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    reader = Reader(sock)
    status, reason = read_head(reader)
    if status != 200:
        raise TunnelRefused(f"{status} {reason}".strip())
    if reader.buf:
        raise ProtocolError("the proxy sent bytes after its CONNECT reply")


class TunnelRefused(OSError):
    """The proxy answered ``CONNECT`` with something other than 200."""


class Pool:
    """Idle connections to one origin, the slots that bound how many are open, and the
    TLS session a new connection resumes (no second certificate check or key exchange
    signature: the first full handshake verified the server for this context)."""

    def __init__(self, size: int) -> None:
        self.idle: list[Connection] = []
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(size)
        self.session: ssl.SSLSession | None = None

    def take(self) -> Connection | None:
        with self.lock:
            while self.idle:
                conn = self.idle.pop()
                if not _dropped(conn):
                    return conn
                conn.close()
        return None

    def give(self, conn: Connection, *, keep: bool) -> None:
        """Take back a connection after a complete reply: idle if ``keep``, else closed."""
        session = conn.session
        with self.lock:
            if session is not None:
                self.session = session
            if keep:
                self.idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


def _dropped(conn: Connection) -> bool:
    """An idle connection the server closed (or wrote to) is readable: not reusable."""
    import select

    sock = conn.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
