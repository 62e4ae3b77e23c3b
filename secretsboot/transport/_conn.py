"""Connections whose every wait is bounded by the deadline, on :mod:`http.client`.

The socket's timeout is set to what remains of the :class:`~.deadline.Deadline`
before every ``recv`` and ``send`` (plain and TLS sockets alike), the TCP connect and
the whole TLS handshake get what remains when they start, and the proxy's
``CONNECT`` reply is read through the same sockets. :class:`_Response` skips every
interim ``1xx`` reply. :class:`Pool` holds idle connections to one origin.
"""

from __future__ import annotations

import http.client
import socket
import threading

from secretsboot.errors import BadInputError
from secretsboot.transport.deadline import Deadline

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ssl
    from typing import Any

_MAXLINE = 65536
_MAX_INTERIM = 20


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


def _open_socket(host: str, port: int, deadline: Deadline) -> _DeadlineSocket:
    """``socket.create_connection`` bounded by the deadline, as a :class:`_DeadlineSocket`.
    The host goes to ``getaddrinfo`` as bytes when ASCII: text loads the IDNA codec."""
    name: str | bytes = host.encode("ascii") if host.isascii() else host
    error: OSError | None = None
    for family, kind, proto, _, address in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
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


# ---- http.client, adapted --------------------------------------------------------------


class _Response(http.client.HTTPResponse):
    def _read_status(self) -> tuple[str, int, str]:
        """Skip interim replies (102, 103...): http.client itself skips only ``100``."""
        for _ in range(_MAX_INTERIM):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            for _ in range(200):  # the interim reply's headers
                line = self.fp.readline(_MAXLINE + 1)
                if line in (b"\r\n", b"\n", b""):
                    break
            else:
                raise http.client.HTTPException("too many headers in an interim reply")
        raise http.client.HTTPException("too many interim replies")


class Connection(http.client.HTTPConnection):
    """One keep-alive connection to an origin, directly or through a proxy."""

    response_class = _Response

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
        super().__init__(host, port)
        self._tls = tls
        self._server_hostname = server_hostname
        self._session = session
        self.session: ssl.SSLSession | None = None
        self._asked = False
        self.deadline = deadline
        self._create_connection = self._open

    def _open(self, address: tuple[str, int], *args: Any) -> socket.socket:
        return _open_socket(address[0], address[1], self.deadline)

    def arm(self, deadline: Deadline) -> None:
        self.deadline = deadline
        if self.sock is not None:
            self.sock.deadline = deadline  # type: ignore[union-attr]

    def connect(self) -> None:
        super().connect()  # TCP, then the proxy's CONNECT when tunnelling
        if self._tls is not None:
            self.sock.settimeout(self.deadline.left())  # the whole handshake
            name = self._server_hostname  # as bytes when ASCII: text loads the IDNA codec
            tls = self._tls.wrap_socket(
                self.sock,
                server_hostname=name.encode("ascii") if name.isascii() else name,
                session=self._session,
            )
            tls.deadline = self.deadline  # type: ignore[attr-defined]
            self.sock = tls

    def getresponse(self) -> http.client.HTTPResponse:
        sock = self.sock  # http.client forgets it when the reply closes the connection
        resp = super().getresponse()
        if not self._asked:  # once per connection: each ask costs a quarter millisecond
            self._asked = True
            # TLS 1.3 sends the session ticket after the handshake: read with the reply
            self.session = getattr(sock, "session", None)
        return resp

    def tls_session(self) -> ssl.SSLSession | None:
        """The TLS session the next connection to this origin can resume."""
        return self.session


class BodyTooLarge(Exception):
    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


def read_body(resp: http.client.HTTPResponse, limit: int) -> bytes:
    """The whole body, at most ``limit`` bytes; a body cut short raises IncompleteRead."""
    if resp.length is not None:  # Content-Length
        if resp.length > limit:
            raise BodyTooLarge(resp.length)
        return resp.read()  # IncompleteRead when the connection closes early
    parts: list[bytes] = []
    total = 0
    while True:  # chunked (IncompleteRead when cut) or delimited by the close
        part = resp.read(min(65536, limit + 1 - total))
        if not part:
            return b"".join(parts)
        total += len(part)
        if total > limit:
            raise BodyTooLarge(None)
        parts.append(part)


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
        session = conn.tls_session()
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
