"""Random and malformed documents: only our spec error ever escapes the loader."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secretsboot.errors import SpecError
from secretsboot.spec import load_spec_text

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=30)
)
keys = st.sampled_from(
    [
        "apiVersion",
        "kind",
        "services",
        "azure",
        "vault",
        "kubernetes",
        "name",
        "secrets",
        "from",
        "fallback",
        "identity",
        "delivery",
        "file",
        "mode",
        "env",
        "namespace",
        "keyVaults",
        "auth",
        "metadata",
        "x",
    ]
)
documents: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(keys, st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=25,
)


def _load(text: str) -> None:
    try:
        load_spec_text(text, "fuzz.yaml")
    except SpecError as exc:
        assert str(exc).startswith("fuzz.yaml")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_structures_raise_only_spec_errors(doc: Any) -> None:
    _load(yaml.safe_dump(doc))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_random_text_raises_only_spec_errors(text: str) -> None:
    _load(text)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(keys, documents, max_size=6))
def test_spec_shaped_documents(doc: dict[str, Any]) -> None:
    doc = {"apiVersion": "secretsboot/v1", "kind": "SecretsbootSpec", **doc}
    _load(yaml.safe_dump(doc))


def test_alias_bomb_is_refused_quickly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n"
    prev = "a"
    for i in range(12):
        bomb += f"b{i}: &b{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"
        prev = f"b{i}"
    _load(bomb)
