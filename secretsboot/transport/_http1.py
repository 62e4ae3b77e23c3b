"""HTTP/1.1 on one socket (RFC 9112): a request written, its reply read strictly.

Why not :mod:`http.client`: it imports the :mod:`email` package to parse headers,
which costs a tenth of a whole ``fetch`` at pod start (measured: 13 ms of CPU of
~120 ms for ten Vault secrets, ``scripts/bench_fetch.py``), and its per-reply
``email.parser`` run costs again on every request. What it did for us is below, as
strict as the RFC asks a client to be; ``tests/transport`` runs each rule against
misbehaving servers on 127.0.0.1.

- The status line must be ``HTTP/1.0`` or ``HTTP/1.1`` with three digits; interim
  ``1xx`` replies (except ``101``) are skipped, at most :data:`MAX_INTERIM`.
- Header lines must be ``token: value``; an obsolete folded line, a space before
  the colon, more than :data:`MAX_HEADERS` lines or one over :data:`MAX_LINE`
  bytes is a :class:`ProtocolError`.
- The body's end: none for ``HEAD``, ``1xx``, ``204``, ``304``; ``chunked`` when it
  is the (only) transfer coding, trailers read; else ``Content-Length`` (all
  values equal, digits only); else the connection's close. ``Transfer-Encoding``
  together with ``Content-Length`` is refused (a smuggling sign, RFC 9112 6.1), as
  is any coding we did not ask for.
- A reply cut before its end is :class:`IncompleteReply`; a connection closed
  before the first byte of a reply is :class:`NoReply` (a stale keep-alive
  connection, which the caller may retry once); a body over the caller's limit is
  :class:`BodyTooLarge` before it is read.
- A connection is reusable only after a complete reply that did not ask to close,
  with no byte left over.

The socket bounds each wait (see ``_conn``); this module never sleeps or retries.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_LINE = 65536
MAX_HEADERS = 100
MAX_INTERIM = 20
_READ = 65536
_HEX = frozenset(b"0123456789abcdefABCDEF")
_DIGITS = frozenset(b"0123456789")
#: RFC 9110 tchar: what a header name may hold
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_BODYLESS_STATUS = frozenset({204, 304})
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})

TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    import ssl
    from typing import NamedTuple
else:
    from secretsboot._records import NamedTuple


class ProtocolError(Exception):
    """The peer's bytes are not a valid HTTP/1.1 reply; the text says how (no data)."""


class IncompleteReply(ProtocolError):
    """The connection closed before the reply's end (``got`` body bytes so far)."""

    def __init__(self, got: int) -> None:
        super().__init__(f"the reply was cut short after {got} bytes")
        self.got = got


class NoReply(ConnectionError):
    """The connection closed before the first byte of a reply."""


class BodyTooLarge(Exception):
    """The body is over the caller's limit (``size`` when the reply announced it)."""

    def __init__(self, size: int | None) -> None:
        super().__init__(size)
        self.size = size


