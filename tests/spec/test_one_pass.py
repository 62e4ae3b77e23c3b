"""Issue 13, finding 4: every problem of a spec in one pass, as text and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secretsboot.cli import main
from secretsboot.errors import SpecErrors
from secretsboot.spec import load_spec_text

SPEC = """\
apiVersion: secretsboot/v1
kind: SecretsbootSpec
azure:
  tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
  subscriptionId: 3f2a9c61-5b7e-4d2a-9d6e-1c0b8a7f4e21
  resourceGroup: rg
  location: eastus2
  oidcIssuer: https://issuer.example/
  keyVaults:
    - name: kv-orders
kubernetes:
  namespace: shop
services:
  - name: orders
    identity: workload-identity
    secrets:
      - name: db
        from: keyvault://kv-order/db-password
      - name: api
        from: kv://kv-orders/api
      - name: cert
        from: keyvault://kv-orders/cert
        mode: "0640"
        colour: blue
  - name: orders
    identity: none
    secrets:
      - name: token
        from: k8s://tokens#token
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SpecErrors) as info:
        load_spec_text(text, "s.yaml")
    return str(info.value).splitlines()


def test_field_uri_and_cross_reference_errors_come_together_with_lines_and_fixes() -> None:
    lines = problems(SPEC)
    assert lines == [
        "s.yaml:18 services[0].secrets[0].from: Key Vault 'kv-order' is not declared; "
        "did you mean 'kv-orders'?",
        "s.yaml:20 services[0].secrets[1].from: unknown scheme 'kv'; "
        "expected keyvault://, vault:// or k8s://",
        "s.yaml:24 services[0].secrets[2].colour: unknown field 'colour'; "
        "known fields: env, fallback, file, from, mode, name",
        "s.yaml:25 services[1].name: duplicate service 'orders'; service names must be unique",
    ]


def test_a_bad_field_does_not_invent_errors_from_its_default() -> None:
    # `identiy` is unknown: the service's identity is not known, so its checks wait
    text = SPEC.replace("    identity: none\n", "    identiy: none\n")
    lines = problems(text)
    assert any("unknown field 'identiy'" in line for line in lines)
    assert not any("services[1].identity" in line for line in lines)


@pytest.mark.parametrize("mode", ['"0777"', '"0606"', "0400", '"0999"'])
def test_modes_are_validated_as_fetch_validates_them(mode: str) -> None:
    text = SPEC.replace('mode: "0640"', f"mode: {mode}").replace("        colour: blue\n", "")
    text = text.replace("kv-order/", "kv-orders/").replace("kv://", "keyvault://")
    text = text.replace(
        "  - name: orders\n    identity: none", "  - name: tokens\n    identity: none"
    )
    lines = problems(text)
    assert len(lines) == 1 and "services[0].secrets[2].mode" in lines[0], lines


def test_spec_validate_json_prints_every_error_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "secretsboot.yaml"
    spec.write_text(SPEC)
    assert main(["spec", "validate", str(spec), "-o", "json"]) == 2
    doc = json.loads(capsys.readouterr().out)
    assert doc["valid"] is False
    assert [e["field"] for e in doc["errors"]] == [
        "services[0].secrets[0].from",
        "services[0].secrets[1].from",
        "services[0].secrets[2].colour",
        "services[1].name",
    ]
    first = doc["errors"][0]
    assert first["file"] == str(spec) and first["line"] == 18
    assert first["problem"] == "Key Vault 'kv-order' is not declared"
    assert first["fix"] == "did you mean 'kv-orders'?"
