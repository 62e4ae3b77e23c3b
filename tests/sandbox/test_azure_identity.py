"""Entra ID, IMDS and Key Vault fakes, driven by the official azure-identity and
azure-keyvault-secrets clients configured only by endpoint and CA."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity import (
    ClientSecretCredential,
    CredentialUnavailableError,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.keyvault.secrets import SecretClient

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER, AzureFakes
from secretsboot.sandbox.azure.state import Identity
from secretsboot.sandbox.pki import CertificateAuthority
from secretsboot.sandbox.tokens import SigningKey

from . import azure_helpers
from .azure_helpers import LoopbackGuard, OidcIssuer

# the shared module-scoped fixtures (pytest finds fixtures by their module-level name)
azure_dir, ca, az, oidc, clear_faults = (
    azure_helpers.azure_dir,
    azure_helpers.ca,
    azure_helpers.az,
    azure_helpers.oidc,
    azure_helpers.clear_faults,
)

CANARY = "CANARY-7f3a91c2-" + uuid.uuid4().hex[:8]
NS, SA = "shop", "orders"


def wi_credential(
    az: AzureFakes, ca: CertificateAuthority, client_id: str, token_file: Path, **kw: object
) -> WorkloadIdentityCredential:
    return WorkloadIdentityCredential(
        tenant_id=az.tenant_id,
        client_id=client_id,
        token_file_path=str(token_file),
        authority=az.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(ca.ca_path),
        **kw,
    )


def secret_client(
    az: AzureFakes, ca: CertificateAuthority, vault: str, cred: object, **kw: object
) -> SecretClient:
    return SecretClient(
        az.keyvault_url(vault),
        cred,  # type: ignore[arg-type]
        verify_challenge_resource=False,
        connection_verify=str(ca.ca_path),
        **kw,
    )


@pytest.fixture(scope="module")
def world(az: AzureFakes, oidc: OidcIssuer) -> dict[str, Identity]:
    """Two vaults (RBAC and access-policy), an identity federated with the issuer."""
    az.create_keyvault("shop-kv")
    az.create_keyvault("legacy-kv", mode="access-policy")
    for vault in ("shop-kv", "legacy-kv"):
        az.set_secret(vault, "db-password", CANARY)
        az.set_secret(vault, "api-key", "CANARY-other")
    mi = az.create_identity("rg", "orders")
    az.add_federated_credential(
        mi.id, "orders-fic", oidc.issuer, f"system:serviceaccount:{NS}:{SA}"
    )
    unprivileged = az.create_identity("rg", "nobody")
    az.add_federated_credential(
        unprivileged.id, "nobody-fic", oidc.issuer, "system:serviceaccount:shop:nobody"
    )
    az.assign_role(az.vault_id("shop-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
    return {"orders": mi, "nobody": unprivileged}


@pytest.fixture
def sa_token(tmp_path: Path, oidc: OidcIssuer) -> Path:
    path = tmp_path / "azure-identity-token"
    path.write_text(oidc.mint(NS, SA), encoding="utf-8")
    return path


# ---- workload identity -------------------------------------------------------------


def test_workload_identity_reads_secret_from_rbac_vault(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    cred = wi_credential(az, ca, world["orders"].client_id, sa_token)
    secret = secret_client(az, ca, "shop-kv", cred).get_secret("db-password")
    assert secret.value == CANARY
    assert secret.properties.vault_url == az.keyvault_url("shop-kv")
    assert secret.properties.version and len(secret.properties.version) == 32
    out = capsys.readouterr()
    assert CANARY not in out.out + out.err + caplog.text


def test_access_token_has_the_claims_key_vault_checks(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], sa_token: Path
) -> None:
    import jwt

    cred = wi_credential(az, ca, world["orders"].client_id, sa_token)
    token = cred.get_token("https://vault.azure.net/.default").token
    claims = jwt.decode(token, options={"verify_signature": False})
    # Key Vault is a first-party resource: Entra gives it v1 tokens, even from the v2.0 endpoint
    assert claims["ver"] == "1.0"
    assert claims["aud"] == "https://vault.azure.net"
    assert claims["iss"] == claims["idp"] == f"https://sts.windows.net/{az.tenant_id}/"
    assert claims["oid"] == claims["sub"] == world["orders"].principal_id
    assert claims["tid"] == az.tenant_id
    assert claims["appid"] == world["orders"].client_id
    assert claims["appidacr"] == "2"  # a client assertion
    assert claims["idtyp"] == "app"
    assert claims["xms_mirid"] == world["orders"].id
    assert "azp" not in claims  # a v2.0 claim
    assert 3500 <= claims["exp"] - claims["iat"] <= 3600
    # the JWKS at the v1 discovery document's jwks_uri verifies it
    config = requests.get(
        f"{az.authority_host}/{az.tenant_id}/.well-known/openid-configuration",
        verify=str(ca.ca_path),
        timeout=5,
    ).json()
    assert config["issuer"] == claims["iss"]
    key_set = requests.get(config["jwks_uri"], verify=str(ca.ca_path), timeout=5).json()
    from secretsboot.sandbox.tokens import verify

    assert verify(token, key_set, audience="https://vault.azure.net", issuer=claims["iss"])["oid"]
    # ARM too; an app's own resource (the token-exchange audience) gets v2.0 tokens
    arm = jwt.decode(
        cred.get_token("https://management.azure.com/.default").token,
        options={"verify_signature": False},
    )
    assert (arm["ver"], arm["iss"]) == ("1.0", f"https://sts.windows.net/{az.tenant_id}/")
    assert arm["aud"] == "https://management.azure.com"
    app = jwt.decode(
        cred.get_token("api://AzureADTokenExchange/.default").token,
        options={"verify_signature": False},
    )
    assert (app["ver"], app["iss"]) == ("2.0", f"{az.authority_host}/{az.tenant_id}/v2.0")
    assert app["azp"] == world["orders"].client_id and "appid" not in app


def test_entra_fetches_issuer_metadata_over_https_and_caches_it(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    oidc: OidcIssuer,
) -> None:
    def fetches() -> int:
        return sum(c.path == "/.well-known/openid-configuration" for c in oidc.calls)

    wi_credential(az, ca, world["orders"].client_id, sa_token).get_token(
        "https://vault.azure.net/.default"
    )
    after_first = fetches()
    assert after_first >= 1
    assert any(c.path == "/openid/v1/jwks" for c in oidc.calls)
    for _ in range(3):  # new credentials, new exchanges: the issuer metadata stays cached
        wi_credential(az, ca, world["orders"].client_id, sa_token).get_token(
            "https://vault.azure.net/.default"
        )
    assert fetches() == after_first


def test_role_missing_gives_forbidden_by_rbac(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc.mint("shop", "nobody"), encoding="utf-8")
    cred = wi_credential(az, ca, world["nobody"].client_id, token)
    with pytest.raises(HttpResponseError) as info:
        secret_client(az, ca, "shop-kv", cred).get_secret("db-password")
    assert info.value.status_code == 403
    assert info.value.error is not None
    assert info.value.error.code == "Forbidden"
    assert info.value.error.innererror == {"code": "ForbiddenByRbac"}
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in str(info.value)
    assert CANARY not in str(info.value)


def test_role_at_secret_scope_grants_that_secret_only(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    mi = az.create_identity("rg", "scoped")
    az.add_federated_credential(
        mi.id, "scoped-fic", oidc.issuer, "system:serviceaccount:shop:scoped"
    )
    az.assign_role(
        az.vault_id("shop-kv") + "/secrets/api-key", mi.principal_id, KEY_VAULT_SECRETS_USER
    )
    token = tmp_path / "token"
    token.write_text(oidc.mint("shop", "scoped"), encoding="utf-8")
    client = secret_client(az, ca, "shop-kv", wi_credential(az, ca, mi.client_id, token))
    assert client.get_secret("api-key").value == "CANARY-other"
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("db-password")
    assert info.value.status_code == 403


def test_access_policy_vault_allows_with_policy_and_denies_without(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], sa_token: Path
) -> None:
    mi = world["orders"]
    client = secret_client(az, ca, "legacy-kv", wi_credential(az, ca, mi.client_id, sa_token))
    # an RBAC role does nothing on an access-policy vault
    az.assign_role(az.vault_id("legacy-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("db-password")
    assert info.value.status_code == 403
    assert info.value.error is not None
    assert info.value.error.innererror == {"code": "AccessDenied"}
    assert "does not have secrets get permission on key vault 'legacy-kv" in str(info.value)

    az.add_access_policy("legacy-kv", mi.principal_id, secrets=["get"])
    assert client.get_secret("db-password").value == CANARY
    with pytest.raises(HttpResponseError) as listing:  # "get" does not include "list"
        list(client.list_properties_of_secrets())
    assert listing.value.error is not None
    assert listing.value.error.innererror == {"code": "AccessDenied"}


def test_another_subject_gets_aadsts70021(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc.mint("shop", "intruder"), encoding="utf-8")
    cred = wi_credential(az, ca, world["orders"].client_id, token)
    with pytest.raises(ClientAuthenticationError) as info:
        cred.get_token("https://vault.azure.net/.default")
    message = str(info.value)
    assert (
        "AADSTS700213: No matching federated identity record found for presented assertion"
        " subject 'system:serviceaccount:shop:intruder'" in message
    )


def test_wrong_audience_also_gets_aadsts70021(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc.mint(NS, SA, audience="https://kubernetes.default.svc"), encoding="utf-8")
    with pytest.raises(ClientAuthenticationError, match="AADSTS700212"):
        wi_credential(az, ca, world["orders"].client_id, token).get_token(
            "https://vault.azure.net/.default"
        )


def test_forged_signature_is_refused(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    forger = SigningKey.shared("test-azure-forger")
    token = tmp_path / "token"
    token.write_text(oidc.mint(NS, SA, key=forger), encoding="utf-8")
    with pytest.raises(ClientAuthenticationError, match="AADSTS50013: Assertion failed signature"):
        wi_credential(az, ca, world["orders"].client_id, token).get_token(
            "https://vault.azure.net/.default"
        )


def test_expired_assertion_gets_aadsts700024(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    token = tmp_path / "token"
    token.write_text(oidc.mint(NS, SA, expires_in=600, issued_ago=7200), encoding="utf-8")
    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        wi_credential(az, ca, world["orders"].client_id, token).get_token(
            "https://vault.azure.net/.default"
        )


def test_unknown_client_id_gets_aadsts700016(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], sa_token: Path
) -> None:
    ghost = str(uuid.uuid4())
    with pytest.raises(
        ClientAuthenticationError, match=f"AADSTS700016: Application with identifier '{ghost}'"
    ):
        wi_credential(az, ca, ghost, sa_token).get_token("https://vault.azure.net/.default")


def test_entra_error_body_has_entra_shape(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity]
) -> None:
    resp = requests.post(
        f"{az.authority_host}/{az.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": str(uuid.uuid4()),
            "client_secret": "x",
            "scope": "https://vault.azure.net/.default",
        },
        verify=str(ca.ca_path),
        timeout=5,
    )
    body = resp.json()
    assert resp.status_code == 400
    assert body["error"] == "unauthorized_client"
    assert body["error_codes"] == [700016]
    assert body["error_description"].startswith("AADSTS700016: ")
    assert "Trace ID: " in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= set(body)
    # a scope without /.default is not a client-credentials scope
    bad_scope = requests.post(
        f"{az.authority_host}/{az.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "x",
            "scope": "https://vault.azure.net",
        },
        verify=str(ca.ca_path),
        timeout=5,
    ).json()
    assert bad_scope["error"] == "invalid_scope"
    assert bad_scope["error_codes"] == [1002012]


def test_unknown_tenant_fails_discovery(az: AzureFakes, ca: CertificateAuthority) -> None:
    resp = requests.get(
        f"{az.authority_host}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration",
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert resp.status_code == 400
    assert resp.json()["error_codes"] == [90002]


def test_instance_discovery_points_back_to_loopback(
    az: AzureFakes, ca: CertificateAuthority
) -> None:
    resp = requests.get(
        f"{az.authority_host}/common/discovery/instance",
        params={
            "authorization_endpoint": f"{az.authority_host}/{az.tenant_id}/oauth2/v2.0/authorize",
            "api-version": "1.0",
        },
        verify=str(ca.ca_path),
        timeout=5,
    ).json()
    assert resp["tenant_discovery_endpoint"] == (
        f"{az.authority_host}/{az.tenant_id}/v2.0/.well-known/openid-configuration"
    )


# ---- client secret -----------------------------------------------------------------


def test_client_secret_credential_reads_and_wrong_secret_fails(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity]
) -> None:
    app_id = str(uuid.uuid4())
    oid = az.add_service_principal(app_id, "S3cret-" + app_id)
    az.assign_role(az.vault_id("shop-kv"), oid, KEY_VAULT_SECRETS_USER)

    def cred(secret: str) -> ClientSecretCredential:
        return ClientSecretCredential(
            az.tenant_id,
            app_id,
            secret,
            authority=az.authority_host,
            disable_instance_discovery=True,
            connection_verify=str(ca.ca_path),
        )

    assert (
        secret_client(az, ca, "shop-kv", cred("S3cret-" + app_id)).get_secret("db-password").value
        == CANARY
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215: Invalid client secret"):
        cred("wrong").get_token("https://vault.azure.net/.default")


# ---- IMDS (managed identity, aad-pod-identity) ---------------------------------------


@pytest.fixture
def imds_env(az: AzureFakes, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
        "MSI_ENDPOINT",
        "MSI_SECRET",
        "IMDS_ENDPOINT",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", az.imds_url)


def test_managed_identity_via_imds_reads_secret(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], imds_env: None
) -> None:
    mi = az.create_identity("rg", "node-pool")
    az.assign_role(az.vault_id("shop-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
    az.bind_pod_identity(mi)  # the node's identity: every caller may use it
    cred = ManagedIdentityCredential(client_id=mi.client_id, connection_verify=str(ca.ca_path))
    assert secret_client(az, ca, "shop-kv", cred).get_secret("db-password").value == CANARY
    calls = [c for c in az.imds.calls if c.path == "/metadata/identity/oauth2/token"]
    assert calls and calls[-1].status == 200


def test_imds_pod_selector_decides_the_identity(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], imds_env: None
) -> None:
    mi = az.create_identity("rg", "pod-bound")
    az.bind_pod_identity(mi, selector="pod-bound")
    try:
        az.set_imds_caller(None)  # a pod without the aadpodidbinding label
        with pytest.raises(CredentialUnavailableError, match="Identity not found"):
            ManagedIdentityCredential(
                client_id=mi.client_id, connection_verify=str(ca.ca_path), retry_total=0
            ).get_token("https://vault.azure.net/.default")
        az.set_imds_caller("pod-bound")
        token = ManagedIdentityCredential(
            client_id=mi.client_id, connection_verify=str(ca.ca_path)
        ).get_token("https://vault.azure.net/.default")
        import jwt

        assert (
            jwt.decode(token.token, options={"verify_signature": False})["oid"] == mi.principal_id
        )
    finally:
        az.set_imds_caller(None)


def test_imds_answers_like_imds(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity]
) -> None:
    url = az.imds_url + "/metadata/identity/oauth2/token"
    params = {"api-version": "2018-02-01", "resource": "https://vault.azure.net"}
    probe = requests.get(url, params=params, verify=str(ca.ca_path), timeout=5)
    assert probe.status_code == 400
    assert probe.json()["error_description"] == "Required metadata header not specified"
    unknown = requests.get(
        url,
        params={**params, "client_id": str(uuid.uuid4())},
        headers={"Metadata": "true"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "invalid_request", "error_description": "Identity not found"}
    mi = az.create_identity("rg", "raw-imds")
    az.bind_pod_identity(mi, selector="raw")
    ok = requests.get(
        url,
        params={**params, "msi_res_id": mi.id},
        headers={"Metadata": "true", "X-Sandbox-Pod-Selector": "raw"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    body = ok.json()
    assert ok.status_code == 200
    assert body["client_id"] == mi.client_id
    assert body["resource"] == "https://vault.azure.net"
    assert isinstance(body["expires_in"], str) and int(body["expires_in"]) > 0


# ---- the data plane ----------------------------------------------------------------


def test_unauthenticated_request_gets_the_challenge(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity]
) -> None:
    resp = requests.get(
        az.keyvault_url("shop-kv") + "/secrets/db-password",
        params={"api-version": "7.5"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{az.authority_host}/{az.tenant_id}", '
        'resource="https://vault.azure.net"'
    )
    assert resp.json()["error"]["code"] == "Unauthorized"


def test_token_for_another_audience_is_refused(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity], sa_token: Path
) -> None:
    cred = wi_credential(az, ca, world["orders"].client_id, sa_token)
    arm_token = cred.get_token("https://management.azure.com/.default").token
    resp = requests.get(
        az.keyvault_url("shop-kv") + "/secrets/db-password",
        params={"api-version": "7.5"},
        headers={"Authorization": f"Bearer {arm_token}"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert resp.status_code == 401
    assert "AKV10022: Invalid audience" in resp.json()["error"]["message"]
    missing_version = requests.get(
        az.keyvault_url("shop-kv") + "/secrets/db-password",
        headers={
            "Authorization": f"Bearer {cred.get_token('https://vault.azure.net/.default').token}"
        },
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert missing_version.status_code == 400


def test_set_versions_list_paging_and_soft_delete(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_OFFICER

    az.create_keyvault("ops-kv")
    mi = az.create_identity("rg", "ops")
    az.add_federated_credential(mi.id, "ops-fic", oidc.issuer, "system:serviceaccount:shop:ops")
    az.assign_role(az.vault_id("ops-kv"), mi.principal_id, KEY_VAULT_SECRETS_OFFICER)
    token = tmp_path / "token"
    token.write_text(oidc.mint("shop", "ops"), encoding="utf-8")
    client = secret_client(az, ca, "ops-kv", wi_credential(az, ca, mi.client_id, token))

    first = client.set_secret("rotating", "CANARY-v1", content_type="text/plain")
    second = client.set_secret("rotating", "CANARY-v2")
    assert first.properties.version != second.properties.version
    assert client.get_secret("rotating").value == "CANARY-v2"
    assert client.get_secret("rotating", first.properties.version).value == "CANARY-v1"
    versions = {p.version for p in client.list_properties_of_secret_versions("rotating")}
    assert versions == {first.properties.version, second.properties.version}

    for i in range(5):
        client.set_secret(f"bulk-{i}", f"CANARY-bulk-{i}")
    pages = list(client.list_properties_of_secrets(max_page_size=2).by_page())
    names = [p.name for page in pages for p in page]
    assert len(pages) >= 3
    assert sorted(names) == sorted(["rotating", *[f"bulk-{i}" for i in range(5)]])

    deleted = client.begin_delete_secret("rotating").result()
    assert deleted.name == "rotating" and deleted.recovery_id
    with pytest.raises(ResourceNotFoundError) as info:
        client.get_secret("rotating")
    assert info.value.error is not None and info.value.error.code == "SecretNotFound"
    with pytest.raises(HttpResponseError) as invalid:  # an invalid name is 400, not 404
        client.get_secret("db_password")
    assert invalid.value.status_code == 400
    assert invalid.value.error is not None and invalid.value.error.code == "BadParameter"
    assert client.get_deleted_secret("rotating").name == "rotating"
    with pytest.raises(HttpResponseError) as reuse:  # the name is held until purge or recover
        client.set_secret("rotating", "CANARY-v3")
    assert reuse.value.status_code == 409
    assert reuse.value.error is not None
    assert reuse.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}
    client.begin_recover_deleted_secret("rotating").result()
    assert client.get_secret("rotating").value == "CANARY-v2"

    updated = client.update_secret_properties(
        "rotating", second.properties.version, enabled=False, tags={"owner": "ops"}
    )
    assert updated.enabled is False and updated.tags == {"owner": "ops"}
    with pytest.raises(HttpResponseError) as disabled:
        client.get_secret("rotating")
    assert disabled.value.status_code == 403
    assert disabled.value.error is not None
    assert disabled.value.error.innererror == {"code": "SecretDisabled"}


# ---- faults --------------------------------------------------------------------------


def test_keyvault_throttle_is_seen_with_retry_after(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    clear_faults: None,
) -> None:
    client = secret_client(
        az, ca, "shop-kv", wi_credential(az, ca, world["orders"].client_id, sa_token), retry_total=0
    )
    client.get_secret("db-password")  # warm: challenge and token done
    az.faults("keyvault").throttle(rate_per_s=1, retry_after_s=7)
    with pytest.raises(HttpResponseError) as info:
        for _ in range(3):
            client.get_secret("db-password")
    assert info.value.status_code == 429
    assert info.value.response is not None
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.error is not None and info.value.error.code == "Throttled"


def test_keyvault_5xx_is_retried_by_the_sdk(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    clear_faults: None,
) -> None:
    app = az.apps["keyvault-shop-kv"]
    client = secret_client(
        az,
        ca,
        "shop-kv",
        wi_credential(az, ca, world["orders"].client_id, sa_token),
        retry_backoff_factor=0.01,
    )
    client.get_secret("db-password")
    before = len(app.calls)
    az.faults("keyvault").fail_next(2, status=503)
    assert client.get_secret("db-password").value == CANARY
    assert [c.status for c in app.calls[before:]] == [503, 503, 200]

    no_retry = secret_client(
        az, ca, "shop-kv", wi_credential(az, ca, world["orders"].client_id, sa_token), retry_total=0
    )
    no_retry.get_secret("db-password")
    az.faults("keyvault").fail_next(1, status=500)
    with pytest.raises(HttpResponseError) as info:
        no_retry.get_secret("db-password")
    assert info.value.status_code == 500


def test_entra_outage_surfaces_as_authentication_error(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    clear_faults: None,
) -> None:
    az.faults("entra").fail_next(1, status=503)
    cred = wi_credential(az, ca, world["orders"].client_id, sa_token, retry_total=0)
    with pytest.raises(ClientAuthenticationError):
        cred.get_token("https://vault.azure.net/.default")
    assert any(c.status == 503 for c in az.entra.calls)


def test_stopped_vault_refuses_connections(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    clear_faults: None,
) -> None:
    from azure.core.exceptions import ServiceRequestError

    client = secret_client(
        az, ca, "shop-kv", wi_credential(az, ca, world["orders"].client_id, sa_token), retry_total=0
    )
    client.get_secret("db-password")
    az.faults("keyvault").stop()
    try:
        assert not az.healthy()
        with pytest.raises(ServiceRequestError):
            client.get_secret("db-password")
    finally:
        az.faults("keyvault").start()
    assert client.get_secret("db-password").value == CANARY
    assert az.healthy()


# ---- the sandbox stays on loopback -------------------------------------------------


def test_no_request_leaves_loopback(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    sa_token: Path,
    imds_env: None,
) -> None:
    with LoopbackGuard() as guard:
        cred = wi_credential(az, ca, world["orders"].client_id, sa_token)
        assert secret_client(az, ca, "shop-kv", cred).get_secret("db-password").value == CANARY
        mi = az.create_identity("rg", "loopback-node")
        az.bind_pod_identity(mi)
        ManagedIdentityCredential(
            client_id=mi.client_id, connection_verify=str(ca.ca_path)
        ).get_token("https://vault.azure.net/.default")
    assert guard.connects, "the guard saw no connection at all"
    assert guard.non_loopback() == []


def test_env_names_every_endpoint(
    az: AzureFakes, world: dict[str, Identity], azure_dir: Path
) -> None:
    env = az.env()
    assert env["AZURE_TENANT_ID"] == az.tenant_id
    assert env["AZURE_AUTHORITY_HOST"] == az.authority_host
    assert env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] == az.imds_url
    assert env["SECRETSBOOT_ARM_ENDPOINT"] == az.arm_url
    assert env["SECRETSBOOT_SUBSCRIPTION_ID"] == az.subscription_id
    assert env["SECRETSBOOT_KEYVAULT_SHOP_KV"] == az.keyvault_url("shop-kv")
    assert all(
        v.startswith("https://127.0.0.1:")
        for k, v in env.items()
        if k.endswith(("HOST", "ENDPOINT"))
    )
    written = json.loads((azure_dir / "state" / "azure.json").read_text(encoding="utf-8"))
    assert written["keyvaults"]["shop-kv"] == az.keyvault_url("shop-kv")
    assert CANARY not in json.dumps(written)


def test_v1_token_endpoint_and_discovery(
    az: AzureFakes, ca: CertificateAuthority, world: dict[str, Identity]
) -> None:
    import jwt

    app_id = str(uuid.uuid4())
    oid = az.add_service_principal(app_id, "v1-secret")
    resp = requests.post(
        f"{az.authority_host}/{az.tenant_id}/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app_id,
            "client_secret": "v1-secret",
            "resource": "https://management.azure.com/",
        },
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert resp.status_code == 200
    claims = jwt.decode(resp.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == "https://management.azure.com/"
    assert claims["oid"] == oid
    v1 = requests.get(
        f"{az.authority_host}/{az.tenant_id}/.well-known/openid-configuration",
        verify=str(ca.ca_path),
        timeout=5,
    ).json()
    assert v1["issuer"] == f"https://sts.windows.net/{az.tenant_id}/"
    assert v1["token_endpoint"].endswith(f"/{az.tenant_id}/oauth2/token")


def test_propagation_delay_makes_first_attempts_fail(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    tmp_path: Path,
    oidc: OidcIssuer,
) -> None:
    import time

    az.set_propagation_delay(0.3)
    try:
        mi = az.create_identity("rg", "fresh")
        az.add_federated_credential(
            mi.id, "fresh-fic", oidc.issuer, "system:serviceaccount:shop:fresh"
        )
        az.assign_role(az.vault_id("shop-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
        token = tmp_path / "token"
        token.write_text(oidc.mint("shop", "fresh"), encoding="utf-8")
        with pytest.raises(ClientAuthenticationError, match="AADSTS700213"):
            wi_credential(az, ca, mi.client_id, token).get_token("https://vault.azure.net/.default")
        time.sleep(0.35)
        client = secret_client(az, ca, "shop-kv", wi_credential(az, ca, mi.client_id, token))
        assert client.get_secret("db-password").value == CANARY
        # a role granted now is not yet visible to Key Vault
        other = az.create_identity("rg", "fresh-2")
        az.add_federated_credential(
            other.id, "fresh-2-fic", oidc.issuer, "system:serviceaccount:shop:fresh-2"
        )
        az.set_propagation_delay(0)
        token.write_text(oidc.mint("shop", "fresh-2"), encoding="utf-8")
        time.sleep(0.35)  # the FIC (created under the delay) is live now
        az.set_propagation_delay(0.3)
        az.assign_role(az.vault_id("shop-kv"), other.principal_id, KEY_VAULT_SECRETS_USER)
        fresh_client = secret_client(
            az, ca, "shop-kv", wi_credential(az, ca, other.client_id, token)
        )
        with pytest.raises(HttpResponseError) as info:
            fresh_client.get_secret("db-password")
        assert info.value.status_code == 403
        time.sleep(0.35)
        assert fresh_client.get_secret("db-password").value == CANARY
    finally:
        az.set_propagation_delay(0)


def test_imds_faults_reach_the_credential(
    az: AzureFakes,
    ca: CertificateAuthority,
    world: dict[str, Identity],
    imds_env: None,
    clear_faults: None,
) -> None:
    mi = az.create_identity("rg", "imds-faults")
    az.bind_pod_identity(mi)
    az.faults("imds").fail_next(1, status=503)
    with pytest.raises((CredentialUnavailableError, ClientAuthenticationError)):
        ManagedIdentityCredential(
            client_id=mi.client_id, connection_verify=str(ca.ca_path), retry_total=0
        ).get_token("https://vault.azure.net/.default")
    before = len(az.imds.calls)
    az.faults("imds").fail_next(2, status=429)
    token = ManagedIdentityCredential(
        client_id=mi.client_id, connection_verify=str(ca.ca_path), retry_backoff_factor=0.01
    ).get_token("https://vault.azure.net/.default")
    assert token.token
    assert [c.status for c in az.imds.calls[before:]] == [429, 429, 200]
