"""A small threaded HTTPS server for the sandbox's fake apps.

A fake is a :class:`FakeApp`: plain-dict state, one ``handle(request) ->
Response`` method, a ``calls`` log and ``faults`` knobs. :class:`FakeServer`
serves it over a real socket on 127.0.0.1 (HTTP/1.1, keep-alive, TLS done in the
connection's own thread so one slow client never stalls the accept loop).

Example::

    class Hello(FakeApp):
        name = "hello"

        def handle(self, req: Request) -> Response:
            return Response(200, {"hello": req.query.get("who", ["world"])[0]})

    with FakeServer(Hello(), ssl_context=cert.ssl_context()) as server:
        ...  # GET f"{server.url}/?who=me" -> {"hello": "me"}

Faults are applied before ``handle`` in this order: ``latency``, ``fail_next``,
``throttle``; every request, faulted or not, is recorded in ``app.calls``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

Body = bytes | dict[str, Any] | list[Any] | str | None


class Headers(Mapping[str, str]):
    """A read-only, case-insensitive mapping of request headers (last value wins)."""

    def __init__(self, items: Mapping[str, str] | list[tuple[str, str]] | None = None) -> None:
        pairs = list(items.items()) if isinstance(items, Mapping) else list(items or [])
        self._data: dict[str, tuple[str, str]] = {k.lower(): (k, v) for k, v in pairs}

    def __getitem__(self, key: str) -> str:
        return self._data[key.lower()][1]

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._data.values())

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def __repr__(self) -> str:
        # Header values may carry bearer tokens: show names only.
        return f"Headers({sorted(self._data)})"


@dataclass
class Request:
    """One HTTP request as a fake app sees it."""

    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    headers: Headers = field(default_factory=Headers)
    body: bytes = field(default=b"", repr=False)  # may carry credentials
    client: str = "127.0.0.1"

    def json(self) -> Any:
        """The body parsed as JSON (``None`` when empty); ValueError when malformed."""
        if not self.body.strip():
            return None
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """The body parsed as ``application/x-www-form-urlencoded`` (first value per key)."""
        parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    @property
    def bearer_token(self) -> str | None:
        """The token of an ``Authorization: Bearer ...`` header, if any."""
        value = self.headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return token.strip()


@dataclass
class Response:
    """What a fake app answers. dict/list bodies are sent as JSON. With ``stream``
    the body is sent chunked, chunk by chunk as the iterable yields them (an empty
    chunk sends nothing: a long-poll's chance to notice the server closing), and the
    connection closes after it (the Kubernetes fake's watch)."""

    status: int = 200
    body: Body = None
    headers: dict[str, str] = field(default_factory=dict)
    stream: Iterable[bytes] | None = field(default=None, repr=False)

    def encode(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        lower = {k.lower() for k in headers}
        body = self.body
        if body is None:
            data = b""
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode("utf-8")
            if "content-type" not in lower:
                headers["Content-Type"] = "text/plain; charset=utf-8"
        else:
            data = json.dumps(body, separators=(",", ":")).encode("utf-8")
            if "content-type" not in lower:
                headers["Content-Type"] = "application/json; charset=utf-8"
        return data, headers


@dataclass(frozen=True)
class Call:
    """One entry of an app's request log."""

    method: str
    path: str
    status: int
    time: float


class Faults:
    """Thread-safe fault knobs of one fake app.

    ``throttle(rate_per_s)``: 429 with ``Retry-After`` once more than ``rate_per_s``
    requests arrive in a sliding one-second window. ``fail_next(n, status)``: the next
    ``n`` requests get ``status``. ``latency(seconds)``: every request waits first.
    ``stop()``/``start()``: the app's server refuses connections / accepts them again
    (only once a :class:`FakeServer` serves the app).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._retry_after = 1
        self._window: deque[float] = deque()
        self._fail_left = 0
        self._fail_status = 503
        self._latency = 0.0
        self._stop_hook: Callable[[], None] | None = None
        self._start_hook: Callable[[], None] | None = None

    def throttle(self, rate_per_s: float, retry_after_s: int = 1) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        with self._lock:
            self._rate = rate_per_s
            self._retry_after = retry_after_s
            self._window.clear()

    def fail_next(self, n: int, status: int = 503) -> None:
        with self._lock:
            self._fail_left = n
            self._fail_status = status

    def latency(self, seconds: float) -> None:
        with self._lock:
            self._latency = max(0.0, seconds)

    def clear(self) -> None:
        """Remove every fault (a stopped server is not restarted: call ``start()``)."""
        with self._lock:
            self._rate = None
            self._window.clear()
            self._fail_left = 0
            self._latency = 0.0

    def stop(self) -> None:
        """Refuse connections (the app keeps its state)."""
        if self._stop_hook is None:
            raise RuntimeError("this app is not served by a FakeServer")
        self._stop_hook()

    def start(self) -> None:
        """Accept connections again after :meth:`stop`."""
        if self._start_hook is None:
            raise RuntimeError("this app is not served by a FakeServer")
        self._start_hook()

    def _bind(self, stop: Callable[[], None], start: Callable[[], None]) -> None:
        self._stop_hook, self._start_hook = stop, start

    def check(self) -> tuple[int, int | None] | None:
        """Apply latency; return ``(status, retry_after)`` when this request is faulted."""
        with self._lock:
            delay = self._latency
        if delay:
            time.sleep(delay)
        with self._lock:
            if self._fail_left > 0:
                self._fail_left -= 1
                return self._fail_status, None
            if self._rate is not None:
                now = time.monotonic()
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                if len(self._window) >= max(1, int(self._rate)):
                    return 429, self._retry_after
                self._window.append(now)
        return None


class FakeApp:
    """Base of every fake: override :meth:`handle` (and :meth:`fault_response` for the
    service's own error shape). ``base_url`` is set by the server that serves it."""

    name: str = "fake"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.faults = Faults()
        self.base_url = ""
        self._calls_lock = threading.Lock()

    def handle(self, req: Request) -> Response:
        raise NotImplementedError

    def fault_response(self, status: int, retry_after: int | None) -> Response:
        """The response of an injected fault, in a generic JSON error shape."""
        phrase = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        code = "TooManyRequests" if status == 429 else phrase.replace(" ", "") or "Error"
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        message = f"{self.name}: injected fault ({status} {phrase})".strip()
        return Response(status, {"error": {"code": code, "message": message}}, headers)

    def record(self, method: str, path: str, status: int) -> None:
        with self._calls_lock:
            self.calls.append(Call(method, path, status, time.time()))

    def dispatch(self, req: Request) -> Response:
        """Faults, then :meth:`handle`; an exception becomes a 500 (and is logged)."""
        fault = self.faults.check()
        if fault is not None:
            resp = self.fault_response(*fault)
        else:
            try:
                resp = self.handle(req)
            except Exception:
                log.exception("%s: %s %s failed", self.name, req.method, req.path)
                resp = Response(500, {"error": {"code": "InternalError", "message": "fake bug"}})
        self.record(req.method, req.path, resp.status)
        return resp


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # an idle keep-alive connection is dropped after a minute

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s: " + format, self.server.app.name, *args)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        req = Request(
            method=self.command,
            path=unquote(parts.path) or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers=Headers(list(self.headers.items())),
            body=self._read_body(),
            client=self.client_address[0],
        )
        resp = self.server.app.dispatch(req)
        if resp.stream is not None:
            self._send_stream(resp, resp.stream)
            return
        data, headers = resp.encode()
        self.send_response(resp.status)
        for name, value in headers.items():
            if name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    def _send_stream(self, resp: Response, stream: Iterable[bytes]) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        chunks = iter(stream)
        try:
            for chunk in chunks:
                if self.server.closing.is_set() or (not chunk and self._peer_gone()):
                    return
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    def _peer_gone(self) -> bool:
        """While streaming, the client sends nothing: a readable socket means it closed."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
        except (OSError, ValueError):
            return True
        return bool(readable)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve
    do_LIST = _serve  # Vault's LIST verb (hvac's list()), relayed by the OpenBao front


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], app: FakeApp, ssl_context: ssl.SSLContext | None
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.connections: set[socket.socket] = set()
        self.threads: set[threading.Thread] = set()
        self.conn_lock = threading.Lock()
        self.closing = threading.Event()  # streams end when it is set
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            daemon=True,
            name=f"{self.app.name}-conn",
        )
        with self.conn_lock:
            self.threads.add(thread)
        thread.start()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.conn_lock:
                self.threads.discard(threading.current_thread())

    def finish_request(self, request: Any, client_address: Any) -> None:
        sock: socket.socket = request
        sock.settimeout(_Handler.timeout)
        # Headers and body go out as separate writes: without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every response.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError) as exc:
                log.debug("%s: TLS handshake failed: %s", self.app.name, exc)
                request.close()
                return
        with self.conn_lock:
            self.connections.add(sock)
        try:
            _Handler(sock, client_address, self)
        except (OSError, ssl.SSLError) as exc:
            log.debug("%s: connection ended: %s", self.app.name, exc)
        finally:
            with self.conn_lock:
                self.connections.discard(sock)
            with contextlib.suppress(OSError):
                sock.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("%s: error serving %s", self.app.name, client_address, exc_info=True)

    def close_all(self, timeout: float = 5.0) -> None:
        """Close the listener and every open connection; join the connection threads."""
        self.closing.set()
        self.server_close()
        with self.conn_lock:
            conns, threads = list(self.connections), list(self.threads)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        current = threading.current_thread()
        for thread in threads:
            if thread is not current:  # an app may stop its own server from a handler
                thread.join(max(0.0, deadline - time.monotonic()))


class FakeServer:
    """Serve one :class:`FakeApp` on ``host:port`` (port 0: a free one).

    ``stop_accepting()`` closes the listener (clients get "connection refused") and
    ``resume()`` listens again on the same port; the app keeps its state.
    """

    def __init__(
        self,
        app: FakeApp,
        *,
        ssl_context: ssl.SSLContext | None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        app.faults._bind(self.stop_accepting, self.resume)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> FakeServer:
        """Listen and serve in a daemon thread; returns once the socket is listening."""
        with self._lock:
            if self._server is not None:
                return self
            server = _Server((self.host, self.port), self.app, self.ssl_context)
            self.port = server.server_address[1]
            self.app.base_url = self.url
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                daemon=True,
                name=f"{self.app.name}-server",
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stop serving, close every socket and join the threads (idempotent)."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        if thread is not None:
            thread.join(5)
        server.close_all()

    def stop_accepting(self) -> None:
        """Simulate the component being down: connections are refused until resume()."""
        self.stop()

    def resume(self) -> None:
        """Listen again on the same port after :meth:`stop_accepting`."""
        self.start()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"FakeServer({self.app.name!r}, {self.url!r}, running={self.running})"
