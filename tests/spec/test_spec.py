"""The spec loader: valid specs load, every problem names file, line, field and fix."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from secretsboot.errors import SpecError
from secretsboot.spec import (
    Identity,
    SourceRef,
    json_schema,
    load_spec,
    load_spec_text,
    safe_file_name,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "drone-delivery.yaml"

BASE = """\
apiVersion: secretsboot/v1
kind: SecretsbootSpec
kubernetes:
  namespace: shop
services:
  - name: orders
    identity: none
    secrets:
      - name: db-password
        from: k8s://orders-db#password
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "s.yaml")
    return str(info.value).splitlines()


def test_example_spec_is_valid() -> None:
    spec = load_spec(EXAMPLE)
    names = [s.name for s in spec.services]
    assert names == ["delivery", "package", "workflow", "ingestion", "dronescheduler"]
    identities = {s.name: s.identity for s in spec.services}
    assert identities["dronescheduler"] is Identity.POD_IDENTITY
    assert identities["ingestion"] is Identity.NONE
    package = spec.service("package")
    assert [str(r) for r in package.secrets[0].sources] == [
        "keyvault://kv-dd-shared/package-mongodb-connection",
        "k8s://package-secrets#mongodb-connection",
    ]
    assert spec.service("delivery").resolved_namespace(spec) == "backend-dev"


def test_minimal_spec_defaults() -> None:
    spec = load_spec_text(BASE)
    svc = spec.services[0]
    assert svc.service_account_name == "orders"
    assert svc.secrets[0].file_name == "db-password"
    assert svc.secrets[0].file_mode == 0o400


def test_misspelt_field_names_line_field_and_suggestion() -> None:
    text = BASE.replace("    identity: none", "    identiy: none")
    (line,) = errors_of(text)
    assert line.startswith("s.yaml:7 services[0].identiy: unknown field 'identiy'")
    assert "did you mean 'identity'?" in line


def test_unknown_scheme_message_matches_the_documented_form() -> None:
    text = BASE.replace("k8s://orders-db#password", "kv://orders/db")
    (line,) = errors_of(text)
    assert line == (
        "s.yaml:10 services[0].secrets[0].from: unknown scheme 'kv'; "
        "expected keyvault://, vault:// or k8s://"
    )


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "..", ".", "x\\y", "a\x00b"])
def test_path_traversal_names_are_rejected(name: str) -> None:
    text = BASE.replace("name: db-password", f"name: {json.dumps(name)}")
    lines = errors_of(text)
    assert any("services[0].secrets[0].name" in ln and "escape" in ln for ln in lines), lines


def test_path_traversal_in_file_field() -> None:
    text = BASE.replace(
        "        from: k8s://orders-db#password",
        "        from: k8s://orders-db#password\n        file: ../../etc/cron.d/x",
    )
    (line,) = errors_of(text)
    assert line.startswith("s.yaml:11 services[0].secrets[0].file:")


def test_invalid_yaml_names_file_and_line() -> None:
    (line,) = errors_of("apiVersion: secretsboot/v1\nkind: [unclosed\n")
    assert line.startswith("s.yaml:")
    assert "invalid YAML" in line


def test_wrong_api_version_says_the_fix() -> None:
    (line,) = errors_of(BASE.replace("secretsboot/v1", "secretsboot/v2"))
    assert line.startswith("s.yaml:1 apiVersion:")
    assert "set apiVersion: secretsboot/v1" in line


def test_several_errors_are_reported_together() -> None:
    text = BASE.replace("identity: none", "identity: magic").replace("k8s://", "kv://")
    lines = errors_of(text)
    assert len(lines) == 2


def test_keyvault_source_must_name_a_declared_vault() -> None:
    text = EXAMPLE.read_text().replace(
        "keyvault://kv-dd-delivery/delivery-cosmosdb-key",
        "keyvault://kv-dd-delivry/delivery-cosmosdb-key",
    )
    lines = errors_of(text)
    assert any(
        "Key Vault 'kv-dd-delivry' is not declared; did you mean 'kv-dd-delivery'?" in ln
        for ln in lines
    ), lines


def test_vault_source_needs_configured_auth() -> None:
    text = BASE + "      - name: api\n        from: vault://secret/orders#api\n"
    lines = errors_of(text)
    assert any("vault:// source needs the vault section" in ln for ln in lines)


def test_workload_identity_needs_issuer() -> None:
    lines = errors_of(BASE.replace("identity: none", "identity: workload-identity"))
    assert any("azure.oidcIssuer" in ln for ln in lines)


def test_duplicate_service_and_secret_names() -> None:
    dup = BASE + "  - name: orders\n    identity: none\n"
    assert any("duplicate service 'orders'" in ln for ln in errors_of(dup))
    dup_secret = BASE + "      - name: db-password\n        from: k8s://x#y\n"
    assert any("duplicate secret name" in ln for ln in errors_of(dup_secret))


def test_missing_file_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "nope.yaml")
    assert "no such file" in str(info.value)


def test_not_a_mapping() -> None:
    (line,) = errors_of("- a\n- b\n")
    assert "must be a YAML mapping" in line


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("keyvault://kv-one/db-pass", SourceRef("keyvault", "kv-one", "db-pass", None, None)),
        (
            "keyvault://kv-one/db-pass@0123abcd",
            SourceRef("keyvault", "kv-one", "db-pass", None, "0123abcd"),
        ),
        (
            "vault://secret/shop/orders#password",
            SourceRef("vault", "secret", "shop/orders", "password", None),
        ),
        ("k8s://orders-db#password", SourceRef("k8s", "orders-db", "", "password", None)),
    ],
)
def test_source_uris_parse_and_round_trip(uri: str, expected: SourceRef) -> None:
    ref = SourceRef.parse(uri)
    assert ref == expected
    assert str(ref) == uri


@pytest.mark.parametrize(
    "uri",
    [
        "kv://a/b",
        "keyvault://a/b",
        "keyvault://kv-one/",
        "keyvault://kv-one/a_b",
        "vault://secret/path",
        "vault://secret/../x#k",
        "vault://secret//x#k",
        "vault:///x#k",
        "k8s://Bad_Name#k",
        "k8s://name",
        "k8s://name#",
        "plain",
        "",
    ],
)
def test_bad_source_uris_are_rejected(uri: str) -> None:
    with pytest.raises(ValueError):
        SourceRef.parse(uri)


def test_safe_file_name_accepts_plain_names() -> None:
    assert safe_file_name("tls.crt") == "tls.crt"


def test_json_schema_validates_the_example() -> None:
    schema = json_schema()
    assert schema["$schema"].endswith("2020-12/schema")
    document = yaml.safe_load(EXAMPLE.read_text())
    jsonschema.validate(document, schema)
    bad = dict(document, bogus=1)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_bad_managed_identity_name_is_a_spec_error() -> None:
    text = EXAMPLE.read_text().replace(
        "managedIdentity: id-dronescheduler-legacy", "managedIdentity: 'id with spaces'"
    )
    lines = errors_of(text)
    assert any("services[4].managedIdentity" in ln for ln in lines), lines


def test_more_than_twenty_services_sharing_one_identity_is_refused() -> None:
    head = EXAMPLE.read_text().split("services:\n")[0] + "services:\n"
    body = "".join(
        f"  - name: svc{i}\n    managedIdentity: id-shared\n    secrets: []\n" for i in range(21)
    )
    lines = errors_of(head + body)
    assert any("services[20].managedIdentity" in ln and "at most 20" in ln for ln in lines), lines
