"""CONTRIBUTING.md's "Add a secret store", done: a toy store, one new module and one
line in the store table, works from the spec through fetch with nothing else changed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from secretsboot import refs
from secretsboot.contract import FetchConfig
from secretsboot.errors import NotFoundError
from secretsboot.fetch import fetch_secrets
from secretsboot.refs import Ref
from secretsboot.spec import load_spec

# The module of the walkthrough, word for word (CONTRIBUTING.md keeps the same text).
TOY_STORE = '''
"""A toy store: secrets in a JSON file named by TOY_STORE_FILE, ``toy://BOX/NAME#KEY``."""

from __future__ import annotations

import json

from secretsboot.errors import NotFoundError, UnavailableError
from secretsboot.secret import SecretValue

SCHEME = "toy"


class ToyStore:
    scheme = SCHEME

    def __init__(self, path: str) -> None:
        self.path = path

    def _boxes(self):
        try:
            with open(self.path, encoding="utf-8") as fh:
                return json.load(fh)
        except (OSError, ValueError) as exc:
            raise UnavailableError(f"toy store {self.path} unreadable: {exc}") from None

    def get(self, ref, deadline):
        try:
            return SecretValue(self._boxes()[ref.store][ref.path][ref.key])
        except KeyError:
            raise NotFoundError(f"{ref} is not in the toy store") from None

    def version(self, ref, deadline):
        return str(hash(self.get(ref, deadline).reveal()))

    def describe_identity(self):
        return "the toy store's reader"

    def close(self, deadline=None):
        pass


def build(context):
    return ToyStore(context.env["TOY_STORE_FILE"])


FETCH_BACKEND = ToyStore
'''


@pytest.fixture
def toy_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "plugins"
    package.mkdir()
    (package / "sb_toy_store.py").write_text(TOY_STORE, encoding="utf-8")
    monkeypatch.syspath_prepend(str(package))
    monkeypatch.setitem(refs.STORES, "toy", "sb_toy_store")  # the one registry line
    data = tmp_path / "toy.json"
    data.write_text(json.dumps({"box": {"orders/db": {"password": "canary-toy-Zq81"}}}))
    monkeypatch.setenv("TOY_STORE_FILE", str(data))
    return data


def spec_file(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            apiVersion: secretsboot/v1
            kind: SecretsbootSpec
            metadata: {{name: toy}}
            kubernetes: {{namespace: shop}}
            services:
              - name: orders
                identity: none
                secrets:
                  - name: db-password
                    from: {source}
            """
        ),
        encoding="utf-8",
    )
    return path


def test_a_toy_store_works_from_spec_to_fetch(toy_store: Path, tmp_path: Path) -> None:
    spec = load_spec(spec_file(tmp_path, "toy://box/orders/db#password"))
    config = FetchConfig.from_spec(spec, "orders")
    assert config.secrets[0].sources == (Ref("toy", "box", "orders/db", "password", None),)
    # the contract round-trips through the ConfigMap text the init container reads
    fetch_yaml = tmp_path / "fetch.yaml"
    fetch_yaml.write_text(config.to_yaml(), encoding="utf-8")
    reread = FetchConfig.load(fetch_yaml, env={})
    values = fetch_secrets(reread, timeout=5, env={"TOY_STORE_FILE": str(toy_store)})
    assert values["db-password"].reveal() == "canary-toy-Zq81"
    assert "canary-toy-Zq81" not in repr(values)


def test_the_toy_store_reports_a_missing_secret_like_any_store(
    toy_store: Path, tmp_path: Path
) -> None:
    spec = load_spec(spec_file(tmp_path, "toy://box/orders/db#nope"))
    with pytest.raises(NotFoundError, match=r"toy://box/orders/db#nope"):
        fetch_secrets(FetchConfig.from_spec(spec, "orders"), timeout=5)


def test_without_its_registry_line_the_scheme_is_unknown(tmp_path: Path) -> None:
    from secretsboot.errors import SpecError

    with pytest.raises(SpecError, match="unknown scheme 'toy'"):
        load_spec(spec_file(tmp_path, "toy://box/orders/db#password"))
