"""The suite-wide guard: tests reach loopback only (tests/conftest.py)."""

from __future__ import annotations

import socket

import pytest


@pytest.mark.parametrize("address", [("169.254.169.254", 80), ("8.8.8.8", 53), ("10.0.0.1", 443)])
def test_non_loopback_connect_is_refused(address: tuple[str, int]) -> None:
    with pytest.raises(ConnectionRefusedError, match="test guard"):
        socket.create_connection(address, timeout=1)


def test_loopback_connect_still_works() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.create_connection(server.getsockname(), timeout=1):
            conn, _ = server.accept()
            conn.close()
