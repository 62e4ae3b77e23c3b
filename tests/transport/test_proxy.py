"""HTTPS_PROXY / HTTP_PROXY / NO_PROXY: a CONNECT proxy on 127.0.0.1 records what it is asked."""

from __future__ import annotations

import select
import socket

import pytest
from servers import TLS, ScriptServer, answer, read_request, reply

from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.transport import Deadline, HttpClient
from secretsboot.transport.proxy import bypassed, parse_proxy, proxy_for


def tunnel(sock: socket.socket, server: ScriptServer) -> None:
    """A CONNECT proxy: record the request, open the tunnel, pipe bytes both ways.
    A request in absolute form (a forward proxy's) gets a canned JSON reply."""
    head = read_request(sock, server)
    line = head.split(b"\r\n", 1)[0].decode()
    method, target, _ = line.split(" ", 2)
    if method != "CONNECT":
        sock.sendall(reply(200, b'{"via": "proxy"}'))
        return
    host, _, port = target.rpartition(":")
    upstream = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    with upstream:
        for _ in range(1000):  # bounded: the tests exchange a few requests
            readable, _, _ = select.select([sock, upstream], [], [], 5)
            if not readable:
                return
            for src in readable:
                data = src.recv(65536)
                if not data:
                    return
                (upstream if src is sock else sock).sendall(data)


def test_https_goes_through_a_connect_tunnel(tls: TLS) -> None:
    with (
        ScriptServer(answer(reply(200, b'{"value": "v"}')), tls) as origin,
        ScriptServer(tunnel) as proxy,
    ):
        env = {"HTTPS_PROXY": f"http://user:p%40ss@127.0.0.1:{proxy.port}", "NO_PROXY": "x.svc"}
        client = HttpClient(origin.url, ca_file=tls.ca_file, what="Key Vault kv", env=env)
        try:
            for _ in range(2):
                resp = client.request("GET", "/secrets/db", deadline=Deadline.after(5))
                assert resp.json() == {"value": "v"}
        finally:
            client.close()
    assert len(proxy.requests) == 1, "one tunnel, kept alive"
    connect = proxy.requests[0].decode()
    assert connect.startswith(f"CONNECT 127.0.0.1:{origin.port} HTTP/1.")
    assert "Proxy-Authorization: Basic dXNlcjpwQHNz" in connect  # user:p@ss
    assert origin.requests[0].startswith(b"GET /secrets/db HTTP/1.1"), "TLS end to end"


def test_no_proxy_is_honoured(tls: TLS) -> None:
    with (
        ScriptServer(answer(reply(200, b"{}")), tls) as origin,
        ScriptServer(tunnel) as proxy,
    ):
        env = {"https_proxy": f"http://127.0.0.1:{proxy.port}", "no_proxy": "localhost,127.0.0.1"}
        client = HttpClient(origin.url, ca_file=tls.ca_file, env=env)
        try:
            assert client.request("GET", "/", deadline=Deadline.after(5)).status == 200
        finally:
            client.close()
    assert proxy.requests == []
    assert len(origin.requests) == 1


def test_http_goes_to_a_forward_proxy_in_absolute_form() -> None:
    with ScriptServer(tunnel) as proxy:
        env = {"HTTP_PROXY": f"127.0.0.1:{proxy.port}"}
        # a name no resolver knows: only the loopback proxy is ever connected to
        client = HttpClient("http://metadata.invalid", what="IMDS", env=env, cleartext_ok=True)
        try:
            resp = client.request("GET", "/metadata/identity", deadline=Deadline.after(5))
        finally:
            client.close()
    assert resp.json() == {"via": "proxy"}
    assert proxy.requests[0].startswith(
        b"GET http://metadata.invalid:80/metadata/identity HTTP/1.1\r\n"
    )


def test_a_proxy_refusing_the_tunnel_is_unavailable_and_named(tls: TLS) -> None:
    def refuse(sock: socket.socket, server: ScriptServer) -> None:
        read_request(sock, server)
        sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")

    with ScriptServer(refuse) as proxy:
        env = {"HTTPS_PROXY": f"http://127.0.0.1:{proxy.port}"}
        client = HttpClient("https://kv.vault.azure.net", ca_file=tls.ca_file, env=env)
        with pytest.raises(UnavailableError, match=r"through the proxy 127\.0\.0\.1:\d+ .*407"):
            client.request("GET", "/", deadline=Deadline.after(5))


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "bypass"),
    [
        ("kv.vault.azure.net", 443, "*", True),
        ("kv.vault.azure.net", 443, "", False),
        ("kv.vault.azure.net", 443, "vault.azure.net", True),
        ("kv.vault.azure.net", 443, ".vault.azure.net", True),
        ("kv.vault.azure.net", 443, "*.vault.azure.net", True),
        ("vault.azure.net", 443, ".vault.azure.net", True),
        ("badvault.azure.net", 443, "vault.azure.net", False),
        ("KV.Vault.Azure.Net", 443, "vault.AZURE.net", True),
        ("vault.svc", 8200, "vault.svc:8200", True),
        ("vault.svc", 8201, "vault.svc:8200", False),
        ("10.0.0.1", 443, "10.0.0.0/8", True),
        ("11.0.0.1", 443, "10.0.0.0/8", False),
        ("10.0.0.1", 443, "10.0.0.1", True),
        ("10.0.0.10", 443, "10.0.0.1", False),
        ("::1", 443, "[::1]", True),
        ("::1", 443, "::1", True),
        ("169.254.169.254", 80, "localhost, 169.254.169.254 ,.svc", True),
        ("kubernetes.default.svc", 443, "localhost,.svc", True),
        ("example.com", 443, "ample.com", False),
    ],
)
def test_no_proxy_rules(host: str, port: int, no_proxy: str, bypass: bool) -> None:
    assert bypassed(host, port, no_proxy) is bypass


def test_proxy_selection_and_parsing() -> None:
    env = {"HTTPS_PROXY": "http://upper:1", "https_proxy": "http://lower:2", "HTTP_PROXY": ""}
    assert proxy_for("https", "h", 443, env) == parse_proxy("http://lower:2", "x")
    assert proxy_for("http", "h", 80, env) is None  # empty: no proxy
    assert parse_proxy("proxy.corp", "HTTPS_PROXY").port == 80
    assert "secret" not in repr(parse_proxy("http://u:secret@p:3", "x"))
    with pytest.raises(BadInputError, match="socks5:// proxy is not supported"):
        parse_proxy("socks5://p:1080", "HTTPS_PROXY")
