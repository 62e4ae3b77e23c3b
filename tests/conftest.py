"""Suite-wide fixtures: one in-process sandbox per session, and a loopback-only guard.

``sandbox``: the whole stack (Kubernetes fake, Azure fakes when present, real
OpenBao) started once per session; tests share it, so each test uses its own
namespace / vault / Vault path names.

``clean_environment`` (autouse, session): every variable the code reads
(``AZURE_*``, ``VAULT_*``, ``SECRETSBOOT_*``, ``KUBECONFIG``,
``KUBERNETES_SERVICE_*``, the proxy and CA-bundle variables, ``IDENTITY_*``,
``MSI_*``, ``COLUMNS``) is removed for the run, so a developer's shell or CI's
environment cannot change what a test sees.
A test that needs one sets it with ``monkeypatch.setenv``.

``no_network_beyond_loopback`` (autouse, session): any socket connect to an
address other than 127.0.0.0/8 or ::1 raises ``ConnectionRefusedError`` naming
the address, so a test can never reach the internet or 169.254.169.254.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


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


#: Prefixes and names of environment variables the package, the SDKs it drives,
#: or the HTTP stack read. Cleared for the whole test run.
ENV_PREFIXES = ("AZURE_", "VAULT_", "SECRETSBOOT_", "KUBERNETES_SERVICE_", "IDENTITY_", "MSI_")
ENV_NAMES = frozenset(
    {
        "KUBECONFIG",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "all_proxy",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "COLUMNS",
    }
)


def environment_variables_read_by_the_code(environ: dict[str, str]) -> list[str]:
    return sorted(k for k in environ if k in ENV_NAMES or k.startswith(ENV_PREFIXES))


@pytest.fixture(scope="session", autouse=True)
def clean_environment() -> Iterator[None]:
    """Session-wide, so session- and module-scoped fixtures (the sandbox, the
    subprocesses tests start) see the same clean environment as the tests; a
    test or fixture that needs a variable sets it with ``monkeypatch``."""
    import os

    with pytest.MonkeyPatch.context() as mp:
        for name in environment_variables_read_by_the_code(dict(os.environ)):
            mp.delenv(name)
        yield


SANDBOX_COMPONENTS = ("kubernetes", "azure", "openbao")


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The shared in-process sandbox: Kubernetes fake, Azure fakes and real OpenBao."""
    from secretsboot.sandbox import Sandbox
    from secretsboot.sandbox.stack import TEST_PROPAGATION

    sb = Sandbox.start(
        tmp_path_factory.mktemp("sandbox"),
        components=SANDBOX_COMPONENTS,
        propagation=TEST_PROPAGATION,  # grants over ARM take 0.2-1 s to take effect
    )
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder every uid can traverse (pytest's own are 0700 to root), for
    tests that act as another uid (setpriv, podman --user)."""
    path = Path(tempfile.mkdtemp(prefix="secretsboot-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
