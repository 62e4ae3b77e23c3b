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

from secretsboot.backends.base import PropagationPendingError
from secretsboot.backends.vault import LeanVault
from secretsboot.contract import VaultAuthConfig, VaultConfig
from secretsboot.errors import BadInputError, DeniedError, UnavailableError
from secretsboot.identity.azure import (
    ManagedIdentity,
    ServicePrincipal,
    WorkloadIdentity,
    entra_error,
    token_subject,
)
from secretsboot.identity.kubernetes import api_access, kubeconfig_access
from secretsboot.identity.vault import login_request
from secretsboot.refs import Ref
from secretsboot.sandbox._http import FakeApp, FakeServer, Request, Response


def jwt(claims: dict[str, Any]) -> str:
    enc = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"e30.{enc}.sig"


SUBJECT = "system:serviceaccount:shop:orders"


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (400, {"error_description": "AADSTS70021: No matching federated identity record found"},
         PropagationPendingError,
         f"federated credential for subject {SUBJECT} not found on workload identity c1"),
        (400, {"error_description": "AADSTS700016: Application not found"}, DeniedError,
         "AADSTS700016"),
        (401, {"error_description": "AADSTS7000215: Invalid client secret"}, DeniedError,
         "check the client id"),
        (429, {}, UnavailableError, "429"),
        (503, None, UnavailableError, "503"),
        (400, {"error": "invalid_request"}, DeniedError, "invalid_request"),
    ],
)  # fmt: skip
def test_entra_errors(status: int, body: Any, kind: type, words: str) -> None:
    err = entra_error(status, body, "workload identity c1", SUBJECT)
    assert type(err) is kind
    assert words in str(err)


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


@pytest.fixture
def entra() -> Iterator[tuple[Entra, str]]:
    app = Entra()
    with FakeServer(app, ssl_context=None) as server:
        yield app, server.url


def test_workload_identity_posts_the_assertion_and_caches(
    entra: tuple[Entra, str], tmp_path: Path
) -> None:
    app, url = entra
    token_file = tmp_path / "token"
    token_file.write_text(jwt({"sub": SUBJECT}))
    src = WorkloadIdentity.from_env(
        {"AZURE_TENANT_ID": "tid", "AZURE_CLIENT_ID": "cid",
         "AZURE_FEDERATED_TOKEN_FILE": str(token_file), "AZURE_AUTHORITY_HOST": url}
    )  # fmt: skip
    try:
        assert src.token("https://vault.azure.net/.default", 5) == "AT"
        assert src.token("https://vault.azure.net/.default", 5) == "AT"
    finally:
        src.close()
    assert len(app.forms) == 1
    form = app.forms[0]
    assert form["client_assertion"] == token_file.read_text()
    assert form["client_assertion_type"].endswith("jwt-bearer")
    assert form["scope"] == "https://vault.azure.net/.default"
    assert [c.path for c in app.calls] == ["/tid/oauth2/v2.0/token"]


def test_workload_identity_reports_aadsts70021(entra: tuple[Entra, str], tmp_path: Path) -> None:
    app, url = entra
    app.answer = (
        400,
        {"error": "invalid_client", "error_description": "AADSTS70021: no matching record"},
    )
    token_file = tmp_path / "token"
    token_file.write_text(jwt({"sub": SUBJECT}))
    src = WorkloadIdentity("tid", "cid", str(token_file), url)
    with pytest.raises(PropagationPendingError, match=SUBJECT):
        src.token("s/.default", 5)
    src.close()


def test_managed_identity_uses_the_pod_identity_host(entra: tuple[Entra, str]) -> None:
    _, url = entra
    src = ManagedIdentity.from_env({"AZURE_POD_IDENTITY_AUTHORITY_HOST": url}, "cid")
    assert src.token("https://vault.azure.net/.default", 5) == "MI-https://vault.azure.net"
    assert "IMDS" in src.describe()
    src.close()


def test_login_bodies() -> None:
    sa = lambda: "SA-JWT"  # noqa: E731

    class Az:
        def token(self, scope: str, timeout: float) -> str:
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
        "jwt": "AZ(https://management.azure.com/.default)",
        "subscription_id": "s",
        "resource_group_name": "g",
        "vm_name": "v",
    }
    with pytest.raises(BadInputError, match="managed identity"):
        login_request(VaultAuthConfig("azure", role="r"), sa, None)


class HashiVault(FakeApp):
    """HashiCorp Vault's azure auth method, as far as a login and a KV v2 read go."""

    name = "vault-azure"

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def handle(self, req: Request) -> Response:
        if req.path == "/v1/auth/azure/login":
            body = req.json()
            if body.get("role") != "orders" or body.get("jwt") != "MI-https://management.azure.com":
                return Response(403, {"errors": ["permission denied"]})
            self.tokens.add("hvs.orders")
            return Response(200, {"auth": {"client_token": "hvs.orders"}})
        token = req.headers.get("X-Vault-Token")
        if token not in self.tokens:
            return Response(403, {"errors": ["permission denied"]})
        if req.path == "/v1/auth/token/revoke-self":
            self.tokens.discard(token)
            return Response(204)
        if req.path == "/v1/secret/data/orders/db":
            return Response(200, {"data": {"data": {"password": "CANARY-azure-auth"}}})
        return Response(404, {"errors": []})


@pytest.mark.parametrize("client", ["lean", "sdk"])
def test_vault_azure_auth_with_a_managed_identity_token(
    entra: tuple[Entra, str], client: str
) -> None:
    from secretsboot.backends.vault import SdkVault

    _, imds_url = entra
    fake = HashiVault()
    with FakeServer(fake, ssl_context=None) as server:
        mi = ManagedIdentity(imds_url)
        auth = VaultAuthConfig("azure", role="orders", subscription_id="sub", resource_group="rg")
        cfg = VaultConfig(address=server.url, auth=auth)
        kind = LeanVault if client == "lean" else SdkVault
        store = kind(cfg, lambda t: login_request(auth, lambda: "unused", mi, t), "mi")
        try:
            value = store.get(Ref.parse("vault://secret/orders/db#password"), 5)
        finally:
            store.close()
            mi.close()
    assert value.reveal() == "CANARY-azure-auth"
    assert fake.tokens == set(), "revoke-self was called"
    assert [c.path for c in fake.calls] == [
        "/v1/auth/azure/login",
        "/v1/secret/data/orders/db",
        "/v1/auth/token/revoke-self",
    ]


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

    from secretsboot.backends.kubernetes import LeanKubernetes

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
    store = LeanKubernetes(access)
    try:
        assert not Path(access.temp_dir).exists(), "the key copy must not outlive loading"
    finally:
        store.close()
