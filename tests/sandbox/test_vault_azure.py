"""Vault's azure auth method, emulated in the sandbox's front of real OpenBao, driven by hvac.

These tests share the session's ``sandbox``. Entra ID tokens are signed with the
Entra fake's own key (the one its JWKS publishes) so each claim can be bent; the
front reads the keys through Entra's v1 discovery document, as Vault does.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import hvac
import hvac.exceptions as hx
import pytest

from secretsboot.sandbox.tokens import SigningKey

pytestmark = [pytest.mark.openbao, pytest.mark.integration]

ARM = "https://management.azure.com/"
CANARY = "CANARY-4b1d-vault-azure"


@pytest.fixture(scope="module")
def admin(sandbox: Any) -> Iterator[hvac.Client]:
    client = sandbox.vault.client()
    yield client
    client.adapter.close()


@pytest.fixture
def anon(sandbox: Any) -> Iterator[hvac.Client]:
    client = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
    yield client
    client.adapter.close()


def entra_token(sb: Any, oid: str, appid: str, **changes: Any) -> str:
    """An ARM access token as Entra issues it (v1: ``iss`` sts.windows.net)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": ARM,
        "iss": f"https://sts.windows.net/{sb.azure.tenant_id}/",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "oid": oid,
        "sub": oid,
        "appid": appid,
        "tid": sb.azure.tenant_id,
        "ver": "1.0",
    }
    key = changes.pop("key", sb.azure.tokens.key)
    claims.update(changes)
    return str(key.sign({k: v for k, v in claims.items() if v is not None}))


@pytest.fixture(scope="module")
def orders(sandbox: Any, admin: hvac.Client) -> Any:
    """A managed identity, its policy and secret, and a role bound to its principal id."""
    mi = sandbox.azure.create_identity("rg-vaz", "id-vaz-orders")
    admin.sys.create_or_update_policy(
        "vaz-orders", 'path "secret/data/vaz/orders" { capabilities = ["read"] }'
    )
    admin.secrets.kv.v2.create_or_update_secret("vaz/orders", secret={"password": CANARY})
    admin.auth.azure.create_role(
        "orders",
        policies=["vaz-orders"],
        ttl="5m",
        max_ttl="10m",
        bound_service_principal_ids=[mi.principal_id],
    )
    return mi


def test_the_mount_is_listed_and_configured(admin: hvac.Client, sandbox: Any) -> None:
    auths = admin.sys.list_auth_methods()
    assert auths["data"]["azure/"]["type"] == "azure"
    assert auths["azure/"]["type"] == "azure"  # hvac reads either shape
    assert auths["data"]["kubernetes/"]["type"] == "kubernetes"  # OpenBao's own, kept
    config = admin.read("auth/azure/config")["data"]
    assert config["tenant_id"] == sandbox.azure.tenant_id
    assert config["resource"] == ARM
    assert "client_secret" not in config


def test_role_crud_as_vault_shows_it(admin: hvac.Client, orders: Any) -> None:
    role = admin.auth.azure.read_role("orders")
    assert role["bound_service_principal_ids"] == [orders.principal_id]
    assert role["bound_resource_groups"] is None  # Go's nil slice
    assert (role["token_policies"], role["token_ttl"], role["token_max_ttl"]) == (
        ["vaz-orders"],
        300,
        600,
    )
    assert role["policies"] == ["vaz-orders"] or "policies" not in role
    admin.write("auth/azure/role/Temp", bound_group_ids="g1, g2", token_policies="a,b")
    assert "temp" in admin.auth.azure.list_roles()["keys"]  # stored lower-cased
    assert admin.read("auth/azure/role/temp")["data"]["bound_group_ids"] == ["g1", "g2"]
    admin.auth.azure.delete_role("temp")
    assert admin.read("auth/azure/role/temp") is None  # 404 {"errors": []}
    with pytest.raises(hx.InvalidRequest, match="at least one bound constraint"):
        admin.write("auth/azure/role/empty", token_policies=["a"])
    with pytest.raises(hx.InvalidRequest, match="ttl should not be greater than max_ttl"):
        admin.write("auth/azure/role/bad", bound_group_ids=["g"], token_ttl="2h", token_max_ttl=60)


