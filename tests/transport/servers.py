"""Misbehaving servers on 127.0.0.1 for the transport tests.

:class:`ScriptServer` accepts connections and hands each to a *script* (a function
of the socket) in its own thread; :func:`read_request` reads one request off a
socket. The scripts are the misbehaviours: drip a reply, never answer the TLS
handshake, cut a chunked body, send 1xx first, redirect, send a huge length...
Everything stops with the server (bounded loops, closed sockets).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme

Script = Callable[[socket.socket, "ScriptServer"], None]


class TLS:
    """A throw-away CA, a server context for 127.0.0.1 and the CA file clients trust."""

    def __init__(self, folder: Path) -> None:
        self.ca = trustme.CA()
        self.ca_file = str(folder / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.server)


class ScriptServer:
    """Runs ``script(sock, server)`` for each connection; ``tls``: wrap before the script
    (``handshake=False`` leaves the TLS handshake to the script, e.g. never)."""

    def __init__(self, script: Script, tls: TLS | None = None, *, handshake: bool = True) -> None:
        self.script = script
        self.tls = tls
        self.handshake = handshake
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.listener.settimeout(0.1)  # accept() wakes to see the server stopping
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self.connections = 0
        #: per TLS connection, in order: whether the client resumed an earlier session
        self.resumed: list[bool] = []
        self.stopping = threading.Event()
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def __enter__(self) -> ScriptServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._thread.join(5)
        self.listener.close()
        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            with contextlib.suppress(OSError):
                s.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            with self._lock:
                self.connections += 1
                self._socks.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        sock = conn
        try:
            if self.tls is not None and self.handshake:
                sock = self.tls.server.wrap_socket(conn, server_side=True)
                with self._lock:
                    self._socks.append(sock)
                    self.resumed.append(sock.session_reused)
            self.script(sock, self)
        except (OSError, ValueError):
            pass  # the client gave up: that is the point of most scripts
        finally:
            for s in (sock, conn):  # a TLS socket took over the descriptor: close it too
                with contextlib.suppress(OSError):
                    s.close()

    def record(self, request: bytes) -> None:
        with self._lock:
            self.requests.append(request)

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the server stops; False once stopping."""
        return not self.stopping.wait(seconds)


def read_request(sock: socket.socket, server: ScriptServer | None = None) -> bytes:
    """One request (head and ``Content-Length`` body); b"" when the peer closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return b""
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    request = head + b"\r\n\r\n" + body
    if server is not None:
        server.record(request)
    return request


def reply(status: int, body: bytes = b"{}", headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer(*replies: bytes) -> Script:
    """Answer each request on a connection with the next reply (the last one repeats)."""

    def script(sock: socket.socket, server: ScriptServer) -> None:
        i = 0
        while read_request(sock, server):
            sock.sendall(replies[min(i, len(replies) - 1)])
            i += 1

    return script


def drip(text: bytes, every: float = 1.0) -> Script:
    """Read the request, then send ``text`` one byte every ``every`` seconds."""

    def script(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        for byte in text:
            if not server.sleep(every):
                return
            sock.sendall(bytes([byte]))

    return script


def silent(sock: Any, server: ScriptServer) -> None:
    """Accept and say nothing (with ``handshake=False``: a TLS handshake never answered)."""
    server.sleep(30)
