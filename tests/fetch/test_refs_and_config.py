"""FetchConfig: loading (YAML, JSON, environment), validation messages, from_spec, to_yaml."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from secretsboot.contract import FetchConfig, resolve_config
from secretsboot.errors import BadInputError
from secretsboot.refs import Ref, file_mode, safe_file_name
from secretsboot.spec import SourceRef, load_spec
from secretsboot.spec import safe_file_name as spec_safe_file_name

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drone-delivery.yaml"

URIS = [
    ("keyvault://kv-dd-delivery/delivery-cosmosdb-key", True),
    ("keyvault://kv1/name@0123abcd", True),
    ("keyvault://k/name", False),
    ("keyvault://kv-dd/na_me", False),
    ("keyvault://kv-dd/name@ver-1", False),
    ("vault://secret/orders/db#password", True),
    ("vault://secret/a/../b#k", False),
    ("vault://secret/#k", False),
    ("vault://secret/a", False),
    ("vault://se cret/a#k", False),
    ("k8s://orders-db#password", True),
    ("k8s://Orders#password", False),
    ("k8s://orders#", False),
    ("kv://x/y", False),
    ("no-scheme", False),
]


def test_the_spec_and_the_init_path_share_one_parser() -> None:
    # one implementation, so the spec can never accept what the init container refuses
    assert SourceRef is Ref
    assert spec_safe_file_name is safe_file_name


@pytest.mark.parametrize(("uri", "valid"), URIS)
def test_source_uris(uri: str, valid: bool) -> None:
    if not valid:
        with pytest.raises(ValueError):
            Ref.parse(uri)
        return
    assert str(Ref.parse(uri)) == uri


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("db", True),
        ("a.b_c-d", True),
        ("..", False),
        (".", False),
        ("../x", False),
        ("a/b", False),
        ("x\x00", False),
        ("", False),
        ("a\\b", False),
        ("...", False),
        ("..data", False),  # the output folder's own entries start with ".."
        ("db\n", False),  # "$" would have let a trailing newline through
    ],
)
def test_file_names(name: str, valid: bool) -> None:
    if valid:
        assert safe_file_name(name) == name
    else:
        with pytest.raises(ValueError):
            safe_file_name(name)


def _write(tmp_path: Path, text: str, name: str = "fetch.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = """
apiVersion: secretsboot/v1
kind: FetchConfig
service: delivery
namespace: backend-dev
serviceAccount: delivery
identity: workload-identity
azure:
  tenantId: 72f988bf-86f1-41af-91ab-2d7cd011db47
  keyVaults: {kv-dd-delivery: https://kv-dd-delivery.vault.azure.net}
vault:
  address: https://vault.example:8200
  auth: {method: kubernetes, role: delivery}
secrets:
  - {name: cosmosdb-key, from: "keyvault://kv-dd-delivery/delivery-cosmosdb-key", mode: "0440"}
  - name: conn
    from: vault://secret/delivery/db#conn
    fallback: ["k8s://legacy#conn"]
    env: DB_CONN
output: {dotenv: app.env, json: null}
"""


def test_load_yaml_with_env_filling_gaps(tmp_path: Path) -> None:
    env = {"AZURE_CLIENT_ID": "cid", "AZURE_AUTHORITY_HOST": "https://login.example/"}
    cfg = FetchConfig.load(_write(tmp_path, GOOD), env)
    assert cfg.service == "delivery"
    assert cfg.azure is not None
    assert cfg.azure.client_id == "cid"
    assert cfg.azure.authority_host == "https://login.example"
    assert cfg.azure.vault_url("KV-DD-DELIVERY") == "https://kv-dd-delivery.vault.azure.net"
    assert cfg.vault is not None and cfg.vault.auth.mount_path == "kubernetes"
    assert cfg.secrets[0].mode == 0o440
    assert [str(r) for r in cfg.secrets[1].sources] == [
        "vault://secret/delivery/db#conn",
        "k8s://legacy#conn",
    ]
    assert cfg.secrets[1].file_name is None and cfg.secrets[1].env_var == "DB_CONN"
    assert cfg.secrets[0].env_var == "COSMOSDB_KEY"
    assert cfg.dotenv == "app.env"


def test_round_trip_through_yaml_and_json(tmp_path: Path) -> None:
    cfg = FetchConfig.load(_write(tmp_path, GOOD), {})
    again = FetchConfig.load(_write(tmp_path, cfg.to_yaml(), "again.yaml"), {})
    assert again.to_dict() == cfg.to_dict()
    import json

    as_json = FetchConfig.load(_write(tmp_path, json.dumps(cfg.to_dict()), "c.json"), {})
    assert as_json.to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("edit", "field", "words"),
    [
        (("secrets", 0, "from"), "secrets[0].from", "keyvault://VAULT/NAME"),
        (("secrets", 0, "name"), "secrets[0].name", "could escape"),
        (("secrets", 0, "mode"), "secrets[0].mode", "octal"),
        (("identity",), "identity", "unknown identity"),
        (("vault", "auth", "method"), "vault.auth.method", "unknown method"),
        (("colour",), "colour", "unknown field"),
    ],
)
def test_bad_fields_are_named(
    tmp_path: Path, edit: tuple[str | int, ...], field: str, words: str
) -> None:
    doc = yaml.safe_load(GOOD)
    target = doc
    for part in edit[:-1]:
        target = target[part]
    target[edit[-1]] = {
        "from": "keyvault://x/../../etc",
        "name": "../passwd",
        "mode": "0999",
        "identity": "magic",
        "method": "ldap",
        "colour": "blue",
    }[str(edit[-1])]
    path = _write(tmp_path, yaml.safe_dump(doc))
    with pytest.raises(BadInputError) as info:
        FetchConfig.load(path, {})
    assert f"{path} {field}:" in str(info.value)
    assert words in str(info.value)


def test_keyvault_needs_https_and_an_identity(tmp_path: Path) -> None:
    doc = yaml.safe_load(GOOD)
    doc["azure"]["keyVaults"]["kv-dd-delivery"] = "http://kv"
    with pytest.raises(BadInputError, match="https"):
        FetchConfig.from_dict(doc, "x.yaml")
    doc = yaml.safe_load(GOOD)
    doc["identity"] = "none"
    with pytest.raises(BadInputError, match="need an Azure identity"):
        FetchConfig.from_dict(doc, "x.yaml")


def test_duplicate_files_are_refused() -> None:
    doc = yaml.safe_load(GOOD)
    doc["secrets"].append({"name": "other", "file": "cosmosdb-key", "from": "k8s://a#b"})
    with pytest.raises(BadInputError, match="'other' and 'cosmosdb-key' both write 'cosmosdb-key'"):
        FetchConfig.from_dict(doc, "x.yaml")


def _one_secret(**fields: object) -> str:
    item = ", ".join(
        f"{k}: {v}" for k, v in {"name": "db", "from": '"k8s://a#b"', **fields}.items()
    )
    return f"secrets: [{{{item}}}]\n"


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (_one_secret(mode="0400"), "secrets[0].mode", 'quote it, mode: "0400"'),
        (_one_secret(mode="400"), "secrets[0].mode", "quoted octal string"),
        (_one_secret(mode='"0644"'), "secrets[0].mode", "allowWorldReadable"),
        (_one_secret(mode='"0777"'), "secrets[0].mode", "lets group members write"),
        (_one_secret(mode='"0460"'), "secrets[0].mode", "lets group members write"),
        (_one_secret(mode='"0040"'), "secrets[0].mode", "owner read"),
        (_one_secret(mode='"04400"'), "secrets[0].mode", "not an octal file mode"),
        (_one_secret(mode='"0400\\n"'), "secrets[0].mode", "not an octal file mode"),
        (_one_secret(env="PATH"), "secrets[0].env", "$PATH is reserved"),
        (_one_secret(env="LD_PRELOAD"), "secrets[0].env", "$LD_PRELOAD is reserved"),
        (_one_secret(env="PYTHONPATH"), "secrets[0].env", "reserved"),
        (_one_secret(env='"DB\\n"'), "secrets[0].env", "not an environment variable name"),
        (_one_secret(name="home"), "secrets[0].name", "'home' sets $HOME in `run`"),
        (_one_secret(name='"db\\n"'), "secrets[0].name", "could escape"),
        (
            "secrets: [{name: db-pw, from: 'k8s://a#b'}, {name: db.pw, from: 'k8s://a#c'}]",
            "secrets[1].name",
            "'db.pw' and 'db-pw' both set $DB_PW",
        ),
        (
            "secrets: [{name: a, from: 'k8s://a#b', env: X}, {name: b, from: 'k8s://a#c', env: X}]",
            "secrets[1].env",
            "'b' and 'a' both set $X",
        ),
        (_one_secret() + "allowWorldReadable: [nope]\n", "allowWorldReadable", "names no secret"),
    ],
)
def test_unsafe_modes_and_env_names_are_refused_with_the_fix(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    path = _write(tmp_path, "identity: none\n" + text)
    with pytest.raises(BadInputError) as info:
        FetchConfig.load(path, {})
    message = str(info.value)
    assert f"{path} {field}: " in message and words in message
    assert "\n" not in message  # one line


def test_allow_world_readable_names_the_secrets_that_may_be_0444(tmp_path: Path) -> None:
    text = "identity: none\nallowWorldReadable: [db]\n" + _one_secret(mode='"0444"')
    config = FetchConfig.load(_write(tmp_path, text), {})
    assert config.secrets[0].mode == 0o444
    again = FetchConfig.from_dict(config.to_dict(), "again")
    assert again.allow_world_readable == ("db",) and again.secrets[0].mode == 0o444


def test_file_mode_is_reusable_by_the_spec() -> None:
    assert file_mode("0440") == 0o440 and file_mode("400") == 0o400
    assert file_mode("0444", world_readable=True) == 0o444
    for bad in (256, "0644", "0600\n", True, None):
        with pytest.raises(ValueError):
            file_mode(bad)


def test_from_env_alone() -> None:
    env = {
        "SECRETSBOOT_SECRETS": "db=vault://secret/orders/db#pw|k8s://db#pw; api=keyvault://kv1/api",
        "VAULT_ADDR": "http://127.0.0.1:8200",
        "SECRETSBOOT_VAULT_ROLE": "orders",
        "SECRETSBOOT_VAULT_AUTH": "jwt",
        "AZURE_FEDERATED_TOKEN_FILE": "/t",
        "AZURE_TENANT_ID": "tid",
        "SECRETSBOOT_KEYVAULT_KV1": "https://127.0.0.1:9443",
    }
    cfg = FetchConfig.from_env(env)
    assert [s.name for s in cfg.secrets] == ["db", "api"]
    assert len(cfg.secrets[0].sources) == 2
    assert cfg.identity == "workload-identity"
    assert cfg.vault is not None and cfg.vault.auth.method == "jwt"
    assert cfg.vault.auth.role == "orders"
    assert cfg.azure is not None and cfg.azure.vault_url("kv1") == "https://127.0.0.1:9443"
    assert cfg.azure.tenant_id == "tid"


def test_resolve_config_order(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    assert resolve_config(None, {"SECRETSBOOT_CONFIG": str(path)}).service == "delivery"
    with pytest.raises(BadInputError, match="no secrets configured"):
        resolve_config(None, {})
    with pytest.raises(BadInputError, match="no such config file"):
        resolve_config(str(tmp_path / "absent.yaml"), {})


def test_service_principal_secret_selects_that_identity(tmp_path: Path) -> None:
    cfg = FetchConfig.load(_write(tmp_path, GOOD), {"AZURE_CLIENT_SECRET": "x"})
    assert cfg.identity == "service-principal"


def test_from_spec_matches_the_example() -> None:
    spec = load_spec(EXAMPLE)
    cfg = FetchConfig.from_spec(spec, "package")
    assert cfg.namespace == "backend-dev"
    assert cfg.identity == "workload-identity"
    names = [s.name for s in cfg.secrets]
    assert names == [s.name for s in spec.service("package").secrets]
    assert [str(r) for r in cfg.secrets[0].sources][1] == "k8s://package-secrets#mongodb-connection"
    assert cfg.azure is not None and "kv-dd-shared" in cfg.azure.key_vaults
    # what provision writes is what fetch reads back
    assert FetchConfig.from_dict(yaml.safe_load(cfg.to_yaml()), "cm").to_dict() == cfg.to_dict()
    ingestion = FetchConfig.from_spec(spec, "ingestion")
    assert ingestion.vault is not None and ingestion.vault.auth.role == "ingestion"
    assert ingestion.azure is None


def test_from_spec_carries_the_vault_azure_resource(tmp_path: Path) -> None:
    """Vault compares the Entra token's audience to its azure mount's resource
    verbatim: the pod must ask for the resource the spec names."""
    text = (EXAMPLE.parent / "drone-delivery-vault-azure.yaml").read_text()
    assert "resource: https://management.azure.com/\n" in text
    custom = tmp_path / "spec.yaml"
    custom.write_text(text.replace(
        "resource: https://management.azure.com/\n", "resource: https://vault.corp.example/\n"
    ))  # fmt: skip
    for path, resource in [
        (EXAMPLE.parent / "drone-delivery-vault-azure.yaml", "https://management.azure.com/"),
        (custom, "https://vault.corp.example/"),
    ]:
        cfg = FetchConfig.from_spec(load_spec(path), "ingestion")
        assert cfg.vault is not None and cfg.vault.auth.method == "azure"
        assert cfg.vault.auth.resource == resource
        again = FetchConfig.from_dict(yaml.safe_load(cfg.to_yaml()), "cm")
        assert again.vault is not None and again.vault.auth.resource == resource


def test_records_shim_behaves_like_typing_named_tuple() -> None:
    from secretsboot._records import NamedTuple as Shim

    class Point(Shim):
        """A point."""

        x: int
        y: int = 0

        @property
        def norm1(self) -> int:
            return abs(self.x) + abs(self.y)

        def __str__(self) -> str:
            return f"<{self.x},{self.y}>"

    p = Point(3, -4)
    assert (p.x, p.y, p.norm1, str(p), repr(Point(1))) == (3, -4, 7, "<3,-4>", "Point(x=1, y=0)")
    assert p._replace(y=1) == Point(3, 1) and Point.__doc__ == "A point."
    with pytest.raises(AttributeError):
        p.x = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="defaults must come last"):

        class Bad(Shim):
            a: int = 1
            b: int