def test_login_gets_a_real_openbao_token_with_the_roles_policies(
    sandbox: Any, anon: hvac.Client, orders: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    jwt = entra_token(sandbox, orders.principal_id, orders.client_id)
    login = anon.auth.azure.login("orders", jwt, subscription_id=None, use_token=False)
    auth = login["auth"]
    assert auth["token_policies"] == ["default", "vaz-orders"]
    assert auth["lease_duration"] == 300 and auth["renewable"] is True
    assert auth["metadata"] == {
        "role": "orders",
        "resource_group_name": "",
        "subscription_id": "",
        "app_id": orders.client_id,
    }
    anon.token = auth["client_token"]
    secret = anon.secrets.kv.v2.read_secret_version("vaz/orders", raise_on_deleted_version=True)
    assert secret["data"]["data"]["password"] == CANARY
    with pytest.raises(hx.Forbidden):  # OpenBao enforces the role's policy
        anon.secrets.kv.v2.read_secret_version("vaz/other", raise_on_deleted_version=True)
    looked = anon.auth.token.lookup_self()["data"]
    assert looked["orphan"] is True and 0 < looked["ttl"] <= 300
    assert looked["explicit_max_ttl"] == 600  # the role's max TTL caps renewals
    anon.auth.token.revoke_self()
    assert CANARY not in capsys.readouterr().out


def _login_error(anon: hvac.Client, role: str, jwt: str, **kw: Any) -> tuple[int, list[str]]:
    try:
        anon.auth.azure.login(role, jwt, use_token=False, **kw)
    except hx.VaultError as exc:
        return _status(exc), list(exc.errors or [])
    raise AssertionError("the login was granted")


def _status(exc: hx.VaultError) -> int:
    return {
        hx.InvalidRequest: 400,
        hx.Forbidden: 403,
        hx.InvalidPath: 404,
        hx.InternalServerError: 500,
    }[type(exc)]


def test_denials_carry_vaults_status_and_words(
    sandbox: Any, anon: hvac.Client, orders: Any
) -> None:
    sb, oid, app = sandbox, orders.principal_id, orders.client_id
    tenant = sb.azure.tenant_id
    other = str(uuid.uuid4())
    v2_issuer = f"{sb.azure.authority_host}/{tenant}/v2.0"
    cases = [
        ("nope", entra_token(sb, oid, app), 400, 'invalid role name "nope"'),
        ("orders", "", 400, "jwt is required"),
        ("orders", entra_token(sb, other, app), 500, f"service principal not authorized: {other}"),
        (
            "orders",
            entra_token(sb, oid, app, aud="https://vault.azure.net"),
            500,
            'oidc: expected audience "https://management.azure.com/" got '
            '["https://vault.azure.net"]',
        ),
        (
            "orders",
            entra_token(sb, oid, app, iss=v2_issuer),
            500,
            "oidc: id token issued by a different provider, expected "
            f'"https://sts.windows.net/{tenant}/" got "{v2_issuer}"',
        ),
        (
            "orders",
            entra_token(sb, oid, app, key=SigningKey.shared("vaz-forger")),
            500,
            "failed to verify signature: failed to verify id token signature",
        ),
    ]
    for role, jwt, status, message in cases:
        assert _login_error(anon, role, jwt) == (status, [message]), message
    status, errs = _login_error(anon, "orders", entra_token(sb, oid, app, exp=1_700_000_000))
    assert status == 500 and errs[0].startswith("oidc: token is expired (Token Expiry: 2023-11-14")
    soon = int(time.time()) + 120  # within go-oidc's leeway, refused by Vault's own nbf check
    status, errs = _login_error(anon, "orders", entra_token(sb, oid, app, nbf=soon))
    assert status == 500 and errs[0].startswith("token is not yet valid (Token Not Before: ")


def test_resource_bindings_with_workload_identity(
    sandbox: Any, admin: hvac.Client, anon: hvac.Client
) -> None:
    """No VM or scale set: Vault matches the token's appid to the resource group's
    user-assigned identities, then checks the bound subscriptions."""
    sb = sandbox
    mi = sb.azure.create_identity("rg-vaz-wi", "id-vaz-wi")
    sub = sb.azure.subscription_id
    admin.auth.azure.create_role(
        "wi",
        policies=["vaz-orders"],
        bound_subscription_ids=[sub],
        bound_resource_groups=["rg-vaz-wi"],
    )
    jwt = entra_token(sb, mi.principal_id, mi.client_id)
    granted = anon.auth.azure.login(
        "wi", jwt, subscription_id=sub, resource_group_name="rg-vaz-wi", use_token=False
    )
    assert granted["auth"]["metadata"]["resource_group_name"] == "rg-vaz-wi"
    anon.token = granted["auth"]["client_token"]
    anon.auth.token.revoke_self()
    anon.token = None
    assert _login_error(anon, "wi", jwt) == (
        500,
        ["subscription_id and resource_group_name are required"],
    )
    admin.auth.azure.create_role("wi-rg", policies=["x"], bound_resource_groups=["rg-elsewhere"])
    assert _login_error(
        anon, "wi-rg", jwt, subscription_id=sub, resource_group_name="rg-elsewhere"
    ) == (500, ["neither token object id nor token app id match expected identities"])
    other_sub = str(uuid.uuid4())
    admin.auth.azure.create_role("wi-other", policies=["x"], bound_subscription_ids=[other_sub])
    assert _login_error(
        anon, "wi-other", jwt, subscription_id=sub, resource_group_name="rg-vaz-wi"
    ) == (500, ["subscription not authorized"])
    status, errs = _login_error(
        anon, "wi", jwt, subscription_id=sub, resource_group_name="rg-vaz-wi", vmss_name="aks-vmss"
    )
    assert status == 500
    assert errs[0].startswith("unable to retrieve virtual machine scale set metadata: ")


def test_role_writes_need_the_capability(sandbox: Any, admin: hvac.Client) -> None:
    admin.sys.create_or_update_policy(
        "vaz-reader", 'path "auth/azure/role/*" { capabilities = ["read"] }'
    )
    token = admin.auth.token.create(policies=["vaz-reader"], ttl="5m")["auth"]["client_token"]
    limited = hvac.Client(url=sandbox.vault.address, token=token, verify=str(sandbox.ca_path))
    try:
        with pytest.raises(hx.Forbidden) as denied:
            limited.write("auth/azure/role/sneaky", bound_group_ids=["g"], token_policies=["root"])
        assert denied.value.errors == ["1 error occurred:\n\t* permission denied\n\n"]
        assert limited.read("auth/azure/role/sneaky") is None
        with pytest.raises(hx.Forbidden):
            limited.write("auth/azure/config", tenant_id="t", resource="r")
        anonymous = hvac.Client(url=sandbox.vault.address, verify=str(sandbox.ca_path))
        with pytest.raises(hx.Forbidden):
            anonymous.read("auth/azure/config")
        anonymous.adapter.close()
    finally:
        limited.adapter.close()


def test_list_verb_is_relayed_to_openbao(admin: hvac.Client) -> None:
    """hvac's list() sends HTTP LIST; the front relays it (it used to answer 501)."""
    admin.sys.create_or_update_policy("vaz-listed", 'path "x" { capabilities = ["read"] }')
    assert "vaz-listed" in admin.list("sys/policies/acl")["data"]["keys"]


def test_mounting_at_another_path_and_unmounting(admin: hvac.Client, sandbox: Any) -> None:
    admin.sys.enable_auth_method("azure", path="azure-extra")
    try:
        with pytest.raises(hx.InvalidRequest, match="path is already in use at azure-extra/"):
            admin.sys.enable_auth_method("azure", path="azure-extra")
        with pytest.raises(hx.InternalServerError, match="resource is required"):
            admin.write("auth/azure-extra/config", tenant_id=sandbox.azure.tenant_id)
        assert admin.read("auth/azure-extra/config") is None
        admin.auth.azure.configure(
            tenant_id=sandbox.azure.tenant_id,
            resource=ARM,
            environment="AzurePublicCloud",
            client_id="0c1f7a52-1111-4c3e-9d2b-5a6b7c8d9e0f",
            client_secret="CANARY-client-secret-vaz",
            mount_point="azure-extra",
        )
        config = admin.auth.azure.read_config(mount_point="azure-extra")
        assert config["environment"] == "AzurePublicCloud" and "client_secret" not in config
        assert "CANARY-client-secret-vaz" not in str(admin.read("auth/azure-extra/config"))
        with pytest.raises(hx.InternalServerError, match="no cloud configuration matching"):
            admin.write("auth/azure-extra/config", environment="AzureMoonCloud")
    finally:
        admin.sys.disable_auth_method("azure-extra")
    assert "azure-extra/" not in admin.sys.list_auth_methods()["data"]


class _ManagedIdentity:
    """A TokenSource answering as Entra does for a managed identity: a v1 ARM token whose
    ``aud`` is the requested scope's resource, verbatim."""

    def __init__(self, sb: Any, mi: Any) -> None:
        self.sb, self.mi, self.scopes = sb, mi, []

    def token(self, scope: str, deadline: Any) -> str:
        self.scopes.append(scope)
        aud = scope.removesuffix("/.default")
        return entra_token(self.sb, self.mi.principal_id, self.mi.client_id, aud=aud)

    def describe(self) -> str:
        return f"managed identity {self.mi.client_id}"

    def close(self) -> None:
        pass


def test_fetchs_vault_backend_logs_in_with_azure_auth(sandbox: Any, orders: Any) -> None:
    """secretsboot's own Vault backend (what fetch runs) against the emulation: the
    scope it asks for gives the aud Vault's config names, and the read passes OpenBao."""
    from secretsboot.backends.vault import Vault
    from secretsboot.contract import VaultAuthConfig, VaultConfig
    from secretsboot.errors import DeniedError
    from secretsboot.identity.vault import login_request
    from secretsboot.refs import Ref
    from secretsboot.transport import Deadline

    source = _ManagedIdentity(sandbox, orders)
    auth = VaultAuthConfig("azure", role="orders")
    cfg = VaultConfig(address=sandbox.vault.address, auth=auth, ca_cert=str(sandbox.ca_path))
    store = Vault(cfg, lambda d: login_request(auth, lambda: "unused", source, d), "mi")
    try:
        value = store.get(Ref.parse("vault://secret/vaz/orders#password"), Deadline.after(20))
    finally:
        store.close()
    assert value.reveal() == CANARY
    assert source.scopes == ["https://management.azure.com//.default"]
    stranger = sandbox.azure.create_identity("rg-vaz", "id-vaz-stranger")
    other = Vault(
        cfg,
        lambda d: login_request(auth, lambda: "unused", _ManagedIdentity(sandbox, stranger), d),
        "stranger",
    )
    try:
        with pytest.raises(
            DeniedError, match=f"service principal not authorized: {stranger.principal_id}"
        ):
            other.get(Ref.parse("vault://secret/vaz/orders#password"), Deadline.after(20))
    finally:
        other.close()


def test_a_rotated_entra_key_is_fetched_again(sandbox: Any, anon: hvac.Client, orders: Any) -> None:
    """go-oidc refetches the JWKS once when no cached key verifies (Entra rotates keys)."""
    tokens = sandbox.azure.tokens
    first = entra_token(sandbox, orders.principal_id, orders.client_id)
    anon.auth.azure.login("orders", first, use_token=False)  # the old key is cached now
    old = tokens.key
    tokens.key = SigningKey.shared("vaz-rotated")
    try:
        fresh = entra_token(sandbox, orders.principal_id, orders.client_id)
        granted = anon.auth.azure.login("orders", fresh, use_token=False)
        assert granted["auth"]["token_policies"] == ["default", "vaz-orders"]
        # the retired key is no longer published: its tokens fail after the refetch
        assert _login_error(anon, "orders", first) == (
            500,
            ["failed to verify signature: failed to verify id token signature"],
        )
    finally:
        tokens.key = old
