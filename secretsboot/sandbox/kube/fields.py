"""Field ownership (``metadata.managedFields``), as server-side apply keeps it.

A field set is a set of paths; a path is a tuple of the elements ``fieldsV1``
uses: ``f:<field>``, ``k:{"<mergeKey>":<value>}`` for an item of a list merged
by key (the path to the item itself stands for its ``.`` marker), ``v:<json>``
for a value of a set-like primitive list. Maps are granular, lists Kubernetes
does not merge (``args``, ``rules``) are atomic: one leaf.

Every write records its manager (``fieldManager``, else the User-Agent's
product, as the API server derives it): a create or update takes the fields it
changed, and the other managers lose them; server-side apply (``apply.py``) keeps
its own ``Apply`` entry.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from typing import Any

from secretsboot.sandbox.kube.patches import SCHEMAS, ListOf, Schema
from secretsboot.sandbox.kube.resources import Resource
from secretsboot.sandbox.kube.strategy import now

Path = tuple[str, ...]
Obj = dict[str, Any]
MISSING = object()
# identity and server-set fields no manager owns
_UNOWNED_META = frozenset(
    {
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    }
)


def schema_of(resource: Resource) -> Schema:
    """Merge keys for a built-in kind; custom resources' lists are atomic."""
    return SCHEMAS.get(resource.plural, {}) if resource.builtin else {}


def _key_elem(field: ListOf, item: Any) -> str:
    if field.key is None:
        return "v:" + json.dumps(item, separators=(",", ":"))
    value = item.get(field.key) if isinstance(item, dict) else None
    return "k:" + json.dumps({field.key: value}, separators=(",", ":"))


def _walk(value: dict[str, Any], schema: Schema, prefix: Path, out: set[Path]) -> None:
    for key, sub in value.items():
        if not prefix and key in ("apiVersion", "kind", "status"):
            continue
        if prefix == ("f:metadata",) and key in _UNOWNED_META:
            continue
        field = schema.get(key)
        path = (*prefix, f"f:{key}")
        if isinstance(sub, list) and isinstance(field, ListOf) and sub:
            for item in sub:
                item_path = (*path, _key_elem(field, item))
                out.add(item_path)
                if field.key is not None and isinstance(item, dict):
                    _walk(item, field.item, item_path, out)
        elif isinstance(sub, dict) and sub:
            _walk(sub, field if isinstance(field, dict) else {}, path, out)
        else:
            out.add(path)


def fieldset(obj: Obj, schema: Schema) -> set[Path]:
    """The paths ``obj`` sets (leaves and keyed-item markers)."""
    out: set[Path] = set()
    _walk(obj, schema, (), out)
    return out


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    members = set(paths)
    for path in sorted(members):
        node = root
        for elem in path:
            node = node.setdefault(elem, {})
    for path in members:
        node = root
        for elem in path:
            node = node[elem]
        if node:
            node["."] = {}
    return root


def from_fields_v1(doc: Any, prefix: Path = ()) -> set[Path]:
    out: set[Path] = set()
    if not isinstance(doc, dict):
        return out
    for key, sub in doc.items():
        if key == ".":
            out.add(prefix)
        elif isinstance(sub, dict) and sub:
            out |= from_fields_v1(sub, (*prefix, key))
        else:
            out.add((*prefix, key))
    return out


def _find(items: list[Any], elem: str) -> int | None:
    if elem.startswith("v:"):
        wanted = json.loads(elem[2:])
        return next((i for i, v in enumerate(items) if v == wanted), None)
    key, value = next(iter(json.loads(elem[2:]).items()))
    return next(
        (i for i, v in enumerate(items) if isinstance(v, dict) and v.get(key) == value), None
    )


def value_at(obj: Any, path: Path) -> Any:
    """The value ``path`` points at in ``obj`` (``MISSING`` when absent)."""
    node = obj
    for elem in path:
        if elem.startswith("f:") and isinstance(node, dict):
            node = node.get(elem[2:], MISSING)
        elif elem[:2] in ("k:", "v:") and isinstance(node, list):
            idx = _find(node, elem)
            node = MISSING if idx is None else node[idx]
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def remove_path(obj: Any, path: Path) -> None:
    """Delete what ``path`` points at (no-op when absent)."""
    parent = value_at(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif isinstance(parent, list):
        idx = _find(parent, last)
        if idx is not None:
            del parent[idx]


def path_str(path: Path) -> str:
    """``.spec.template.spec.containers[name="app"].image``, as conflicts print it."""
    out = ""
    for elem in path:
        if elem.startswith("f:"):
            out += "." + elem[2:]
        elif elem.startswith("k:"):
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(elem[2:]).items())
            out += "]"
        else:
            out += f"[={elem[2:]}]"
    return out


def entry(manager: str, operation: str, api_version: str, paths: Iterable[Path]) -> Obj:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": to_fields_v1(paths),
    }


def record_update(old: Obj | None, new: Obj, manager: str | None, resource: Resource) -> None:
    """Give ``manager`` (operation ``Update``) the fields ``new`` changes; others lose them."""
    if not manager:
        return
    schema = schema_of(resource)
    new_set = fieldset(new, schema)
    old_set = fieldset(old, schema) if old is not None else set()
    changed = {p for p in new_set if old is None or value_at(old, p) != value_at(new, p)}
    lost = changed | (old_set - new_set)
    meta = new.setdefault("metadata", {})
    current = meta.get("managedFields")
    if current is None and old is not None:
        current = copy.deepcopy((old.get("metadata") or {}).get("managedFields"))
    entries: list[Obj] = []
    mine: set[Path] = set(changed)
    for e in current or []:
        paths = from_fields_v1(e.get("fieldsV1")) - lost
        if (e.get("manager"), e.get("operation")) == (manager, "Update"):
            mine |= paths
        elif paths:
            entries.append({**e, "fieldsV1": to_fields_v1(paths)})
    if mine:
        entries.append(entry(manager, "Update", resource.api_version, mine))
    if entries:
        meta["managedFields"] = entries
    else:
        meta.pop("managedFields", None)
