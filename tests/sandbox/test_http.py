"""The fake-app HTTPS server: keep-alive, HEAD, JSON bodies, faults, stop/resume."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsboot.sandbox._http import FakeApp, FakeServer, Faults, Headers, Request, Response
from secretsboot.sandbox.pki import CertificateAuthority


class Echo(FakeApp):
    name = "echo"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Request] = []

    def handle(self, req: Request) -> Response:
        self.seen.append(req)
        if req.path == "/text":
            return Response(200, "hello")
        if req.path == "/form":
            return Response(200, req.form())
        return Response(
            201 if req.method == "POST" else 200,
            {"method": req.method, "path": req.path, "query": req.query, "json": req.json()},
            {"X-Fake": "1"},
        )


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> CertificateAuthority:
    return CertificateAuthority.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def served(ca: CertificateAuthority) -> Iterator[tuple[Echo, FakeServer]]:
    app = Echo()
    with FakeServer(app, ssl_context=ca.issue_server_cert().ssl_context()) as server:
        yield app, server


def _conn(server: FakeServer, ca: CertificateAuthority) -> http.client.HTTPSConnection:
    return http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=ca.client_ssl_context(), timeout=5
    )


def test_json_roundtrip_keepalive_and_call_log(
    served: tuple[Echo, FakeServer], ca: CertificateAuthority
) -> None:
    app, server = served
    assert server.url == f"https://127.0.0.1:{server.port}"
    conn = _conn(server, ca)
    try:
        conn.request(
            "POST",
            "/a%20b?x=1&x=2&y=",
            body=json.dumps({"k": "v"}),
            headers={"Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 201
        assert resp.getheader("content-type").startswith("application/json")
        assert resp.getheader("x-fake") == "1"
        assert data == {
            "method": "POST",
            "path": "/a b",
            "query": {"x": ["1", "2"], "y": [""]},
            "json": {"k": "v"},
        }
        sock_before = conn.sock
        conn.request("GET", "/text")  # same connection: HTTP/1.1 keep-alive
        resp = conn.getresponse()
        assert resp.read() == b"hello"
        assert conn.sock is sock_before
        conn.request("HEAD", "/text")
        resp = conn.getresponse()
        assert resp.getheader("content-length") == "5"
        assert resp.read() == b""
    finally:
        conn.close()
    assert [(c.method, c.path, c.status) for c in app.calls] == [
        ("POST", "/a b", 201),
        ("GET", "/text", 200),
        ("HEAD", "/text", 200),
    ]
    assert app.seen[0].client == "127.0.0.1"
    assert app.seen[0].headers["CONTENT-TYPE"] == "application/json"


def test_form_and_bearer() -> None:
    req = Request(
        "POST",
        "/t",
        body=b"grant_type=client_credentials&scope=a+b",
        headers=Headers({"Authorization": "Bearer abc"}),
    )
    assert req.form() == {"grant_type": "client_credentials", "scope": "a b"}
    assert req.bearer_token == "abc"
    assert "abc" not in repr(req.headers)


def test_fail_next_then_recovers(served: tuple[Echo, FakeServer], ca: CertificateAuthority) -> None:
    app, server = served
    app.faults.fail_next(2, status=503)
    conn = _conn(server, ca)
    try:
        statuses = []
        for _ in range(3):
            conn.request("GET", "/x")
            resp = conn.getresponse()
            resp.read()
            statuses.append(resp.status)
    finally:
        conn.close()
    assert statuses == [503, 503, 200]
    assert len(app.seen) == 1  # faulted requests never reach handle()
    assert [c.status for c in app.calls] == [503, 503, 200]


def test_throttle_window_logic(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sliding one-second window, on a controlled clock."""
    from secretsboot.sandbox import _http

    now = [100.0]
    monkeypatch.setattr(_http.time, "monotonic", lambda: now[0])
    faults = Faults()
    faults.throttle(3, retry_after_s=2)
    assert [faults.check() for _ in range(4)] == [None, None, None, (429, 2)]
    now[0] += 0.5
    assert faults.check() == (429, 2)  # the first three are still inside the window
    now[0] += 0.6
    assert faults.check() is None  # they have slid out
    faults.clear()
    assert all(faults.check() is None for _ in range(10))


def test_throttle_over_http(served: tuple[Echo, FakeServer], ca: CertificateAuthority) -> None:
    app, server = served
    app.faults.throttle(1, retry_after_s=2)
    conn = _conn(server, ca)
    try:
        seen = []
        for _ in range(5):  # robust to a slow machine: stop at the first 429
            conn.request("GET", "/x")
            resp = conn.getresponse()
            body = resp.read()
            seen.append(resp.status)
            if resp.status == 429:
                break
        assert seen[0] == 200
        assert seen[-1] == 429
        assert resp.getheader("retry-after") == "2"
        assert json.loads(body)["error"]["code"] == "TooManyRequests"
        assert app.calls[-1].status == 429
    finally:
        app.faults.clear()
        conn.close()


def test_latency(served: tuple[Echo, FakeServer], ca: CertificateAuthority) -> None:
    app, server = served
    app.faults.latency(0.2)
    conn = _conn(server, ca)
    try:
        t0 = time.monotonic()
        conn.request("GET", "/x")
        conn.getresponse().read()
        assert time.monotonic() - t0 >= 0.2
    finally:
        conn.close()


def test_stop_accepting_refuses_then_resume_keeps_state(
    served: tuple[Echo, FakeServer], ca: CertificateAuthority
) -> None:
    app, server = served
    port = server.port
    conn = _conn(server, ca)
    conn.request("GET", "/before")
    conn.getresponse().read()
    conn.close()
    app.faults.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    app.faults.start()
    assert server.port == port
    conn = _conn(server, ca)
    try:
        conn.request("GET", "/after")
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    assert [c.path for c in app.calls] == ["/before", "/after"]


def test_stop_closes_idle_keepalive_connections(ca: CertificateAuthority) -> None:
    app = Echo()
    server = FakeServer(app, ssl_context=ca.issue_server_cert().ssl_context()).start()
    conn = _conn(server, ca)
    conn.request("GET", "/x")
    conn.getresponse().read()
    t0 = time.monotonic()
    server.stop()  # an idle keep-alive client must not block stop()
    assert time.monotonic() - t0 < 4  # not the 5 s join timeout nor the 60 s idle timeout
    conn.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("echo-")]


def test_plain_tcp_garbage_does_not_kill_server(
    served: tuple[Echo, FakeServer], ca: CertificateAuthority
) -> None:
    _, server = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=2) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n")  # not TLS
        with contextlib.suppress(OSError):  # reset or EOF: either way, not served
            assert raw.recv(100) == b""
    conn = _conn(server, ca)
    try:
        conn.request("GET", "/ok")
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def test_untrusted_client_fails_handshake(served: tuple[Echo, FakeServer]) -> None:
    _, server = served
    conn = http.client.HTTPSConnection(
        "127.0.0.1", server.port, context=ssl.create_default_context(), timeout=5
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        conn.request("GET", "/")
    conn.close()


def test_pki_cert_has_loopback_sans(ca: CertificateAuthority, tmp_path: Path) -> None:
    from cryptography import x509

    cert = ca.issue_server_cert()
    parsed = x509.load_pem_x509_certificate(cert.cert_path.read_bytes())
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert (cert.key_path.stat().st_mode & 0o777) == 0o600
    assert ca.ca_path.read_text().startswith("-----BEGIN CERTIFICATE-----")
