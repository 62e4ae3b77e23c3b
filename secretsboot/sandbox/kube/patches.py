"""The three PATCH formats of the Kubernetes API: JSON merge patch (RFC 7386), JSON
patch (RFC 6902) and strategic merge patch, plus the per-kind merge keys that
strategic merge patch and server-side apply share.

Strategic merge patch merges the lists Kubernetes declares mergeable by their
merge key (a Deployment's ``containers`` by ``name``, a container's
``volumeMounts`` by ``mountPath``) instead of replacing them, and honours the
directives ``$patch: replace|delete|merge``, ``$retainKeys``,
``$deleteFromPrimitiveList/<field>`` and ``$setElementOrder/<field>``.

Example::

    live = {"spec": {"containers": [{"name": "app", "image": "a:1"}]}}
    patch = {"spec": {"containers": [{"name": "sidecar", "image": "s:1"}]}}
    strategic_merge_patch(res.lookup("pods"), live, patch)["spec"]["containers"]
    # [{"name": "app", "image": "a:1"}, {"name": "sidecar", "image": "s:1"}]
"""

from __future__ import annotations

import copy
from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError, Resource

# --- merge keys ----------------------------------------------------------------------
# A schema node maps a field to a nested node (a struct) or to a ListOf (a list
# Kubernetes merges by key). Fields absent from a node are atomic: a patch
# replaces them, as the API server does for lists without a patch strategy.


class ListOf:
    """A list merged by ``key`` (``None``: a set of primitives) whose items follow ``item``."""

    def __init__(self, key: str | None, item: dict[str, Any] | None = None) -> None:
        self.key = key
        self.item: dict[str, Any] = item or {}


Schema = dict[str, Any]

_META: Schema = {"finalizers": ListOf(None), "ownerReferences": ListOf("uid")}
_CONTAINER: Schema = {
    "env": ListOf("name"),
    "ports": ListOf("containerPort"),
    "volumeMounts": ListOf("mountPath"),
    "volumeDevices": ListOf("devicePath"),
}
_POD_SPEC: Schema = {
    "containers": ListOf("name", _CONTAINER),
    "initContainers": ListOf("name", _CONTAINER),
    "ephemeralContainers": ListOf("name", _CONTAINER),
    "volumes": ListOf("name"),
    "imagePullSecrets": ListOf("name"),
    "hostAliases": ListOf("ip"),
    "topologySpreadConstraints": ListOf("topologyKey"),
    "resourceClaims": ListOf("name"),
    "schedulingGates": ListOf("name"),
}
_TEMPLATE: Schema = {"metadata": _META, "spec": _POD_SPEC}
_CONDITIONS: Schema = {"conditions": ListOf("type")}
_WORKLOAD: Schema = {"metadata": _META, "spec": {"template": _TEMPLATE}, "status": _CONDITIONS}

#: the strategic-merge schema of every built-in kind the fake serves
SCHEMAS: dict[str, Schema] = {
    "namespaces": {"metadata": _META, "status": _CONDITIONS},
    "serviceaccounts": {"metadata": _META, "secrets": ListOf("name")},
    "secrets": {"metadata": _META},
    "configmaps": {"metadata": _META},
    "pods": {"metadata": _META, "spec": _POD_SPEC, "status": _CONDITIONS},
    "deployments": _WORKLOAD,
    "statefulsets": _WORKLOAD,
    "daemonsets": _WORKLOAD,
    "replicasets": _WORKLOAD,
    "replicationcontrollers": _WORKLOAD,
    "jobs": _WORKLOAD,
    "cronjobs": {
        "metadata": _META,
        "spec": {"jobTemplate": {"metadata": _META, "spec": {"template": _TEMPLATE}}},
    },
    "services": {"metadata": _META, "spec": {"ports": ListOf("port")}},
    "roles": {"metadata": _META},
    "rolebindings": {"metadata": _META},
    "clusterroles": {"metadata": _META},
    "clusterrolebindings": {"metadata": _META},
}

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}


def schema_for(resource: Resource) -> Schema:
    """The merge-key schema of ``resource``; 415 for kinds without one (custom
    resources), as the API server refuses strategic merge patch for them."""
    schema = SCHEMAS.get(resource.plural)
    if schema is None or not resource.builtin:
        accepted = [t for t, n in PATCH_TYPES.items() if n != "strategic"]
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(accepted)}",
        )
    return schema