class Reply(NamedTuple):
    """One final reply: status, lower-cased header names, body, and whether the
    connection can carry another request."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    keep: bool

    def __repr__(self) -> str:  # the body may hold a secret
        return f"Reply({self.status}, {len(self.body)} bytes)"


def host_header(host: str, port: int, default_port: int) -> str:
    """The ``Host`` value: ``[v6]`` in brackets, the port only when not the default."""
    name = f"[{host}]" if ":" in host else host
    return name if port == default_port else f"{name}:{port}"


def encode_request(
    method: str,
    target: str,
    host: str,
    headers: Mapping[str, str],
    body: bytes | None,
) -> bytes:
    """The request's bytes. ValueError for a method, target or header that would
    break the framing (a space, a control character, a line break)."""
    if not method.isalpha() or not method.isascii():
        raise ValueError("invalid method")
    if not target or any(c <= " " or c == "\x7f" for c in target) or not target.isascii():
        raise ValueError("invalid request target")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Accept-Encoding: identity"]
    for name, value in headers.items():
        if not name or not set(name.encode("latin-1", "replace")) <= _TOKEN:
            raise ValueError("invalid header name")
        if any(c in value for c in "\r\n\0"):
            raise ValueError("invalid header value")
        lines.append(f"{name}: {value}")
    if body is not None or method in _WITH_BODY:
        lines.append(f"Content-Length: {len(body or b'')}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + body if body else head


class Reader:
    """Buffered reads off one socket (whose own timeout bounds each ``recv``)."""

    __slots__ = ("buf", "eof", "sock")

    def __init__(self, sock: socket.socket | ssl.SSLSocket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def _fill(self) -> bool:
        if self.eof:
            return False
        data = self.sock.recv(_READ)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self) -> bytes | None:
        """One line with its ending; None at the end of the stream with nothing read;
        a partial last line is returned as it is (the caller sees no ``\\n``)."""
        start = 0
        while True:
            end = self.buf.find(b"\n", start)
            if end >= 0:
                if end >= MAX_LINE:
                    raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
                line = bytes(self.buf[: end + 1])
                del self.buf[: end + 1]
                return line
            if len(self.buf) > MAX_LINE:
                raise ProtocolError(f"a line longer than {MAX_LINE} bytes")
            start = len(self.buf)
            if not self._fill():
                line = bytes(self.buf)
                self.buf.clear()
                return line or None

    def exact(self, n: int, got: int = 0) -> bytes:
        """``n`` bytes; IncompleteReply (counting ``got`` before) if the stream ends."""
        while len(self.buf) < n:
            if not self._fill():
                raise IncompleteReply(got + len(self.buf))
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def rest(self, limit: int) -> bytes:
        """Everything up to the end of the stream, at most ``limit`` bytes."""
        while len(self.buf) <= limit and self._fill():
            pass
        if len(self.buf) > limit:
            raise BodyTooLarge(None)
        data = bytes(self.buf)
        self.buf.clear()
        return data


def read_reply(reader: Reader, method: str, limit: int) -> Reply:
    """The final reply to ``method``, its body at most ``limit`` bytes."""
    for i in range(MAX_INTERIM + 1):
        version, status, reason = _status_line(reader, first=i == 0)
        headers = _header_block(reader)
        if not 100 <= status < 200 or status == 101:
            break
    else:
        raise ProtocolError("too many interim replies")
    close = version == "HTTP/1.0" or _has_token(headers, "connection", "close")
    if method == "HEAD" or status < 200 or status in _BODYLESS_STATUS:
        body = b""
    else:
        body, close_delimited = _body(reader, headers, limit)
        close = close or close_delimited
    return Reply(status, reason, headers, body, keep=not close and not reader.buf)


def read_head(reader: Reader) -> tuple[int, str]:
    """Status and reason of a reply without a body (a proxy's reply to ``CONNECT``)."""
    for i in range(MAX_INTERIM + 1):
        _, status, reason = _status_line(reader, first=i == 0)
        _header_block(reader)
        if not 100 <= status < 200:
            return status, reason
    raise ProtocolError("too many interim replies")


def _status_line(reader: Reader, *, first: bool) -> tuple[str, int, str]:
    raw = reader.line()
    if raw is None:
        if first:
            raise NoReply("the server closed the connection without a reply")
        raise IncompleteReply(0)
    if not raw.endswith(b"\n"):
        raise IncompleteReply(0)
    line = raw.rstrip(b"\r\n").decode("latin-1")
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise ProtocolError("not an HTTP/1.x status line")
    return version, int(code), reason.strip()


def _header_block(reader: Reader) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    while True:
        raw = reader.line()
        if raw is None or not raw.endswith(b"\n"):
            raise IncompleteReply(0)
        if raw in (b"\r\n", b"\n"):
            return headers
        if len(headers) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} header lines")
        if raw[:1] in (b" ", b"\t"):
            raise ProtocolError("a folded header line (obsolete, refused)")
        name, colon, value = raw.rstrip(b"\r\n").partition(b":")
        if not colon or not name or not set(name) <= _TOKEN:
            raise ProtocolError("a malformed header line")
        headers.append((name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")))


def _values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v.strip().lower() for n, value in headers if n == name for v in value.split(",")]


def _has_token(headers: list[tuple[str, str]], name: str, token: str) -> bool:
    return token in _values(headers, name)


def _body(reader: Reader, headers: list[tuple[str, str]], limit: int) -> tuple[bytes, bool]:
    """(body, whether the body's end is the connection's close)."""
    codings = [c for c in _values(headers, "transfer-encoding") if c]
    lengths = {v for v in _values(headers, "content-length")}
    if codings:
        if lengths:
            raise ProtocolError("both Transfer-Encoding and Content-Length")
        if codings != ["chunked"]:
            raise ProtocolError("a transfer coding other than chunked")
        return _chunked(reader, limit), False
    if lengths:
        value = lengths.pop()
        if lengths or not value or len(value) > 18 or not set(value.encode()) <= _DIGITS:
            raise ProtocolError("an invalid Content-Length")
        size = int(value)
        if size > limit:
            raise BodyTooLarge(size)
        return reader.exact(size), False
    return reader.rest(limit), True


def _chunked(reader: Reader, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        raw = reader.line()
        if raw is None or not raw.endswith(b"\n"):
            raise IncompleteReply(total)
        size_text = raw.split(b";", 1)[0].strip(b" \t\r\n")
        if not size_text or len(size_text) > 16 or not set(size_text) <= _HEX:
            raise ProtocolError("an invalid chunk size")
        size = int(size_text, 16)
        if size == 0:
            break
        total += size
        if total > limit:
            raise BodyTooLarge(None)
        parts.append(reader.exact(size, total - size))
        if reader.exact(2, total) != b"\r\n":
            raise ProtocolError("a chunk not followed by CRLF")
    for _ in range(MAX_HEADERS + 1):  # trailer fields, then the empty line
        raw = reader.line()
        if raw is None or not raw.endswith(b"\n"):
            raise IncompleteReply(total)
        if raw in (b"\r\n", b"\n"):
            return b"".join(parts)
    raise ProtocolError(f"more than {MAX_HEADERS} trailer lines")
