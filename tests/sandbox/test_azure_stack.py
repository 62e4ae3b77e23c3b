"""The Azure fakes inside the whole sandbox: a service-account token minted by the
Kubernetes fake is exchanged at the Entra fake (which fetches the cluster's OIDC
discovery document and JWKS over HTTPS) and reads a Key Vault secret."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER
from secretsboot.sandbox.stack import Sandbox

CANARY = "CANARY-stack-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    sandbox = Sandbox.start(tmp_path_factory.mktemp("sb"), components=("kubernetes", "azure"))
    try:
        yield sandbox
    finally:
        sandbox.stop()


def test_kubernetes_token_reads_key_vault_secret(sb: object, tmp_path: Path) -> None:
    kube, az = sb.kube, sb.azure  # type: ignore[attr-defined]
    kube.store.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    kube.store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "orders", "namespace": "shop"},
        }
    )
    az.create_keyvault("stack-kv")
    az.set_secret("stack-kv", "db-password", CANARY)
    mi = az.create_identity("rg", "orders")
    az.add_federated_credential(
        mi.id, "orders-fic", kube.oidc_issuer, "system:serviceaccount:shop:orders"
    )
    az.assign_role(az.vault_id("stack-kv"), mi.principal_id, KEY_VAULT_SECRETS_USER)
    token_file = tmp_path / "azure-identity-token"
    token = kube.mint_token("shop", "orders", ["api://AzureADTokenExchange"])
    token_file.write_text(token, encoding="utf-8")

    env = sb.env()  # type: ignore[attr-defined]
    cred = WorkloadIdentityCredential(
        tenant_id=env["AZURE_TENANT_ID"],
        client_id=mi.client_id,
        token_file_path=str(token_file),
        authority=env["AZURE_AUTHORITY_HOST"],
        disable_instance_discovery=True,
        connection_verify=str(sb.ca_path),  # type: ignore[attr-defined]
    )
    client = SecretClient(
        env["SECRETSBOOT_KEYVAULT_STACK_KV"],
        cred,
        verify_challenge_resource=False,
        connection_verify=str(sb.ca_path),  # type: ignore[attr-defined]
    )
    assert client.get_secret("db-password").value == CANARY
    fetched = [u for u in az.entra.issuers.fetches if u.startswith(kube.oidc_issuer)]
    assert any(u.endswith("/.well-known/openid-configuration") for u in fetched)
