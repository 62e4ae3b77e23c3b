"""The HTTP/1.1 reader (``secretsboot/transport/_http1.py``) against malformed replies.

Each malformed reply goes through the whole client, from a server on 127.0.0.1 over
TLS, and must end as ``UnavailableError`` naming what was wrong (never a value, never
an exception of another tree); well-formed but unusual replies (no body, a body
ended by the close, trailers, leftover bytes) must read right and leave the
connection reusable only when it is.
"""

from __future__ import annotations

import socket

import pytest
from servers import TLS, ScriptServer, answer, read_request, reply

from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.transport import Deadline, HttpClient
from secretsboot.transport._http1 import encode_request, host_header


def once(raw: bytes) -> object:
    """A script: read one request, send ``raw``, close."""

    def script(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(raw)

    return script


MALFORMED = {
    "not HTTP at all": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "not an HTTP/1.x status line"),
    "HTTP/2 status line": (b"HTTP/2 200\r\n\r\n", "not an HTTP/1.x status line"),
    "two-digit status": (b"HTTP/1.1 20 OK\r\n\r\n", "not an HTTP/1.x status line"),
    "folded header": (
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n  continued\r\nContent-Length: 0\r\n\r\n",
        "folded header line",
    ),
    "space before colon": (
        b"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",
        "malformed header line",
    ),
    "header without colon": (b"HTTP/1.1 200 OK\r\nnonsense\r\n\r\n", "malformed header line"),
    "too many headers": (
        b"HTTP/1.1 200 OK\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n",
        "more than 100 header lines",
    ),
    "line too long": (b"HTTP/1.1 200 OK\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", "longer than"),
    "negative length": (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content"),
    "hex length": (b"HTTP/1.1 200 OK\r\nContent-Length: 0x2\r\n\r\n{}", "invalid Content"),
    "two different lengths": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "invalid Content-Length",
    ),
    "chunked and a length (smuggling sign)": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
        "both Transfer-Encoding and Content-Length",
    ),
    "a coding never asked for": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "other than chunked",
    ),
    "bad chunk size": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
        "invalid chunk size",
    ),
    "chunk size with an underscore (int() would take it)": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1_0\r\n",
        "invalid chunk size",
    ),
    "chunk without its CRLF": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n",
        "not followed by CRLF",
    ),
    "cut inside the headers": (b"HTTP/1.1 200 OK\r\nContent-Len", "cut short"),
    "cut inside the status line": (b"HTTP/1.1 20", "cut short"),
    "cut before the trailers end": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n",
        "cut short after 2 bytes",
    ),
    "endless interim replies": (b"HTTP/1.1 103 Early Hints\r\n\r\n" * 25, "interim"),
    "chunked body over the limit": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e9\r\n",
        "too large",
    ),
    "close-delimited body over the limit": (b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 2000, "too large"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_reply_is_unavailable_naming_why(
    case: str, tls: TLS, client_for: object
) -> None:
    raw, why = MALFORMED[case]
    with ScriptServer(once(raw), tls) as server:  # type: ignore[arg-type]
        client = client_for(server, max_body=1000)  # type: ignore[operator]
        with pytest.raises(UnavailableError, match=why) as info:
            client.request("GET", "/", deadline=Deadline.after(5))
    assert "test server at https://127.0.0.1:" in str(info.value)
    assert sum(len(p.idle) for p in client._pools.values()) == 0


def test_replies_without_a_body_keep_the_connection(tls: TLS, client_for: object) -> None:
    no_body = [
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",  # the length of a GET's
        b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n",  # a reply to HEAD
    ]

    def script(sock: socket.socket, server: ScriptServer) -> None:
        for raw in no_body:
            read_request(sock, server)
            sock.sendall(raw)

    with ScriptServer(script, tls) as server:
        client = client_for(server, max_body=1000)  # type: ignore[operator]
        assert client.request("GET", "/", deadline=Deadline.after(5)).status == 204
        assert client.request("GET", "/", deadline=Deadline.after(5)).status == 304
        head = client.request("HEAD", "/", deadline=Deadline.after(5))
        assert (head.status, head.body) == (200, b"")
    assert server.connections == 1


def test_a_body_ended_by_the_close_is_read_and_the_connection_not_kept(
    tls: TLS, client_for: object
) -> None:
    with ScriptServer(once(b'HTTP/1.1 200 OK\r\n\r\n{"a": 1}'), tls) as server:  # type: ignore[arg-type]
        client = client_for(server, max_body=1000)  # type: ignore[operator]
        assert client.request("GET", "/", deadline=Deadline.after(5)).json() == {"a": 1}
        assert sum(len(p.idle) for p in client._pools.values()) == 0


def test_trailers_interim_headers_and_http10(tls: TLS, client_for: object) -> None:
    raws = [
        b"HTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n"
        b"2;ext=1\r\n{}\r\n0\r\nX-Checksum: abc\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n[]",
    ]
    with ScriptServer(answer(*raws), tls) as server:
        client = client_for(server, max_body=1000)  # type: ignore[operator]
        assert client.request("GET", "/", deadline=Deadline.after(5)).json() == {}
        assert client.request("GET", "/", deadline=Deadline.after(5)).json() == []
        assert sum(len(p.idle) for p in client._pools.values()) == 0, "HTTP/1.0: closed"
    assert server.connections == 1


def test_bytes_after_the_reply_make_the_connection_unusable(tls: TLS, client_for: object) -> None:
    """A server that sends more than one reply's worth: the extra bytes must never be
    read as the next request's reply."""
    extra = reply(200, b'{"n": 1}') + reply(200, b'{"n": "forged"}')
    with ScriptServer(answer(extra, reply(200, b'{"n": 2}')), tls) as server:
        client = client_for(server, max_body=1000)  # type: ignore[operator]
        assert client.request("GET", "/", deadline=Deadline.after(5)).json() == {"n": 1}
        assert client.request("GET", "/", deadline=Deadline.after(5)).json() == {"n": 1}
    assert server.connections == 2


def test_requests_that_would_break_the_framing_are_refused() -> None:
    assert encode_request("GET", "/a?b=c", "h:1", {"X-A": "v"}, None).startswith(
        b"GET /a?b=c HTTP/1.1\r\nHost: h:1\r\n"
    )
    assert b"Content-Length: 0\r\n" in encode_request("POST", "/", "h", {}, None)
    assert b"Content-Length" not in encode_request("GET", "/", "h", {}, None)
    for method, target, headers in [
        ("GET", "/a b", {}),
        ("GET", "/a\r\nX-Injected: 1", {}),
        ("GE T", "/", {}),
        ("GET", "/", {"X-A": "v\r\nX-Injected: 1"}),
        ("GET", "/", {"Bad Name": "v"}),
    ]:
        with pytest.raises(ValueError):
            encode_request(method, target, "h", headers, None)
    with pytest.raises(BadInputError, match="line break"):
        HttpClient("https://127.0.0.1:1").request(
            "GET", "/", headers={"X-A": "a\nb"}, deadline=Deadline.after(1)
        )


def test_host_header_forms() -> None:
    assert host_header("vault.example", 443, 443) == "vault.example"
    assert host_header("vault.example", 8200, 443) == "vault.example:8200"
    assert host_header("::1", 8443, 443) == "[::1]:8443"


# ---- name resolution, bounded by the deadline --------------------------------------------


def test_a_dns_server_that_never_answers_cannot_outlast_the_deadline() -> None:
    """The C resolver cannot be interrupted: an unanswering DNS server would hold it for
    tens of seconds (resolv.conf's tries times a pod's search domains)."""
    import socket
    import threading
    import time

    from secretsboot.transport._conn import look_up

    release = threading.Event()
    calls: list[int] = []

    def unanswered(host: object, port: int, *args: int) -> list[object]:
        calls.append(args[-1] if len(args) > 2 else 0)
        if len(args) > 2 and args[-1] & socket.AI_NUMERICHOST:
            raise socket.gaierror(socket.EAI_NONAME, "not an address")
        release.wait(30)
        return []

    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError, match=r"resolving vault\.example timed out"):
            look_up("vault.example", 443, Deadline.after(0.3), getaddrinfo=unanswered)
    finally:
        release.set()
    assert 0.25 < time.monotonic() - started < 2.0
    assert len(calls) == 2, "the address parse first, then the lookup"


def test_an_ip_address_is_not_looked_up() -> None:
    from secretsboot.transport._conn import look_up

    def no_lookup(host: object, port: int, *args: int) -> list[object]:
        import socket

        assert args[-1] & socket.AI_NUMERICHOST, "a DNS lookup for an address"
        return socket.getaddrinfo(host, port, *args)  # type: ignore[arg-type]

    assert look_up("127.0.0.1", 8200, Deadline.after(1), getaddrinfo=no_lookup)[0][4] == (
        "127.0.0.1",
        8200,
    )


def test_a_host_name_is_resolved_and_reached(tls: TLS) -> None:
    with ScriptServer(answer(reply(200, b'{"via": "name"}')), tls) as server:
        client = HttpClient(f"https://localhost:{server.port}", ca_file=tls.ca_file)
        try:
            assert client.request("GET", "/", deadline=Deadline.after(5)).json() == {"via": "name"}
        finally:
            client.close()
