"""YAML loading with line numbers, through PyYAML's C parser where present.

Spec validation wants ``file:line field``; PyYAML's plain ``load`` drops
positions, so we compose the node graph (C-accelerated) and build plain Python
data ourselves, recording the line of every mapping key and sequence item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

try:  # the libyaml-backed loader is ~10x faster; fall back silently where absent
    from yaml import CSafeLoader as SafeLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader  # type: ignore[assignment]

Path = tuple[str | int, ...]
LineMap = dict[Path, int]

__all__ = ["LineMap", "Path", "SafeLoader", "YAMLError", "load_all_with_lines", "load_with_lines"]

YAMLError = yaml.YAMLError
_SAFE = SafeLoader


MAX_DEPTH = 200
MAX_NODES = 2_000_000  # aliases can expand a small file exponentially ("billion laughs")


class _Budget:
    __slots__ = ("left", "stack")

    def __init__(self) -> None:
        self.left = MAX_NODES
        self.stack: set[int] = set()


def _construct(
    node: yaml.Node, path: Path, lines: LineMap, loader: Any, budget: _Budget | None = None
) -> Any:
    budget = budget or _Budget()
    budget.left -= 1
    if budget.left < 0:
        raise yaml.YAMLError("document too large once its aliases are expanded")
    if len(path) > MAX_DEPTH or id(node) in budget.stack:
        raise yaml.constructor.ConstructorError(
            None, None, "document nests too deeply or refers to itself", node.start_mark
        )
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
        budget.stack.add(id(node))
        try:
            return _construct_collection(node, path, lines, loader, budget)
        finally:
            budget.stack.discard(id(node))
    return loader.construct_object(node, deep=True)


def _construct_collection(
    node: yaml.Node, path: Path, lines: LineMap, loader: Any, budget: _Budget
) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                )
            child = (*path, str(key))
            lines[child] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, child, lines, loader, budget)
        return out
    return [
        _construct(item, (*path, i), lines, loader, budget) for i, item in enumerate(node.value)
    ]


def _documents(text: str) -> Iterator[tuple[Any, LineMap]]:
    loader = _SAFE(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            lines: LineMap = {}
            if node is None:
                yield None, lines
                continue
            yield _construct(node, (), lines, loader, _Budget()), lines
    finally:
        loader.dispose()


def load_with_lines(text: str) -> tuple[Any, LineMap]:
    """One YAML document as plain data, and the line of each key path.

    >>> data, lines = load_with_lines("a:\\n  b: [1, 2]\\n")
    >>> data, lines[("a", "b", 1)]
    ({'a': {'b': [1, 2]}}, 2)
    """
    docs = list(_documents(text))
    if not docs:
        return None, {}
    if len(docs) > 1:
        raise yaml.YAMLError("expected one YAML document, found several (separated by ---)")
    return docs[0]


def load_all_with_lines(text: str) -> list[tuple[Any, LineMap]]:
    """Every document of a multi-document YAML stream, each with its line map."""
    return list(_documents(text))
