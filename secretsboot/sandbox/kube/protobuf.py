"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), as
kubectl >= 1.32 sends them for its ``create`` generators and ``auth can-i``.

A body is the magic ``k8s\\x00`` then a ``runtime.Unknown`` (field 1 the
TypeMeta, field 2 the object's own protobuf). The object is turned into the JSON
the API server would have received, through the field numbers of the
``generated.proto`` files (``protoschema.py``). Go's encoder writes every
non-pointer field, empty or not; like ``omitempty`` in JSON, empty singular
scalars are dropped unless the schema marks the field a pointer (``?``).

A kind or a field number the schema does not know is a 415 naming it, never a
silently dropped field.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from secretsboot.sandbox.kube.protoschema import KINDS, MESSAGES
from secretsboot.sandbox.kube.resources import ApiError

MAGIC = b"k8s\x00"
MEDIA_TYPE = "application/vnd.kubernetes.protobuf"


class _Wire:
    """Protobuf wire format: (field number, wire type, value) triples."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def varint(self) -> int:
        result = shift = 0
        while True:
            if self.pos >= len(self.data):
                raise ValueError("truncated varint")
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                return result

    def fields(self) -> list[tuple[int, int, Any]]:
        out: list[tuple[int, int, Any]] = []
        while self.pos < len(self.data):
            key = self.varint()
            number, wire = key >> 3, key & 7
            if wire == 0:
                value: Any = self.varint()
            elif wire == 2:
                size = self.varint()
                value = self.data[self.pos : self.pos + size]
                if len(value) != size:
                    raise ValueError("truncated field")
                self.pos += size
            elif wire == 1:
                value, self.pos = self.data[self.pos : self.pos + 8], self.pos + 8
            elif wire == 5:
                value, self.pos = self.data[self.pos : self.pos + 4], self.pos + 4
            else:
                raise ValueError(f"wire type {wire}")
            out.append((number, wire, value))
        return out


def _unsupported(message: str) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"{message} - the sandbox decodes protobuf for the kinds it knows; send "
        "application/json for the rest",
    )


def _int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _special(kind: str, data: bytes) -> Any:
    """The messages whose JSON form is not an object of their fields."""
    fields = {n: v for n, _, v in _Wire(data).fields()}
    if kind == "Time":
        seconds = _int64(int(fields.get(1, 0)))
        if not seconds:
            return None
        return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == "Quantity":
        return bytes(fields.get(1, b"")).decode()
    if kind == "IntOrString":
        if int(fields.get(1, 0)) == 1:
            return bytes(fields.get(3, b"")).decode()
        return _int64(int(fields.get(2, 0)))
    # RawExtension, FieldsV1: raw JSON bytes
    raw = bytes(fields.get(1, b""))
    return json.loads(raw) if raw else None


_SPECIAL = frozenset({"Time", "Quantity", "IntOrString", "RawExtension", "FieldsV1"})


def _scalar(kind: str, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode("utf-8")
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return _int64(int(value))
    raise _unsupported(f"unknown scalar type {kind}")


def _map_entry(kind: str, data: bytes) -> tuple[str, Any]:
    key, value = "", None
    for number, _, raw in _Wire(data).fields():
        if number == 1:
            key = bytes(raw).decode()
        elif number == 2:
            value = raw
    if kind == "map":
        return key, bytes(value or b"").decode()
    if kind == "bmap":
        return key, base64.b64encode(bytes(value or b"")).decode()
    return key, _special("Quantity", bytes(value or b""))  # qmap


def _empty(value: Any) -> bool:
    return value in ("", 0, False, None)


def decode_message(name: str, data: bytes) -> dict[str, Any]:
    """The JSON object of message ``name`` encoded in ``data``."""
    if name in _SPECIAL:
        raise _unsupported(f"{name} is not an object")
    schema = MESSAGES.get(name)
    if schema is None:
        raise _unsupported(f"no protobuf schema for {name}")
    out: dict[str, Any] = {}
    for number, wire, raw in _Wire(data).fields():
        spec = schema.get(number)
        if spec is None:
            raise _unsupported(f"unknown field {number} of {name}")
        _set(out, spec, wire, raw)
    return out


def _set(out: dict[str, Any], spec: tuple[str, str, bool, bool], wire: int, raw: Any) -> None:
    field, kind, repeated, pointer = spec
    if kind in ("map", "bmap", "qmap"):
        key, value = _map_entry(kind, bytes(raw))
        out.setdefault(field, {})[key] = value
        return
    if kind in _SPECIAL:
        value = _special(kind, bytes(raw))
    elif kind[0].isupper():
        value = decode_message(kind, bytes(raw))
    elif repeated and wire == 2 and kind in ("int", "bool"):  # packed
        values = [_scalar(kind, v) for v in _packed(bytes(raw))]
        out.setdefault(field, []).extend(values)
        return
    else:
        value = _scalar(kind, raw)
    if field == "~":  # an inlined struct (LocalObjectReference, VolumeSource)
        out.update(value)
    elif repeated:
        out.setdefault(field, []).append(value)
    elif value is None or (not pointer and _empty(value)):
        return
    else:
        out[field] = value


def _packed(data: bytes) -> list[int]:
    wire = _Wire(data)
    values = []
    while wire.pos < len(data):
        values.append(wire.varint())
    return values


def decode(body: bytes) -> dict[str, Any]:
    """A ``k8s\\x00``-framed protobuf body as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body without the k8s magic prefix")
    try:
        envelope = {n: v for n, _, v in _Wire(body[len(MAGIC) :]).fields()}
        type_meta = {n: bytes(v).decode() for n, _, v in _Wire(bytes(envelope[1])).fields()}
        api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
        if envelope.get(3) or (envelope.get(4) and envelope[4] != MEDIA_TYPE):
            raise _unsupported("encoded protobuf content")
        message = KINDS.get((api_version, kind))
        if message is None:
            raise _unsupported(f"protobuf {api_version}/{kind}")
        obj = decode_message(message, bytes(envelope.get(2, b"")))
    except (ValueError, KeyError, UnicodeDecodeError) as exc:
        raise ApiError(400, "BadRequest", f"the protobuf body is malformed: {exc}") from None
    return {"apiVersion": api_version, "kind": kind, **obj}
