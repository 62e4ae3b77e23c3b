"""The Key Vault challenge check (the SDK's ``verify_challenge_resource``), in our client:
for a real Key Vault domain the challenge must name the vault host's own domain, or no
token is sent; a host outside those domains (a local fake) skips the check."""

from __future__ import annotations

import pytest

from secretsboot.backends.keyvault import (
    KEYVAULT_DOMAINS,
    challenge_scope,
    keyvault_domain,
    verify_challenge_resource,
)
from secretsboot.errors import BadInputError
from secretsboot.transport import Response


def challenge(resource: str = "", scope: str = "") -> Response:
    params = 'authorization="https://login.microsoftonline.com/tid"'
    if resource:
        params += f', resource="{resource}"'
    if scope:
        params += f', scope="{scope}"'
    return Response(401, {"www-authenticate": f"Bearer {params}"}, b"")


@pytest.mark.parametrize("domain", KEYVAULT_DOMAINS)
def test_real_domains_keep_the_check(domain: str) -> None:
    url = f"https://shop.{domain}"
    assert keyvault_domain(url) == domain
    assert verify_challenge_resource(url) is True
    assert challenge_scope(challenge(f"https://{domain}"), url, "shop") == (
        f"https://{domain}/.default"
    )


def test_a_foreign_resource_gets_no_token() -> None:
    with pytest.raises(BadInputError, match="not its own domain: no token sent"):
        challenge_scope(challenge("https://vault.azure.cn"), "https://shop.vault.azure.net", "s")
    with pytest.raises(BadInputError, match="no token sent"):
        challenge_scope(
            challenge("https://management.azure.com"), "https://shop.vault.azure.net", "s"
        )


def test_other_hosts_skip_the_check_and_use_the_challenge() -> None:
    url = "https://127.0.0.1:8443"
    assert verify_challenge_resource(url) is False
    assert challenge_scope(challenge("https://vault.azure.net"), url, "kv") == (
        "https://vault.azure.net/.default"
    )
    assert challenge_scope(challenge(scope="https://x/.default"), url, "kv") == "https://x/.default"
    assert challenge_scope(challenge(), url, "kv") == "https://vault.azure.net/.default"


def test_a_lookalike_host_is_not_a_keyvault_domain() -> None:
    assert keyvault_domain("https://shop.vault.azure.net.evil.example") is None
    assert keyvault_domain("https://evilvault.azure.net") is None
