"""The lean HTTP client against small real servers: keep-alive, chunked bodies,
stale pooled connections, TLS with the configured CA."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from secretsboot.backends._http import HttpClient, form, quote, split_url
from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.sandbox._http import FakeApp, FakeServer, Request, Response


class Echo(FakeApp):
    name = "echo"

    def handle(self, req: Request) -> Response:
        return Response(200, {"path": req.path, "body": req.body.decode(), "q": req.query})


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[FakeServer]:
    cert = ca.issue_cert("127.0.0.1")
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(ctx)
    with FakeServer(Echo(), ssl_context=ctx) as server:
        yield server


def test_tls_with_the_configured_ca_and_keep_alive(
    ca: trustme.CA, tls_server: FakeServer, tmp_path: Path
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = HttpClient(tls_server.url + "/base", ca_file=str(ca_file), what="echo")
    try:
        for i in range(3):
            resp = client.request("POST", f"/x?i={i}", body=b"hello", timeout=5)
            assert resp.status == 200
            assert resp.json()["path"] == "/base/x"
            assert resp.json()["body"] == "hello"
        assert len(client._idle) == 1, "one connection, reused"
    finally:
        client.close()


def test_untrusted_certificate_is_unavailable_with_a_clear_reason(
    tls_server: FakeServer, tmp_path: Path
) -> None:
    other = trustme.CA()
    ca_file = tmp_path / "other.pem"
    other.cert_pem.write_to_path(str(ca_file))
    client = HttpClient(tls_server.url, ca_file=str(ca_file), what="Vault")
    with pytest.raises(UnavailableError, match="wrong CA bundle"):
        client.request("GET", "/", timeout=5)
    client.close()


def raw_server(replies: list[bytes]) -> tuple[socket.socket, threading.Thread, list[bytes]]:
    """A one-connection-at-a-time server answering each request with the next reply;
    a reply of b"" closes the connection without answering."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    seen: list[bytes] = []

    def serve() -> None:
        queue = list(replies)
        while queue:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                while queue:
                    data = conn.recv(65536)
                    if not data:
                        break
                    seen.append(data)
                    reply = queue.pop(0)
                    if not reply:
                        break
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread, seen


def test_chunked_body_and_stale_connection_retry() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"
    )
    plain = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nRetry-After: 3\r\n\r\n{}"
    listener, thread, seen = raw_server([chunked, b"", plain])
    port = listener.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}")
    try:
        assert client.request("GET", "/a", timeout=5).body == b"wikipedia"
        # the server drops the idle connection: the client reconnects once, transparently
        resp = client.request("GET", "/b", timeout=5)
        assert (resp.status, resp.retry_after) == (404, 3.0)
    finally:
        client.close()
        listener.close()
        thread.join(5)
    assert seen[0].startswith(b"GET /a HTTP/1.1\r\n")
    assert b"Host: 127.0.0.1:" in seen[0]


def test_connection_refused_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(f"http://127.0.0.1:{port}", what="Vault")
    refused = r"Vault at http://127\.0\.0\.1:\d+ unreachable \(connection refused\)"
    with pytest.raises(UnavailableError, match=refused):
        client.request("GET", "/", timeout=2)


def test_helpers() -> None:
    assert split_url("http://h:81/p/?q=1") == ("http", "h", 81, "/p")
    assert split_url("https://[::1]/") == ("https", "::1", 443, "")
    with pytest.raises(ValueError):
        split_url("ftp://x")
    with pytest.raises(BadInputError, match="not an http"):
        HttpClient("vault.local:8200")
    assert quote("sys:serviceaccount/x y") == "sys%3Aserviceaccount%2Fx%20y"
    assert form({"a": "1 2", "b": "é"}) == b"a=1%202&b=%C3%A9"
