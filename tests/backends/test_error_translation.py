"""Each backend translates its errors in one place: tables of status/body -> our tree.

The SDK-backed clients are checked with ``responses`` (their real error shapes,
hvac and azure-core over requests) to land on the same errors as the lean client.
"""

from __future__ import annotations

from typing import Any

import pytest
import responses

from secretsboot.backends.base import PropagationPendingError
from secretsboot.backends.keyvault import SdkKeyVault, keyvault_error
from secretsboot.backends.kubernetes import kubernetes_error
from secretsboot.backends.vault import SdkVault, vault_error
from secretsboot.contract import AzureConfig, VaultAuthConfig, VaultConfig
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.refs import Ref

KV = Ref.parse("keyvault://kv-shop/db-password")
VREF = Ref.parse("vault://secret/shop/db#password")
K8S = Ref.parse("k8s://db#password")


def kv_body(code: str, inner: str | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": "m"}
    if inner:
        err["innererror"] = {"code": inner}
    return {"error": err}


@pytest.mark.parametrize(
    ("status", "body", "kind", "words"),
    [
        (404, kv_body("SecretNotFound"), NotFoundError, "not found in Key Vault kv-shop"),
        (403, kv_body("Forbidden", "ForbiddenByRbac"), PropagationPendingError, "Secrets User"),
        (403, kv_body("Forbidden", "ForbiddenByPolicy"), PropagationPendingError, "access policy"),
        (403, None, PropagationPendingError, "no 'Key Vault Secrets User' role and no access"),
        (401, kv_body("Unauthorized"), DeniedError, "rejected the token"),
        (429, kv_body("Throttled"), UnavailableError, "429"),
        (503, None, UnavailableError, "503"),
        (400, kv_body("BadParameter"), BadInputError, "BadParameter"),
    ],
)
def test_keyvault_table(status: int, body: Any, kind: type, words: str) -> None:
    err = keyvault_error(status, body, KV, "workload identity abc", retry_after=2)
    assert type(err) is kind
    assert words in str(err)
    if status == 403:
        assert "Key Vault kv-shop denied workload identity abc" in str(err)
    if isinstance(err, UnavailableError):
        assert err.retry_after == 2


@pytest.mark.parametrize(
    ("status", "body", "login", "kind", "words"),
    [
        (403, {"errors": ["permission denied"]}, False, DeniedError, "policy"),
        (404, {"errors": []}, False, NotFoundError, "not found"),
        (503, {"errors": ["Vault is sealed"]}, False, UnavailableError, "sealed"),
        (429, None, False, UnavailableError, "429"),
        (400, {"errors": ['invalid role name "x"']}, True, DeniedError, "create the Vault role"),
        (403, {"errors": ["service account name not authorized"]}, True, DeniedError, "provision"),
        (400, {"errors": ["bad"]}, False, BadInputError, "bad"),
    ],
)
def test_vault_table(status: int, body: Any, login: bool, kind: type, words: str) -> None:
    err = vault_error(status, body, str(VREF), "Vault role 'shop'", login=login)
    assert type(err) is kind
    assert words in str(err)


@pytest.mark.parametrize(
    ("status", "kind", "words"),
    [
        (404, NotFoundError, "Secret ns/db not found"),
        (403, DeniedError, "add a Role with 'get' on secrets/db"),
        (401, DeniedError, "expired"),
        (500, UnavailableError, "500"),
        (429, UnavailableError, "429"),
        (422, BadInputError, "422"),
    ],
)
def test_kubernetes_table(status: int, kind: type, words: str) -> None:
    err = kubernetes_error(status, K8S, "ns", "service account x")
    assert type(err) is kind
    assert words in str(err)


# ---- SDK error shapes (hvac and azure-core over requests) ------------------------------

VAULT = "http://127.0.0.1:8200"


def sdk_vault() -> SdkVault:
    cfg = VaultConfig(address=VAULT, auth=VaultAuthConfig(method="kubernetes", role="shop"))
    return SdkVault(
        cfg, lambda timeout: ("auth/kubernetes/login", {"role": "shop", "jwt": "j"}), "who"
    )


@responses.activate
@pytest.mark.parametrize(
    ("status", "kind"),
    [(403, DeniedError), (404, NotFoundError), (429, UnavailableError), (503, UnavailableError),
     (500, UnavailableError), (400, BadInputError)],
)  # fmt: skip
def test_hvac_errors_map_like_the_lean_client(status: int, kind: type) -> None:
    responses.post(f"{VAULT}/v1/auth/kubernetes/login", json={"auth": {"client_token": "t"}})
    responses.get(f"{VAULT}/v1/secret/data/shop/db", status=status, json={"errors": ["x"]})
    responses.post(f"{VAULT}/v1/auth/token/revoke-self", status=204)
    store = sdk_vault()
    with pytest.raises(kind):
        store.get(VREF, 5)
    store.close()
    assert responses.calls[-1].request.url.endswith("/v1/auth/token/revoke-self")


@responses.activate
def test_hvac_reads_kv2_and_login_denial() -> None:
    responses.post(f"{VAULT}/v1/auth/kubernetes/login", json={"auth": {"client_token": "t"}})
    responses.get(
        f"{VAULT}/v1/secret/data/shop/db", json={"data": {"data": {"password": "CANARY-h"}}}
    )
    responses.post(f"{VAULT}/v1/auth/token/revoke-self", status=204)
    store = sdk_vault()
    assert store.get(VREF, 5).reveal() == "CANARY-h"
    store.close()
    responses.replace(
        responses.POST, f"{VAULT}/v1/auth/kubernetes/login", status=400,
        json={"errors": ["invalid role name \"shop\""]},
    )  # fmt: skip
    with pytest.raises(DeniedError, match="Vault login"):
        sdk_vault().get(VREF, 5)


class StaticCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken("token", 2**31)

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("token", 2**31)


KV_URL = "https://kv-shop.vault.azure.net"


@responses.activate
@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (404, kv_body("SecretNotFound"), {}, NotFoundError),
        (403, kv_body("Forbidden", "ForbiddenByRbac"), {}, PropagationPendingError),
        (429, kv_body("Throttled"), {"Retry-After": "7"}, UnavailableError),
        (503, None, {}, UnavailableError),
    ],
)
def test_secret_client_errors_map_like_the_lean_client(
    status: int, body: Any, headers: dict[str, str], kind: type
) -> None:
    responses.get(f"{KV_URL}/secrets/db-password/", status=status, json=body, headers=headers)
    store = SdkKeyVault(AzureConfig(key_vaults={"kv-shop": KV_URL}), StaticCredential(), "wi x")
    with pytest.raises(kind) as info:
        store.get(KV, 5)
    store.close()
    assert type(info.value) is kind
    if status == 429:
        assert info.value.retry_after == 7  # type: ignore[attr-defined]
