"""Vault's azure auth end to end: ``examples/drone-delivery-vault-azure.yaml``, unchanged.

The sandbox is started with the spec (``sandbox up --spec``: the ``azure`` auth
mount configured for the spec's tenant and resource); ``provision`` runs as the
operator (the CLI, configured only by the sandbox's environment) and writes the
ingestion service's identity, federated credential, Vault policy and
``auth/azure/role/ingestion``; ``fetch`` then runs as the ingestion pod (its
projected tokens and the environment the workload-identity webhook gives it): an
Entra token for ARM, a login at Vault's azure method, a real OpenBao token that
OpenBao holds to the role's policy. The delivery pod, with another managed
identity, is refused with Vault's own words.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fetch_support import run_cli

from secretsboot.spec import load_spec

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "drone-delivery-vault-azure.yaml"
CANARIES = {"eventhub-key": "CANARY-eh-7c1f02", "servicebus-key": "CANARY-sb-93ad5e"}
NAMESPACE = "backend-dev"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    from secretsboot.sandbox import Sandbox

    folder = tmp_path_factory.mktemp("vault-azure-e2e")
    sb = Sandbox.start(
        folder / "sandbox",
        components=("kubernetes", "azure", "openbao"),
        spec=load_spec(EXAMPLE),
        propagation=(0.2, 1.0),  # fetch right after provision rides out the window
    )
    try:
        yield sb, folder
    finally:
        sb.stop()


def _base_env(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR")}
    env.update({"HOME": str(folder), "PYTHONDONTWRITEBYTECODE": "1"})
    return env


def _pod_env(sb: Any, folder: Path, service: str) -> dict[str, str]:
    """What the pod of ``service`` has: its projected tokens and the webhook's variables,
    plus the endpoint overrides the sandbox gives everything (no operator credential)."""
    from secretsboot.sandbox.operate import pod_token

    operator = sb.env()
    env = _base_env(folder)
    for key in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "VAULT_ADDR", "VAULT_CACERT"):
        env[key] = operator[key]
    env.update(pod_token(operator, NAMESPACE, service, out=folder / f"pod-{service}"))
    assert "AZURE_CLIENT_ID" in env, "provision annotates the service account with its client id"
    return env


@pytest.fixture(scope="module")
def provisioned(world: tuple[Any, Path]) -> Path:
    sb, folder = world
    operator = {**_base_env(folder), **sb.env()}
    admin = sb.vault.client()
    try:
        admin.secrets.kv.v2.create_or_update_secret("drone-delivery/ingestion", secret=CANARIES)
    finally:
        admin.adapter.close()
    result = run_cli(["provision", "-f", str(EXAMPLE), "--yes"], operator, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    again = run_cli(["plan", "-f", str(EXAMPLE)], operator, timeout=180)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
    assert "No changes." in again.stdout  # the azure role reads back as provision wrote it
    out = folder / "fetch-configs"  # each ConfigMap's fetch.yaml, to run fetch as the pod
    configs = run_cli(
        ["provision", "-f", str(EXAMPLE), "--yes", "--out", str(out)], operator, timeout=180
    )
    assert configs.returncode == 0, configs.stdout[-2000:] + configs.stderr[-2000:]
    return out


def test_provision_writes_the_azure_role_vault_checks(
    world: tuple[Any, Path], provisioned: Path
) -> None:
    sb, _ = world
    admin = sb.vault.client()
    try:
        role = admin.auth.azure.read_role("ingestion")
        policy = admin.sys.read_acl_policy("secretsboot-drone-delivery-azure-ingestion")
    finally:
        admin.adapter.close()
    identity = next(i for i in sb.azure.state.identities.values() if "ingestion" in i.name)
    assert role["bound_service_principal_ids"] == [identity.principal_id]
    assert role["token_policies"] == ["secretsboot-drone-delivery-azure-ingestion"]
    assert role["token_ttl"] == role["token_max_ttl"] == 300
    assert 'path "secret/data/drone-delivery/ingestion"' in policy["data"]["policy"]


def test_the_pod_fetches_through_vaults_azure_login(
    world: tuple[Any, Path], provisioned: Path
) -> None:
    sb, folder = world
    env = _pod_env(sb, folder, "ingestion")
    out = folder / "ingestion-secrets"
    before = len(sb.vault_front.app.calls)
    result = run_cli(
        ["fetch", "-c", str(provisioned / "ingestion" / "fetch.yaml"), "--out", str(out)],
        env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for name, value in CANARIES.items():
        assert (out / name).read_text() == value
        assert value not in result.stdout + result.stderr
    calls = [(c.method, c.path, c.status) for c in sb.vault_front.app.calls[before:]]
    assert ("POST", "/v1/auth/azure/login", 200) in calls
    assert ("GET", "/v1/secret/data/drone-delivery/ingestion", 200) in calls


def test_a_pod_with_another_identity_is_refused_with_vaults_error(
    world: tuple[Any, Path], provisioned: Path
) -> None:
    """The delivery pod (its own managed identity) presents its token to the ingestion role."""
    sb, folder = world
    env = _pod_env(sb, folder, "delivery")
    intruder = next(i for i in sb.azure.state.identities.values() if "delivery" in i.name)
    out = folder / "intruder-secrets"
    result = run_cli(
        ["fetch", "-c", str(provisioned / "ingestion" / "fetch.yaml"), "--out", str(out)],
        env,
        timeout=180,
    )
    assert result.returncode == 3, result.stderr[-2000:]  # denied
    assert f"service principal not authorized: {intruder.principal_id}" in result.stderr
    assert not out.exists() or not any(out.iterdir())
    for value in CANARIES.values():
        assert value not in result.stdout + result.stderr
