"""Identities: Entra error translation, token sources against small fakes, kubeconfig
parsing, Vault login bodies, and HashiCorp Vault's ``azure`` auth against a fake
(OpenBao has no azure auth method)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from secretsboot.contract import VaultAuthConfig
from secretsboot.errors import BadInputError, PropagationPendingError
from secretsboot.identity.azure import (
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
    token_subject,
)
from secretsboot.identity.kubernetes import api_access, kubeconfig_access
from secretsboot.identity.vault import login_request
from secretsboot.sandbox._http import FakeApp, FakeServer, Request, Response
from secretsboot.transport import Deadline


def jwt(claims: dict[str, Any]) -> str:
    enc = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{enc}.sig"


SUBJECT = "system:serviceaccount:shop:orders"


def test_token_subject_reads_sub_without_verifying() -> None:
    assert token_subject(jwt({"sub": SUBJECT})) == SUBJECT
    assert token_subject("not-a-jwt") is None


def test_workload_identity_needs_the_webhook_variables() -> None:
    with pytest.raises(BadInputError, match="AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE unset"):
        WorkloadIdentity.from_env({"AZURE_TENANT_ID": "t"})
    with pytest.raises(BadInputError, match="AZURE_CLIENT_SECRET"):
        ServicePrincipal.from_env({"AZURE_TENANT_ID": "t", "AZURE_CLIENT_ID": "c"})


class Entra(FakeApp):
    """Token endpoint + IMDS in one small app; records the forms it received."""

    name = "entra"

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, str]] = []
        self.answer: tuple[int, Any] = (200, {"access_token": "AT", "expires_in": 3600})

    def handle(self, req: Request) -> Response:
        if req.path.endswith("/oauth2/v2.0/token"):
            self.forms.append(req.form())
            return Response(*self.answer)
        if req.path == "/metadata/identity/oauth2/token":
            assert req.headers.get("Metadata") == "true"
            return Response(200, {"access_token": "MI-" + (req.arg("resource") or ""),
                                  "expires_in": "3600"})  # fmt: skip
        return Response(404, {"error": "nope"})


def soon() -> Deadline:
    return Deadline.after(5)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, str]:
    authority = trustme.CA()
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(path))
    return authority, str(path)


def tls_context(ca: tuple[trustme.CA, str]) -> Any:
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca[0].issue_cert("127.0.0.1").configure_cert(ctx)
    return ctx


@pytest.fixture
def entra(ca: tuple[trustme.CA, str]) -> Iterator[tuple[Entra, str]]:
    """The token endpoint over TLS (the transport refuses http:// for it)."""
    app = Entra()
    with FakeServer(app, ssl_context=tls_context(ca)) as server:
        yield app, server.url


@pytest.fixture
def imds() -> Iterator[tuple[Entra, str]]:
    """IMDS / NMI: plain http on the node, by design."""
    app = Entra()
    with FakeServer(app, ssl_context=None) as server:
        yield app, server.url


def test_workload_identity_posts_the_assertion_and_caches(
    entra: tuple[Entra, str], ca: tuple[trustme.CA, str], tmp_path: Path
) -> None:
    app, url = entra
    token_file = tmp_path / "token"
    token_file.write_text(jwt({"sub": SUBJECT}))
    src = WorkloadIdentity.from_env(
        {"AZURE_TENANT_ID": "tid", "AZURE_CLIENT_ID": "cid",
         "AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_AUTHORITY_HOST": url},
        ca_file=ca[1],
    )  # fmt: skip
    try:
        assert src.token("https://vault.azure.net/.default", soon()) == "AT"
        assert src.token("https://vault.azure.net/.default", soon()) == "AT"
    finally:
        src.close()
    assert len(app.forms) == 1
    form = app.forms[0]
    assert form["client_assertion"] == token_file.read_text()
    assert form["client_assertion_type"].endswith("jwt-bearer")
    assert form["scope"] == "https://vault.azure.net/.default"
    assert [c.path for c in app.calls] == ["/tid/oauth2/v2.0/token"]


@pytest.mark.parametrize("code", [70021, 700211, 700212, 700213])
def test_workload_identity_reports_a_propagating_credential(
    entra: tuple[Entra, str], ca: tuple[trustme.CA, str], tmp_path: Path, code: int
) -> None:
    app, url = entra
    app.answer = (
        400,
        {"error": "invalid_client", "error_description": f"AADSTS{code}: no matching record"},
    )
    token_file = tmp_path / "token"
    token_file.write_text(jwt({"sub": SUBJECT}))
    src = WorkloadIdentity("tid", "cid", str(token_file), url, ca[1])
    with pytest.raises(PropagationPendingError, match=SUBJECT):
        src.token("s/.default", soon())
    src.close()


def test_managed_identity_uses_the_pod_identity_host(imds: tuple[Entra, str]) -> None:
    _, url = imds
    src = ManagedIdentity.from_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": url}, "cid")
    assert src.token("https://vault.azure.net/.default", soon()) == "MI-https://vault.azure.net"
    assert "IMDS" in src.describe()
    src.close()


def test_login_bodies() -> None:
    sa = lambda: "SA-JWT"  # noqa: E731

    class Az:
        def token(self, scope: str, deadline: Deadline) -> str:
            return f"AZ({scope})"

        def describe(self) -> str:
            return "mi"

        def close(self) -> None:
            pass

    assert login_request(VaultAuthConfig("kubernetes", role="r"), sa, None) == (
        "auth/kubernetes/login",
        {"role": "r", "jwt": "SA-JWT"},
    )
    path, body = login_request(VaultAuthConfig("jwt", mount="jwt-sa", role="r"), sa, None)
    assert (path, body["jwt"]) == ("auth/jwt-sa/login", "SA-JWT")
    _, body = login_request(VaultAuthConfig("jwt", role="r", jwt_source="entra"), sa, Az())
    assert body["jwt"] == "AZ(api://AzureADTokenExchange/.default)"
    path, body = login_request(
        VaultAuthConfig("azure", role="r", subscription_id="s", resource_group="g", vm_name="v"),
        sa,
        Az(),
    )
    assert path == "auth/azure/login"
    assert body == {
        "role": "r",
        "jwt": "AZ(https://management.azure.com//.default)",  # resource + "/.default"
        "subscription_id": "s",
        "resource_group_name": "g",
        "vm_name": "v",
    }
    with pytest.raises(BadInputError, match="managed identity"):
        login_request(VaultAuthConfig("azure", role="r"), sa, None)


def test_kubeconfig_with_token_ca_data_and_namespace(tmp_path: Path) -> None:
    ca_pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u", "namespace": "shop"}}],
        "clusters": [{"name": "k", "cluster": {
            "server": "https://127.0.0.1:6443",
            "certificate-authority-data": base64.b64encode(ca_pem.encode()).decode()}}],
        "users": [{"name": "u", "user": {"token": "TOKEN"}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    access = kubeconfig_access({"KUBECONFIG": str(path)})
    assert (access.server, access.token, access.namespace) == (
        "https://127.0.0.1:6443",
        "TOKEN",
        "shop",
    )
    assert access.ca_data == ca_pem
    assert "TOKEN" not in repr(access)
    assert kubeconfig_access({"KUBECONFIG": str(path)}, "other").namespace == "other"


def test_in_cluster_access_reads_the_service_account_folder(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(jwt({"sub": SUBJECT}) + "\n")
    (tmp_path / "namespace").write_text("shop")
    env = {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "SECRETSBOOT_SERVICEACCOUNT_DIR": str(tmp_path),
    }
    access = api_access(env)
    assert access.server == "https://10.0.0.1:443"
    assert access.namespace == "shop"
    assert access.ca_file == str(tmp_path / "ca.crt")
    assert access.token == jwt({"sub": SUBJECT})


def test_no_kubernetes_access_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="not in a pod"):
        api_access({"KUBECONFIG": str(tmp_path / "missing")})


def test_kubeconfig_client_certificate_copy_is_removed_once_loaded(tmp_path: Path) -> None:
    import trustme

    from secretsboot.backends.kubernetes import Kubernetes

    ca = trustme.CA()
    client = ca.issue_cert("user@example")
    doc = {
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "k", "user": "u"}}],
        "clusters": [{"name": "k", "cluster": {
            "server": "https://127.0.0.1:6443",
            "certificate-authority-data": base64.b64encode(ca.cert_pem.bytes()).decode()}}],
        "users": [{"name": "u", "user": {
            "client-certificate-data": base64.b64encode(client.cert_chain_pems[0].bytes()).decode(),
            "client-key-data": base64.b64encode(client.private_key_pem.bytes()).decode()}}],
    }  # fmt: skip
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(doc))
    access = kubeconfig_access({"KUBECONFIG": str(path)})
    assert access.temp_dir is not None and Path(access.temp_dir).is_dir()
    store = Kubernetes(access)
    try:
        assert not Path(access.temp_dir).exists(), "the key copy must not outlive loading"
    finally:
        store.close()
