"""The inject side of the store registry, and the `inject` command's CLI language."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from secretsboot import refs
from secretsboot.cli import main
from secretsboot.inject import STORES, VAULT_TOKEN_FILE, Mounts, mounts_for
from secretsboot.inject import stores as stores_module
from secretsboot.spec import load_spec, load_spec_text

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "drone-delivery.yaml"

SPEC = """
apiVersion: secretsboot/v1
kind: SecretsbootSpec
azure:
  tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
  subscriptionId: 3f2a9c61-5b7e-4d2a-9d6e-1c0b8a7f4e21
  resourceGroup: rg-shop
  location: eastus2
  oidcIssuer: https://issuer.example/t/
  keyVaults: [{name: kv-one, mode: rbac}]
vault:
  address: https://vault:8200
  auth:
    kubernetes: {}
    jwt: {audience: vault-prod}
services:
  - {name: kv-only, identity: workload-identity, secrets: [{name: a, from: "keyvault://kv-one/a"}]}
  - {name: k8s, identity: none, secrets: [{name: a, from: "k8s://s#a"}]}
  - name: vault-k8s
    identity: none
    secrets: [{name: a, from: "vault://secret/x#a"}]
  - name: vault-jwt
    identity: none
    vaultAuth: jwt
    secrets: [{name: a, from: "vault://secret/x#a", fallback: ["k8s://s#a"]}]
"""


@pytest.mark.parametrize(
    ("service", "mounts"),
    [
        ("kv-only", Mounts()),
        ("k8s", Mounts(api_token=True)),
        ("vault-k8s", Mounts(api_token=True)),
        ("vault-jwt", Mounts(api_token=True, tokens=((VAULT_TOKEN_FILE, "vault-prod"),))),
    ],
)
def test_each_store_says_what_the_init_container_needs(service: str, mounts: Mounts) -> None:
    spec = load_spec_text(SPEC)
    assert mounts_for(spec.service(service), spec) == mounts


def test_registry_covers_every_built_in_store() -> None:
    assert set(STORES) == set(refs.STORES)


def test_a_scheme_without_an_entry_mounts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec_text(SPEC)
    monkeypatch.delitem(stores_module.STORES, "k8s")
    assert mounts_for(spec.service("k8s"), spec) == Mounts()


def test_a_new_store_is_one_registry_line(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load_spec_text(SPEC)
    monkeypatch.setitem(stores_module.STORES, "keyvault", lambda svc, spec: Mounts(True))
    assert mounts_for(spec.service("kv-only"), spec).api_token


# ----------------------------------------------------------------------------- CLI language


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    path = tmp_path / "in.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "delivery", "namespace": "backend-dev"},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            }
        )
    )
    return path


def test_out_writes_the_file_and_says_where(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "injected.yaml"
    assert main(["inject", "--file", str(EXAMPLE), "--out", str(target), str(manifest)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert f"wrote {target}" in err
    docs = list(yaml.safe_load_all(target.read_text()))
    assert docs[0]["spec"]["initContainers"][0]["name"] == "secretsboot-fetch"


def test_output_json_is_one_list(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(EXAMPLE), "-o", "json", str(manifest)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["kind"] == "List"
    assert data["items"][0]["spec"]["initContainers"][0]["name"] == "secretsboot-fetch"


def test_quiet_leaves_only_errors(
    manifest: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "q.yaml"
    argv = ["-q", "inject", "-f", str(EXAMPLE), "--out", str(target), str(manifest)]
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
    assert main(["-q", "inject", "-f", str(EXAMPLE), str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_output_is_a_format_only(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inject", "-f", str(EXAMPLE), "-o", "out.yaml", str(manifest)]) == 2
    assert "out.yaml" in capsys.readouterr().err


def test_example_spec_still_loads() -> None:
    assert load_spec(EXAMPLE).services
