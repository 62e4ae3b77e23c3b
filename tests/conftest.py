"""Suite-wide fixtures: one in-process sandbox per session, and a loopback-only guard.

``sandbox``: the whole stack (Kubernetes fake, Azure fakes when present, real
OpenBao) started once per session; tests share it, so each test uses its own
namespace / vault / Vault path names.

``no_network_beyond_loopback`` (autouse, session): any socket connect to an
address other than 127.0.0.0/8 or ::1 raises ``ConnectionRefusedError`` naming
the address, so a test can never reach the internet or 169.254.169.254.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any

import pytest

log = logging.getLogger(__name__)


def _loopback(address: Any) -> bool:
    if not isinstance(address, tuple) or not address:
        return True  # AF_UNIX paths and the like
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False  # a name: resolve it yourself first, to a loopback address


@pytest.fixture(scope="session", autouse=True)
def no_network_beyond_loopback() -> Iterator[None]:
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise ConnectionRefusedError(
                f"test guard: connection to {address!r} blocked (tests talk only to 127.0.0.1)"
            )
        original_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address):
            raise ConnectionRefusedError(
                f"test guard: connection to {address!r} blocked (tests talk only to 127.0.0.1)"
            )
        return original_connect_ex(self, address)

    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = original_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = original_connect_ex  # type: ignore[method-assign]


def _available_components() -> tuple[str, ...]:
    components = ["kubernetes", "openbao"]
    try:
        from secretsboot.sandbox.azure import AzureFakes  # noqa: F401
    except ImportError as exc:
        log.warning("sandbox fixture without the Azure fakes: %s", exc)
    else:
        components.insert(1, "azure")
    return tuple(components)


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shared in-process sandbox (see /work/notes/sandbox-contract.md)."""
    from secretsboot.sandbox import Sandbox

    sb = Sandbox.start(tmp_path_factory.mktemp("sandbox"), components=_available_components())
    try:
        yield sb
    finally:
        sb.stop()
