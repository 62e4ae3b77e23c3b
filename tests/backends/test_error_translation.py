"""One status -> error map per system (secretsboot.transport.status): tables of
status/body -> our tree, with Azure's current codes. The official SDKs agree with
these maps against the sandbox: tests/backends/test_oracle.py."""

from __future__ import annotations

from typing import Any

import pytest

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    UnavailableError,
)
from secretsboot.refs import Ref
from secretsboot.transport.status import (
    entra_code,
    entra_error,
    keyvault_error,
    kubernetes_error,
    vault_error,
)

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
        (403, kv_body("Forbidden", "AccessDenied"), PropagationPendingError, "access policy"),
        (403, kv_body("Forbidden", "ForbiddenByFirewall"), DeniedError, "network rules"),
        (403, kv_body("Forbidden", "SecretDisabled"), DeniedError, "is disabled"),
        (
            403,
            {"error": {"code": "Forbidden", "innerError": {"code": "SecretDisabled"}}},
            DeniedError,
            "enable it",
        ),
        (403, None, PropagationPendingError, "no 'Key Vault Secrets User' role and no access"),
        (401, kv_body("Unauthorized"), DeniedError, "rejected the token"),
        (429, kv_body("Throttled"), UnavailableError, "429"),
        (503, None, UnavailableError, "503"),
        (400, kv_body("BadParameter"), BadInputError, "BadParameter"),
    ],
)
def test_keyvault_table(status: int, body: Any, kind: type, words: str) -> None:
    err = keyvault_error(status, body, KV.store, KV.path, "workload identity abc", retry_after=2)
    assert type(err) is kind
    assert words in str(err)
    if kind is PropagationPendingError:
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
        # Vault's azure auth refuses a token or binding with 500, an internal error too
        (500, {"errors": ["service principal not authorized: 1b2c"]}, True, DeniedError, "1b2c"),
        (500, {"errors": ["oidc: token is expired (Token Expiry: x)"]}, True, DeniedError, "oidc"),
        (500, {"errors": ["internal error"]}, True, UnavailableError, "500"),
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
    err = kubernetes_error(status, "ns", K8S.store, "service account x")
    assert type(err) is kind
    assert words in str(err)


SUBJECT = "system:serviceaccount:shop:orders"


def aad(code: int, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"error": "invalid_client", "error_codes": [code],
                    "error_description": f"AADSTS{code}: message\r\nTrace ID: x"}  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "kind", "words"),
    [
        (aad(70021), PropagationPendingError, "AADSTS70021: none matches"),
        (aad(700211), PropagationPendingError, "AADSTS700211: none has the token's issuer"),
        (aad(700212), PropagationPendingError, "AADSTS700212: none has the token's audience"),
        (aad(700213, 401), PropagationPendingError, "AADSTS700213: none has the token's subject"),
        (aad(7002138), DeniedError, "only when case is ignored"),
        (aad(700016), DeniedError, "AADSTS700016"),
        (aad(7000215, 401), DeniedError, "check the client id"),
        ((429, {}), UnavailableError, "429"),
        ((503, None), UnavailableError, "503"),
        ((400, {"error": "invalid_request"}), DeniedError, "invalid_request"),
    ],
)
def test_entra_table(reply: tuple[int, Any], kind: type, words: str) -> None:
    err = entra_error(reply[0], reply[1], "workload identity c1", SUBJECT)
    assert type(err) is kind
    assert words in str(err)
    if kind is PropagationPendingError or "case" in words:
        assert SUBJECT in str(err)


def test_entra_code_from_the_description_alone() -> None:
    # older replies (and azure-identity's message) carry the code only in the text
    assert entra_code({"error_description": "AADSTS700213: No matching ..."}) == 700213
    assert entra_code({"error": "invalid_client"}) is None
    assert entra_code(None) is None
