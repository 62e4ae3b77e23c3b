"""Write a large JSON document to a stream without building it (or its text) in memory.

>>> import io
>>> out = io.StringIO()
>>> write_json({"schema": "v1", "items": Stream(iter([{"a": 1}, {"b": [2, 3]}]))}, out)
>>> print(out.getvalue(), end="")
{
"schema":"v1",
"items":[
{"a":1},
{"b":[2,3]}
]
}

A :class:`Stream` stands for a JSON array whose items come from an iterator (a
generator of per-workload or per-finding documents): each item is encoded by
CPython's C encoder (``json.JSONEncoder`` without ``indent``; with ``indent`` the
pure-Python one runs, 3-4x slower) and written on its own line, a few hundred
items per ``write``. Containers holding a Stream are written one member per line;
everything else compactly. So the report's text is never held whole (451 MB at
100,000 workloads), the output stays line-diffable (one finding per line), and the
same bytes come out whatever the size of the audit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

CHUNK_ITEMS = 256  # items per write: few calls, little text held

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False)


class Stream:
    """A JSON array produced item by item (see the module docstring); items hold no Stream."""

    __slots__ = ("encoded", "items")

    def __init__(self, items: Iterable[Any], *, encoded: bool = False) -> None:
        self.items: Iterator[Any] = iter(items)
        self.encoded = encoded  # the items are JSON text already (:func:`encode` d elsewhere)


def _open(value: Any) -> bool:
    """Does ``value`` hold a Stream (so it is written member by member)?"""
    if isinstance(value, Stream):
        return True
    if isinstance(value, dict):
        return any(_open(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_open(v) for v in value)
    return False


def encode(value: Any) -> str:
    """``value`` as compact JSON (the C encoder), non-ASCII kept as is."""
    return _ENCODER.encode(value)


def write_json(value: Any, stream: TextIO) -> None:
    """Write ``value`` (plain JSON data with :class:`Stream` arrays in it) and a newline."""
    _write(value, stream)
    stream.write("\n")


def _write(value: Any, stream: TextIO) -> None:
    if isinstance(value, Stream):
        _write_stream(value, stream)
    elif not _open(value):
        stream.write(encode(value))
    elif isinstance(value, dict):
        stream.write("{\n")
        for i, (key, member) in enumerate(value.items()):
            if i:
                stream.write(",\n")
            stream.write(encode(str(key)) + ":")
            _write(member, stream)
        stream.write("\n}")
    else:
        stream.write("[\n")
        for i, member in enumerate(value):
            if i:
                stream.write(",\n")
            _write(member, stream)
        stream.write("\n]")


def _write_stream(value: Stream, stream: TextIO) -> None:
    chunk: list[str] = []
    count = 0
    encoded = value.encoded
    for item in value.items:
        chunk.append(item if encoded else encode(item))
        count += 1
        if len(chunk) >= CHUNK_ITEMS:
            stream.write(("[\n" if count == len(chunk) else ",\n") + ",\n".join(chunk))
            chunk.clear()
    if chunk:
        stream.write(("[\n" if count == len(chunk) else ",\n") + ",\n".join(chunk))
    stream.write("\n]" if count else "[]")
