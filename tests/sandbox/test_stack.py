"""``Sandbox.start`` in process: components, environment, health, clean stop."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from secretsboot.errors import BadInputError
from secretsboot.sandbox import Sandbox

CONTRACT_ENV = {
    "KUBECONFIG",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "VAULT_CACERT",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
}
AZURE_ENV = {
    "AZURE_TENANT_ID",
    "AZURE_AUTHORITY_HOST",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
    "SECRETSBOOT_ARM_ENDPOINT",
    "SECRETSBOOT_SUBSCRIPTION_ID",
}


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.mark.openbao
def test_full_stack_starts_fast_and_stops_clean(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path / "sb") as sb:
        print(f"\nSandbox.start (kubernetes, azure, openbao): {sb.started_in:.2f} s")
        assert sb.started_in < 15.0  # target 5 s: ~0.6-1.1 s idle, up to ~3 s under heavy load
        assert sb.components == ("kubernetes", "azure", "openbao")
        env = sb.env()
        assert set(env) >= CONTRACT_ENV | AZURE_ENV
        assert env["SSL_CERT_FILE"] == env["REQUESTS_CA_BUNDLE"] == str(sb.ca_path)
        assert sb.ca_path == (tmp_path / "sb" / "pki" / "ca.pem").resolve()
        assert all(sb.health().values()), sb.health()
        sb.azure.create_keyvault("kv-stack")
        assert sb.env()["SECRETSBOOT_KEYVAULT_KV_STACK"] == sb.azure.keyvault_url("kv-stack")
        assert "keyvault-kv-stack" in sb.endpoints()
        for private in ("openbao.log", "openbao-root-token", "kubeconfig", "operator.json", "pki"):
            assert (tmp_path / "sb" / private).stat().st_mode & 0o077 == 0, private
        assert sb.vault.root_token in (tmp_path / "sb" / "openbao-root-token").read_text()
        endpoints = sb.endpoints()
        bao = sb.vault.process
    assert bao.poll() is not None  # OpenBao was terminated and reaped
    assert not (tmp_path / "sb" / "openbao-root-token").exists()
    for url in endpoints.values():
        assert _refused(url), url


def test_kubernetes_only_and_fault_stop_start(tmp_path: Path) -> None:
    with Sandbox.start(tmp_path, components=["kubernetes"]) as sb:
        assert sb.vault is None and sb.azure is None
        assert set(sb.env()) == {"KUBECONFIG", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"}
        sb.kube.faults.stop()
        assert _refused(sb.kube.url)
        sb.kube.faults.start()
        assert not _refused(sb.kube.url)
        assert sb.kube.store.exists("namespaces", "default")


@pytest.mark.parametrize("components", [["etcd"], []])
def test_bad_components(tmp_path: Path, components: list[str]) -> None:
    with pytest.raises(BadInputError):
        Sandbox.start(tmp_path, components=components)
