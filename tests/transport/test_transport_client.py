"""The one HTTP client against well-behaved and misbehaving servers on 127.0.0.1.

Each failure issue 11 found in the old raw-socket client has its own test here:
drip, silent TLS handshake, truncated chunked and Content-Length bodies, 1xx, 307
to a standby, a huge body, bad JSON. Proxies: test_proxy.py; the CLI's deadline:
test_fetch_deadline.py.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from servers import TLS, ScriptServer, answer, drip, read_request, reply, silent

from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.transport import Deadline, HttpClient, form, quote, split_url


def soon(seconds: float = 5.0) -> Deadline:
    return Deadline.after(seconds)


# ---- the basics -------------------------------------------------------------------------


def test_tls_keep_alive_one_connection_reused(tls: TLS, client_for: object) -> None:
    with ScriptServer(answer(reply(200, b'{"ok": true}')), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        for _ in range(3):
            resp = client.request("POST", "/x?i=1", body=b"hello", deadline=soon())
            assert resp.status == 200 and resp.json() == {"ok": True}
    assert server.connections == 1
    assert server.requests[0].startswith(b"POST /x?i=1 HTTP/1.1\r\n")
    assert server.requests[0].endswith(b"hello")
    assert b"Host: 127.0.0.1:" in server.requests[0]


def test_a_new_connection_resumes_the_tls_session(tls: TLS, client_for: object) -> None:
    """The second connection to an origin skips the certificate check and the key
    exchange signature (cheaper for both sides at pod start); a reply that closes the
    connection still leaves its session to resume."""
    closing = reply(200, b"{}", {"Connection": "close"})
    with ScriptServer(answer(closing), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        for _ in range(3):
            assert client.request("GET", "/", deadline=soon()).status == 200
    assert server.connections == 3
    assert server.resumed == [False, True, True]


def test_a_session_is_not_offered_to_another_origin(tls: TLS, client_for: object) -> None:
    with ScriptServer(answer(reply(200)), tls) as two:
        moved = reply(307, b"", {"Location": two.url + "/there"})
        with ScriptServer(answer(moved), tls) as one:
            client = client_for(one)  # type: ignore[operator]
            assert client.request("GET", "/", deadline=soon()).status == 200
    assert one.resumed == [False] and two.resumed == [False]


def test_untrusted_certificate_is_unavailable_with_a_clear_reason(tls: TLS, tmp_path: Path) -> None:
    other = TLS(tmp_path)
    with ScriptServer(answer(reply(200)), tls) as server:
        client = HttpClient(server.url, ca_file=other.ca_file, what="Vault")
        with pytest.raises(UnavailableError, match="wrong CA bundle"):
            client.request("GET", "/", deadline=soon())


def test_a_certificate_for_another_host_is_named_as_such(tls: TLS) -> None:
    import ssl

    elsewhere = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.ca.issue_cert("vault.example.test").configure_cert(elsewhere)
    other = TLS.__new__(TLS)
    other.server, other.ca_file = elsewhere, tls.ca_file
    with ScriptServer(answer(reply(200)), other) as server:
        client = HttpClient(server.url, ca_file=tls.ca_file)
        with pytest.raises(UnavailableError, match="for another host name"):
            client.request("GET", "/", deadline=soon())


def test_connection_refused_is_unavailable(tls: TLS) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = HttpClient(f"https://127.0.0.1:{port}", ca_file=tls.ca_file, what="Vault")
    refused = r"Vault at https://127\.0\.0\.1:\d+ unreachable \(connection refused\)"
    with pytest.raises(UnavailableError, match=refused):
        client.request("GET", "/", deadline=soon())


def test_a_stale_pooled_connection_is_replaced_transparently(tls: TLS, client_for: object) -> None:
    def once_then_close(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(reply(200, b"{}"))  # keep-alive promised, then the server hangs up

    with ScriptServer(once_then_close, tls) as server:
        client = client_for(server)  # type: ignore[operator]
        assert client.request("GET", "/a", deadline=soon()).status == 200
        time.sleep(0.2)
        assert client.request("GET", "/b", deadline=soon()).status == 200
    assert server.connections == 2


def test_chunked_body_is_joined(tls: TLS, client_for: object) -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"
    )
    with ScriptServer(answer(chunked), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        assert client.request("GET", "/", deadline=soon()).body == b"wikipedia"
        assert client.request("GET", "/", deadline=soon()).body == b"wikipedia"
    assert server.connections == 1


def test_http_is_refused_unless_the_development_setting_is_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(BadInputError, match="TLS only") as info:
        HttpClient("http://127.0.0.1:8200", what="Vault", env={})
    assert "SECRETSBOOT_INSECURE_ALLOW_HTTP=1" in str(info.value)
    HttpClient("http://127.0.0.1:8201", what="Vault", env={"SECRETSBOOT_INSECURE_ALLOW_HTTP": "1"})
    assert "WARNING" in capsys.readouterr().err
    HttpClient("http://127.0.0.1:8202", what="IMDS", env={}, cleartext_ok=True)  # by design
    with pytest.raises(BadInputError) as info:
        HttpClient("http://user:CANARY-pw@127.0.0.1:8203/v", what="Vault", env={})
    assert "CANARY" not in str(info.value)
    assert "http://127.0.0.1:8203/v" in str(info.value)


def test_helpers() -> None:
    assert split_url("http://h:81/p/?q=1") == ("http", "h", 81, "/p")
    assert split_url("https://[::1]/") == ("https", "::1", 443, "")
    with pytest.raises(ValueError):
        split_url("ftp://x")
    with pytest.raises(BadInputError, match="not an http"):
        HttpClient("vault.local:8200")
    assert quote("sys:serviceaccount/x y") == "sys%3Aserviceaccount%2Fx%20y"
    assert form({"a": "1 2", "b": "é"}) == b"a=1%202&b=%C3%A9"


# ---- misbehaving servers ----------------------------------------------------------------


def test_drip_one_header_byte_a_second_is_cut_at_the_deadline(tls: TLS, client_for: object) -> None:
    with ScriptServer(drip(reply(200, b"{}" * 50)), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="timed out: the deadline passed"):
            client.request("GET", "/", deadline=soon(2.5))
        elapsed = time.monotonic() - started
    assert 2.3 < elapsed < 3.3, elapsed  # each byte came within a second: no read timeout


def test_silent_tls_handshake_is_cut_at_the_deadline(tls: TLS, client_for: object) -> None:
    with ScriptServer(silent, tls, handshake=False) as server:
        client = client_for(server)  # type: ignore[operator]
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="timed out"):
            client.request("GET", "/", deadline=soon(1.5))
        elapsed = time.monotonic() - started
    assert 1.3 < elapsed < 2.3, elapsed


def test_pool_wait_is_bounded_by_the_deadline(tls: TLS, client_for: object) -> None:
    import threading

    with ScriptServer(silent, tls) as server:
        client = client_for(server)  # type: ignore[operator]

        def hold() -> None:
            with pytest.raises(UnavailableError):
                client.request("GET", "/", deadline=soon(3))

        # six slots, all held by requests to a server that never answers
        for _ in range(6):
            threading.Thread(target=hold, daemon=True).start()
        time.sleep(0.3)
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="before a connection was free"):
            client.request("GET", "/", deadline=soon(1))
        assert time.monotonic() - started < 1.6


def test_truncated_chunked_body_is_unavailable_and_the_connection_not_pooled(
    tls: TLS, client_for: object
) -> None:
    cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5\r\npe"

    def script(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(cut)  # then the connection closes before the last chunk

    with ScriptServer(script, tls) as server:
        client = client_for(server)  # type: ignore[operator]
        for _ in range(2):
            with pytest.raises(UnavailableError, match="cut short"):
                client.request("GET", "/", deadline=soon())
        assert sum(len(p.idle) for p in client._pools.values()) == 0
    assert server.connections == 2, "the dead connection was never reused"


def test_truncated_content_length_body_is_unavailable(tls: TLS, client_for: object) -> None:
    def script(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"value": ')

    with ScriptServer(script, tls) as server:
        client = client_for(server)  # type: ignore[operator]
        with pytest.raises(UnavailableError, match="cut short after 10 bytes"):
            client.request("GET", "/", deadline=soon())


def test_interim_1xx_replies_are_skipped(tls: TLS, client_for: object) -> None:
    interim = (
        b"HTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        + reply(200, b'{"value": "x"}')
    )
    with ScriptServer(answer(interim), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        resp = client.request("GET", "/", deadline=soon())
        assert (resp.status, resp.json()) == (200, {"value": "x"})
        assert client.request("GET", "/", deadline=soon()).status == 200  # stream in step
    assert server.connections == 1


def test_307_from_a_standby_is_followed_to_the_active_node(tls: TLS, client_for: object) -> None:
    with ScriptServer(answer(reply(200, b'{"data": 1}')), tls) as active:
        moved = reply(307, b"", {"Location": f"{active.url}/v1/secret/data/x?version=2"})
        with ScriptServer(answer(moved), tls) as standby:
            client = client_for(standby)  # type: ignore[operator]
            resp = client.request(
                "GET",
                "/v1/secret/data/x",
                headers={"X-Vault-Token": "hvs.t", "Authorization": "Bearer b"},
                deadline=soon(),
            )
            assert (resp.status, resp.json()) == (200, {"data": 1})
            # a POST is not idempotent: the 307 comes back to the caller
            assert client.request("POST", "/v1/auth/x/login", deadline=soon()).status == 307
    followed = active.requests[0]
    assert followed.startswith(b"GET /v1/secret/data/x?version=2 HTTP/1.1")
    assert b"X-Vault-Token: hvs.t" in followed
    assert b"Authorization" not in followed, "no bearer token to another host"


def test_307_to_cleartext_is_not_followed(tls: TLS, client_for: object) -> None:
    moved = reply(307, b"", {"Location": "http://127.0.0.1:9/v1/x"})
    with ScriptServer(answer(moved), tls) as standby:
        client = client_for(standby)  # type: ignore[operator]
        with pytest.raises(BadInputError, match="followed to https:// only"):
            client.request("GET", "/v1/x", deadline=soon())


def test_a_huge_content_length_fails_cleanly_before_reading(tls: TLS, client_for: object) -> None:
    huge = b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n{"
    with ScriptServer(answer(huge), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="too large to read \\(99999999999 bytes"):
            client.request("GET", "/", deadline=soon())
        assert time.monotonic() - started < 2  # the 100 GB were never awaited


def test_an_endless_chunked_body_stops_at_the_cap(tls: TLS, client_for: object) -> None:
    def endless(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"4000\r\n" + b"x" * 0x4000 + b"\r\n"
        for _ in range(1000):  # 16 MiB at most, then the server stops
            sock.sendall(chunk)

    with ScriptServer(endless, tls) as server:
        client = client_for(server, max_body=1024 * 1024)  # type: ignore[operator]
        with pytest.raises(UnavailableError, match="too large"):
            client.request("GET", "/", deadline=soon())


def test_bad_json_is_unavailable_never_not_found(tls: TLS, client_for: object) -> None:
    page = reply(200, b"<html>proxy error</html>", {"Content-Type": "text/html"})
    with ScriptServer(answer(page), tls) as server:
        client = client_for(server)  # type: ignore[operator]
        resp = client.request("GET", "/", deadline=soon())
        with pytest.raises(UnavailableError, match="not JSON"):
            resp.json()
        assert resp.json_or_none() is None
