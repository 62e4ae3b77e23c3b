"""Reading and writing manifest streams: YAML documents in, YAML (or a JSON List) out.

>>> docs = load_documents("a: 1\\n---\\n---\\nb: [x]\\n")
>>> docs
[{'a': 1}, {'b': ['x']}]
>>> print(dump_documents(docs), end="")
---
a: 1
---
b:
  - x
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import yaml

from secretsboot._yaml import SafeLoader
from secretsboot.errors import BadInputError


def load_documents(text: str, source: str = "<stdin>") -> list[Any]:
    """Every YAML document of ``text`` (empty documents dropped), as plain data.

    Raises :class:`BadInputError` naming ``source`` and the line on bad YAML.
    """
    try:
        docs = list(yaml.load_all(text, Loader=SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInputError(f"{where}: invalid YAML: {problem}", hint="fix the YAML") from None
    out: list[Any] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise BadInputError(
                f"{source}: document {i + 1} is not a Kubernetes object (a YAML mapping)",
                hint="pass Kubernetes manifests",
            )
        out.append(doc)
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, keys in their order, lists indented under their key like kubectl."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def dump_documents(documents: Iterable[Any]) -> str:
    """Documents as one multi-document YAML stream (``---`` between documents)."""
    return yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        explicit_start=True,
    )


def dump_json_list(documents: Iterable[Any]) -> str:
    """Documents as one ``kind: List`` JSON object, as ``kubectl get -o json`` prints many."""
    items = list(documents)
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items}, indent=2) + "\n"
