"""Shared pieces of the Azure fake tests: servers, a small OIDC issuer, a loopback guard.

The fixtures are module-scoped (import them into a test module to use them): one
CA, one set of Azure fakes and one OIDC issuer per test module.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from azure.core.exceptions import HttpResponseError
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient

from secretsboot.sandbox._http import FakeApp, FakeServer, Request, Response
from secretsboot.sandbox.azure import AzureFakes
from secretsboot.sandbox.pki import CertificateAuthority
from secretsboot.sandbox.tokens import SigningKey, jwks

TOKEN_EXCHANGE = "api://AzureADTokenExchange"


def sp_principal(az: AzureFakes) -> tuple[str, str]:
    """A new app that signs in with the secret ``secret-<app id>``: (app id, object id)."""
    app_id = str(uuid.uuid4())
    return app_id, az.add_service_principal(app_id, "secret-" + app_id)


def sp_credential(az: AzureFakes, ca_path: Path | str, app_id: str) -> ClientSecretCredential:
    """The credential of an app made by :func:`sp_principal`, aimed at the Entra fake."""
    return ClientSecretCredential(
        az.tenant_id,
        app_id,
        "secret-" + app_id,
        authority=az.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(ca_path),
    )


def sp_secret_client(az: AzureFakes, ca_path: Path | str, vault: str, app_id: str) -> SecretClient:
    """``SecretClient`` of vault ``vault`` as app ``app_id``: endpoint, credential, CA only."""
    return SecretClient(
        az.keyvault_url(vault),
        sp_credential(az, ca_path, app_id),
        verify_challenge_resource=False,  # the fake vault answers on 127.0.0.1
        connection_verify=str(ca_path),
    )


def read_or_denial(client: SecretClient, name: str) -> tuple[int, str]:
    """``(200, "allowed")`` when ``name`` reads, else the denial's status and inner code."""
    try:
        client.get_secret(name)
    except HttpResponseError as exc:
        assert exc.error is not None and exc.error.code == "Forbidden", exc
        return exc.status_code or 0, (exc.error.innererror or {}).get("code", "")
    return 200, "allowed"


class OidcIssuer(FakeApp):
    """A service-account token issuer (what a cluster's OIDC issuer URL serves)."""

    name = "oidc-issuer"

    def __init__(self) -> None:
        super().__init__()
        self.key = SigningKey.shared("test-azure-oidc-issuer")

    @property
    def issuer(self) -> str:
        return self.base_url

    def handle(self, req: Request) -> Response:
        if req.path == "/.well-known/openid-configuration":
            return Response(
                200,
                {
                    "issuer": self.issuer,
                    "jwks_uri": f"{self.issuer}/openid/v1/jwks",
                    "response_types_supported": ["id_token"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                },
            )
        if req.path == "/openid/v1/jwks":
            return Response(200, jwks([self.key]))
        return Response(404, {"error": "not found"})

    def mint(
        self,
        namespace: str,
        service_account: str,
        *,
        audience: str = TOKEN_EXCHANGE,
        expires_in: int = 3600,
        issued_ago: int = 0,
        key: SigningKey | None = None,
        issuer: str | None = None,
    ) -> str:
        """A projected service-account token, Kubernetes claim shape."""
        now = int(time.time()) - issued_ago
        claims: dict[str, Any] = {
            "aud": [audience],
            "exp": now + expires_in,
            "iat": now,
            "nbf": now,
            "iss": issuer or self.issuer,
            "sub": f"system:serviceaccount:{namespace}:{service_account}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": service_account, "uid": str(uuid.uuid4())},
            },
        }
        return (key or self.key).sign(claims)


class LoopbackGuard:
    """Records every socket connect and DNS lookup of this process (``sys.addaudithook``).

    Audit hooks cannot be removed, so one hook is installed per process and
    recording is switched on and off around the code under watch.
    """

    _installed: ClassVar[bool] = False
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _active: ClassVar[list[LoopbackGuard]] = []

    def __init__(self) -> None:
        self.connects: list[Any] = []
        self.lookups: list[str] = []

    @classmethod
    def _hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if event not in ("socket.connect", "socket.getaddrinfo") or not cls._active:
            return
        for guard in list(cls._active):
            if event == "socket.connect":
                guard.connects.append(args[1])
            else:
                guard.lookups.append(str(args[0]))

    def __enter__(self) -> LoopbackGuard:
        with self._lock:
            if not LoopbackGuard._installed:
                sys.addaudithook(LoopbackGuard._hook)
                LoopbackGuard._installed = True
            LoopbackGuard._active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            LoopbackGuard._active.remove(self)

    def non_loopback(self) -> list[str]:
        bad = []
        for addr in self.connects:
            host = addr[0] if isinstance(addr, tuple) else str(addr)
            if host not in ("127.0.0.1", "::1", "localhost"):
                bad.append(f"connect {addr!r}")
        for host in self.lookups:
            if host not in ("127.0.0.1", "::1", "localhost"):
                bad.append(f"lookup {host!r}")
        return bad


@pytest.fixture(scope="module")
def azure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("azure")


@pytest.fixture(scope="module")
def ca(azure_dir: Path) -> CertificateAuthority:
    return CertificateAuthority.create(azure_dir / "ca")


@pytest.fixture(scope="module")
def az(ca: CertificateAuthority, azure_dir: Path) -> Iterator[AzureFakes]:
    fakes = AzureFakes.start(ca, azure_dir / "state")
    try:
        yield fakes
    finally:
        fakes.stop()


@pytest.fixture(scope="module")
def oidc(ca: CertificateAuthority) -> Iterator[OidcIssuer]:
    app = OidcIssuer()
    server = FakeServer(app, ssl_context=ca.issue_server_cert(name="oidc").ssl_context())
    server.start()
    try:
        yield app
    finally:
        server.stop()


@pytest.fixture
def clear_faults(az: AzureFakes) -> Iterator[None]:
    yield
    for component in ("entra", "imds", "arm", "keyvault"):
        az.faults(component).clear()  # type: ignore[arg-type]
    az.clear_arm_denials()