# --- JSON merge patch and JSON patch ---------------------------------------------------
def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``None`` deletes a key)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise res.bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json_patch_op(doc: Any, op: dict[str, Any]) -> None:
    def parent(path: str) -> tuple[Any, str]:
        parts = _pointer(path)
        if not parts:
            raise res.bad_request("cannot patch the document root")
        node = doc
        for part in parts[:-1]:
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node, parts[-1]

    def get(path: str) -> Any:
        node = doc
        for part in _pointer(path):
            node = node[int(part)] if isinstance(node, list) else node[part]
        return node

    def put(path: str, value: Any, *, replace: bool) -> None:
        node, key = parent(path)
        if isinstance(node, list):
            idx = len(node) if key == "-" else int(key)
            if replace:
                node[idx] = value
            else:
                node.insert(idx, value)
            return
        if replace and key not in node:
            raise res.ApiError(422, "Invalid", f"replace: missing path {path}")
        node[key] = value

    kind, path = op["op"], op["path"]
    if kind in ("add", "replace"):
        put(path, copy.deepcopy(op["value"]), replace=kind == "replace")
    elif kind == "remove":
        node, key = parent(path)
        del node[int(key) if isinstance(node, list) else key]
    elif kind == "test":
        if get(path) != op["value"]:
            raise res.ApiError(422, "Invalid", f"test failed at {path}")
    elif kind in ("move", "copy"):
        value = copy.deepcopy(get(op["from"]))
        if kind == "move":
            node, key = parent(op["from"])
            del node[int(key) if isinstance(node, list) else key]
        put(path, value, replace=False)
    else:
        raise res.bad_request(f"unknown JSON patch op {kind!r}")


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test, move, copy."""
    if not isinstance(ops, list):
        raise res.bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)
    try:
        for op in ops:
            _json_patch_op(doc, op)
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise res.ApiError(
            422, "Invalid", f"the JSON patch does not apply: {type(exc).__name__} {exc}"
        ) from None
    return doc


# --- strategic merge patch -------------------------------------------------------------
_ORDER = "$setElementOrder/"
_DELETE_PRIMITIVES = "$deleteFromPrimitiveList/"


def strategic_merge_patch(resource: Resource, live: Any, patch: Any) -> Any:
    """Apply a strategic merge patch to ``live`` (415 for kinds without a schema)."""
    schema = schema_for(resource)
    if not isinstance(patch, dict):
        raise res.bad_request("a strategic merge patch must be a JSON object")
    return _merge_map(live, patch, schema)


def merge_by_schema(live: Any, patch: dict[str, Any], schema: Schema) -> Any:
    """``patch`` merged into ``live`` by ``schema``'s merge keys (server-side apply's
    merge of an applied configuration, which carries no directives)."""
    return _merge_map(live, patch, schema)


def _strip(value: Any) -> Any:
    """``value`` without patch directives (what a ``$patch: replace`` stores)."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip(v) for v in value if not (isinstance(v, dict) and "$patch" in v)]
    return value


def _merge_map(live: Any, patch: dict[str, Any], schema: Schema) -> Any:
    directive = patch.get("$patch", "merge")
    if directive == "replace":
        return _strip(patch)
    if directive not in ("merge", "delete"):
        raise res.bad_request(f"unknown patch type: {directive!r} in map: {patch}")
    result = copy.deepcopy(live) if isinstance(live, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        field = schema.get(key)
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(field, ListOf):
            result[key] = _merge_list(result.get(key), value, field)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = _merge_map(
                    result.get(key), value, field if isinstance(field, dict) else {}
                )
        else:
            result[key] = _strip(value)
    return _directives(result, patch, schema)


def _directives(result: dict[str, Any], patch: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """``$deleteFromPrimitiveList``, ``$setElementOrder`` and ``$retainKeys``."""
    for key, value in patch.items():
        if key.startswith(_DELETE_PRIMITIVES):
            field_name = key[len(_DELETE_PRIMITIVES) :]
            drop = value if isinstance(value, list) else []
            if isinstance(result.get(field_name), list):
                result[field_name] = [v for v in result[field_name] if v not in drop]
        elif key.startswith(_ORDER):
            _reorder(result, key[len(_ORDER) :], value, schema.get(key[len(_ORDER) :]))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _item_key(item: Any, field: ListOf) -> Any:
    if field.key is None:
        return item
    if not isinstance(item, dict) or field.key not in item:
        raise res.bad_request(f"map: {item} does not contain declared merge key: {field.key}")
    return item[field.key]


def _merge_list(live: Any, patch: list[Any], field: ListOf) -> list[Any]:
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return list(_strip(patch))
    result = copy.deepcopy(live) if isinstance(live, list) else []
    for item in patch:
        if field.key is None:
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        key = _item_key(item, field)
        index = next((i for i, cur in enumerate(result) if cur.get(field.key) == key), None)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip(item))
        else:
            result[index] = _merge_map(result[index], item, field.item)
    return result


def _reorder(result: dict[str, Any], name: str, order: Any, field: Any) -> None:
    """``$setElementOrder``: the listed items first, in that order, then the rest."""
    items = result.get(name)
    if not isinstance(items, list) or not isinstance(order, list):
        return
    key = field.key if isinstance(field, ListOf) else None

    def ident(item: Any) -> Any:
        return item.get(key) if key is not None and isinstance(item, dict) else item

    wanted = [o.get(key) if key is not None and isinstance(o, dict) else o for o in order]
    ranked = sorted(
        range(len(items)),
        key=lambda i: (
            wanted.index(ident(items[i])) if ident(items[i]) in wanted else len(wanted),
            i,
        ),
    )
    result[name] = [items[i] for i in ranked]
