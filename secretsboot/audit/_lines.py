"""Where each field of an object is written: document cutting and the line index.

>>> list(chunks(["a: 1\\n", "---\\n", "b: 2\\n"]))
[(0, 1, 'a: 1\\n'), (1, 2, '---\\nb: 2\\n')]

A file is cut into documents at ``---``/``...`` lines (:func:`chunks`, where YAML
itself ends a document, even inside a block scalar), so a broken document costs
only itself. Line numbers of fields are not kept as a map per object (that would
double the memory): :class:`LazyLines` walks the document's *entry lines* (one
small int per key and item, kept by the parser) alongside the object's body, or
reads the document again from its source when the entries cannot be trusted
(aliases, merge keys, duplicate keys, JSON, List items given a kind).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import yaml

from secretsboot.audit.model import FieldPath


def entry_count(node: Any) -> int:
    """How many entry lines ``node``'s subtree recorded (one per key and per item)."""
    t = type(node)
    if t is dict:
        values: Iterable[Any] = node.values()
    elif t is list:
        values = node
    else:
        return 0
    count = len(node)
    for v in values:
        tv = type(v)
        if tv is dict or tv is list:
            count += entry_count(v)
    return count


def entry_of(body: Any, path: FieldPath, base: int) -> int | None:
    """The index, in the entry lines, of ``path``'s key or item (None when absent)."""
    found = entry_path(body, path, base)
    return found[-1] if found and len(found) == len(path) else None


def entry_path(body: Any, path: FieldPath, base: int) -> list[int]:
    """The entry index of each prefix of ``path`` that the body holds, shortest first
    (one walk: the nearest written parent of a missing field is the last one)."""
    index = base
    node = body
    found: list[int] = []
    for part in path:
        if type(node) is dict:
            for k, v in node.items():
                if k == part or (type(k) is not str and str(k) == part):
                    found.append(index)
                    index += 1
                    node = v
                    break
                index += 1 + entry_count(v)
            else:
                return found
        elif type(node) is list and type(part) is int and 0 <= part < len(node):
            for item in node[:part]:
                index += 1 + entry_count(item)
            found.append(index)
            index += 1
            node = node[part]
        else:
            return found
    return found


def chunks(lines: Iterable[str]) -> Iterator[tuple[int, int, str]]:
    """(0-based first line, line count, text) of each document's text, cut at ---/... lines."""
    buf: list[str] = []
    start = 0
    for lineno, line in enumerate(lines):
        head = line[:3]
        if (head == "---" or head == "...") and (len(line) == 3 or line[3] in " \t\r\n"):
            if head == "---":
                if buf:
                    yield start, len(buf), "".join(buf)
                buf = [line]
                start = lineno
            else:
                if not buf:
                    start = lineno
                buf.append(line)
                yield start, len(buf), "".join(buf)
                buf = []
        else:
            if not buf:
                start = lineno
            buf.append(line)
    if buf:
        yield start, len(buf), "".join(buf)


class LazyLines(Mapping[FieldPath, int]):
    """The line of each field path of one object, without a map per object.

    Fast path: the document's entry lines (one small int per key and item, kept by
    the parser) and the object's body: a lookup walks the body to the entry's index.
    Otherwise (aliases, merge keys, JSON, mutated List items) the document is read
    again from its source on first use and a full map is built.
    """

    __slots__ = (
        "_base",
        "_body",
        "_count",
        "_entries",
        "_file",
        "_map",
        "_prefix",
        "_start",
        "_text",
    )

    def __init__(
        self,
        file: str,
        start: int,
        count: int,
        prefix: FieldPath = (),
        text: str | None = None,
        *,
        entries: array[int] | None = None,
        body: Any = None,
        base: int = 0,
    ) -> None:
        self._file = file
        self._start = start
        self._count = count
        self._prefix = prefix
        self._text = text
        self._entries = entries
        self._body = body
        self._base = base
        self._map: dict[FieldPath, int] | None = None

    @property
    def start(self) -> int:
        """0-based line of the document's first line in its file."""
        return self._start

    @property
    def entries(self) -> array[int] | None:
        return self._entries

    def item(self, index: int, entries: array[int] | None, body: Any, base: int) -> LazyLines:
        """The lines of ``items[index]`` of this (List) document."""
        return LazyLines(
            self._file,
            self._start,
            self._count,
            ("items", index),
            self._text,
            entries=entries,
            body=body,
            base=base,
        )

    def _load(self) -> dict[FieldPath, int]:
        if self._map is not None:
            return self._map
        self._map = {}
        text = self._text
        try:
            if text is None:
                if not self._count:
                    return self._map
                with open(self._file, encoding="utf-8-sig", errors="replace") as fh:
                    text = "".join(itertools.islice(fh, self._start, self._start + self._count))
            from secretsboot._yaml import load_all_with_lines

            docs = load_all_with_lines(text)
        except (OSError, yaml.YAMLError, ValueError, RecursionError):
            return self._map
        for _data, lines in docs[:1]:
            n = len(self._prefix)
            for path, line in lines.items():
                if path[:n] == self._prefix:
                    self._map[path[n:]] = line + self._start
        return self._map

    def nearest(self, path: FieldPath) -> int:
        """The line of ``path``, else of its nearest parent written in the document, else 0
        (:meth:`Manifest.line_of <secretsboot.audit.model.Manifest.line_of>`, one walk)."""
        entries = self._entries
        if entries is None:
            lines = self._load()
            for end in range(len(path), 0, -1):
                line = lines.get(path[:end])
                if line:
                    return line
            return 0
        for index in reversed(entry_path(self._body, path, self._base)):
            if index < len(entries):
                return self._start + entries[index] + 1
        return 0

    def __getitem__(self, path: FieldPath) -> int:
        if self._entries is not None:
            index = entry_of(self._body, path, self._base) if path else None
            if index is None or index >= len(self._entries):
                raise KeyError(path)
            return self._start + self._entries[index] + 1
        return self._load()[path]

    def __iter__(self) -> Iterator[FieldPath]:
        if self._entries is not None:
            return iter(_all_paths(self._body))
        return iter(self._load())

    def __len__(self) -> int:
        if self._entries is not None:
            return entry_count(self._body)
        return len(self._load())


def _all_paths(body: Any) -> list[FieldPath]:
    out: list[FieldPath] = []
    stack: list[tuple[FieldPath, Any]] = [((), body)]
    while stack:
        path, node = stack.pop()
        children: list[tuple[str | int, Any]] = []
        if type(node) is dict:
            children = [(str(k), v) for k, v in node.items()]
        elif type(node) is list:
            children = list(enumerate(node))
        for part, child in reversed(children):
            out.append((*path, part))
            stack.append(((*path, part), child))
    return out
