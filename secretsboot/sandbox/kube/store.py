"""The Kubernetes fake's object store: plain dicts behind one lock.

It keeps what clients rely on: ``metadata.uid``, a monotonic ``resourceVersion``,
``creationTimestamp``, ``generation``; 404/409/422 as :class:`ApiError`; optimistic
concurrency on update; label/field selectors; paginated lists.

Example::

    store = ObjectStore()
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    store.create({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": "db", "namespace": "dev"}, "stringData": {"k": "v"}})
    store.get("secrets", "db", "dev")["data"]   # {"k": "dg=="}
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import secrets as _secrets
import threading
import uuid
from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError, Resource
from secretsboot.sandbox.kube.selectors import parse_field_selector, parse_label_selector

Obj = dict[str, Any]

_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


def json_patch(doc: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch: add, remove, replace, test, move, copy."""
    if not isinstance(ops, list):
        raise res.bad_request("a JSON patch must be a list of operations")
    doc = copy.deepcopy(doc)

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

    try:
        for op in ops:
            kind, path = op["op"], op["path"]
            if kind in ("add", "replace"):
                node, key = parent(path)
                if isinstance(node, list):
                    idx = len(node) if key == "-" else int(key)
                    if kind == "add":
                        node.insert(idx, copy.deepcopy(op["value"]))
                    else:
                        node[idx] = copy.deepcopy(op["value"])
                else:
                    if kind == "replace" and key not in node:
                        raise res.ApiError(422, "Invalid", f"replace: missing path {path}")
                    node[key] = copy.deepcopy(op["value"])
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
                node, key = parent(path)
                if isinstance(node, list):
                    node.insert(len(node) if key == "-" else int(key), value)
                else:
                    node[key] = value
            else:
                raise res.bad_request(f"unknown JSON patch op {kind!r}")
    except (KeyError, IndexError, ValueError, TypeError) as exc:
        raise res.ApiError(
            422, "Invalid", f"the JSON patch does not apply: {type(exc).__name__} {exc}"
        ) from None
    return doc


class ObjectStore:
    """Every object of the fake cluster, keyed by (resource, namespace, name)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._objects: dict[tuple[str, str, str, str], Obj] = {}
        self._rv = 0
        for ns in _DEFAULT_NAMESPACES:
            self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # -- helpers -----------------------------------------------------------------
    @property
    def resource_version(self) -> str:
        with self._lock:
            return str(self._rv)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @staticmethod
    def _key(resource: Resource, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return (resource.group, resource.plural, namespace or "", name)

    @staticmethod
    def resolve(obj: Obj, resource: Resource | None = None) -> Resource:
        if resource is not None:
            return resource
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        found = res.by_kind(str(api_version), str(kind))
        if found is None:
            raise res.bad_request(f"no kind {kind!r} is registered for version {api_version!r}")
        return found

    def _namespace_of(self, resource: Resource, obj: Obj, namespace: str | None) -> str | None:
        if not resource.namespaced:
            return None
        ns = namespace or obj.get("metadata", {}).get("namespace") or "default"
        body_ns = obj.get("metadata", {}).get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise res.bad_request(
                "the namespace of the provided object does not match the namespace sent "
                "on the request"
            )
        return str(ns)

    def _require_namespace(self, ns: str | None) -> None:
        if ns is not None and self._key(res.lookup("namespaces"), None, ns) not in self._objects:
            raise res.not_found(res.lookup("namespaces"), ns)

    @staticmethod
    def _validate(resource: Resource, obj: Obj, name: str) -> None:
        """Labels, annotations and data keys, as the API server validates them (422)."""
        meta = obj.get("metadata") or {}
        for field in ("labels", "annotations"):
            values = meta.get(field) or {}
            if not isinstance(values, dict):
                raise res.invalid(resource, name, f"metadata.{field}", values, "must be a map")
            for key, value in values.items():
                problem = res.qualified_name_problem(str(key))
                if problem:
                    raise res.invalid(resource, name, f"metadata.{field}", key, problem)
                if field == "labels":
                    problem = res.label_value_problem(value)
                    if problem:
                        raise res.invalid(resource, name, "metadata.labels", value, problem)
                elif not isinstance(value, str):
                    raise res.invalid(
                        resource, name, f"metadata.annotations[{key}]", value, "must be a string"
                    )
        if resource.plural in ("secrets", "configmaps"):
            for field in ("data", "stringData", "binaryData"):
                for key in obj.get(field) or {}:
                    problem = res.config_key_problem(str(key))
                    if problem:
                        raise res.invalid(resource, name, f"{field}[{key}]", key, problem)

    @classmethod
    def _normalize(cls, resource: Resource, obj: Obj, name: str) -> None:
        cls._validate(resource, obj, name)
        if resource.plural == "secrets":
            data = obj.setdefault("data", {}) or {}
            obj["data"] = data
            for key, value in data.items():
                try:
                    base64.b64decode(str(value), validate=True)
                except (binascii.Error, ValueError):
                    raise res.invalid(
                        resource, name, f"data[{key}]", "<value>", "illegal base64 data"
                    ) from None
            for key, value in (obj.pop("stringData", None) or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj.setdefault("type", "Opaque")
            if not data:
                obj.pop("data")
        if resource.plural == "pods":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
            obj.setdefault("spec", {}).setdefault("serviceAccountName", "default")
        if resource.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj.setdefault("status", {"phase": "Active"})
            labels = obj["metadata"].setdefault("labels", {})
            labels.setdefault("kubernetes.io/metadata.name", name)

    # -- CRUD ----------------------------------------------------------------------
    def create(
        self, obj: Obj, *, resource: Resource | None = None, namespace: str | None = None
    ) -> Obj:
        """POST: store a copy of ``obj`` with server-set metadata; return that copy."""
        resource = self.resolve(obj, resource)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise res.bad_request("metadata must be an object")
        name = meta.get("name")
        if not name and meta.get("generateName"):
            name = str(meta["generateName"]) + _secrets.token_hex(3)[:5]
        if not name:
            raise res.invalid(resource, "", "metadata.name", "", "name or generateName is required")
        name = str(name)
        problem = res.name_problem(resource, name)
        if problem:
            raise res.invalid(resource, name, "metadata.name", name, problem)
        with self._lock:
            ns = self._namespace_of(resource, obj, namespace)
            self._require_namespace(ns)
            key = self._key(resource, ns, name)
            if key in self._objects:
                raise res.already_exists(resource, name)
            obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
            meta["name"] = name
            if ns is not None:
                meta["namespace"] = ns
            else:
                meta.pop("namespace", None)
            for server_field in (
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
            ):
                meta.pop(server_field, None)
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            if "spec" in obj:
                meta["generation"] = 1
            self._normalize(resource, obj, name)
            meta["resourceVersion"] = self._next_rv()
            self._objects[key] = obj
            if resource.plural == "namespaces":
                sa = res.lookup("serviceaccounts")
                self._objects[self._key(sa, name, "default")] = {
                    "apiVersion": "v1",
                    "kind": "ServiceAccount",
                    "metadata": {
                        "name": "default",
                        "namespace": name,
                        "uid": str(uuid.uuid4()),
                        "creationTimestamp": _now(),
                        "resourceVersion": self._next_rv(),
                    },
                }
            return copy.deepcopy(obj)

    def get(self, resource: Resource | str, name: str, namespace: str | None = None) -> Obj:
        """GET one object (404 ApiError when missing)."""
        resource = res.lookup(resource) if isinstance(resource, str) else resource
        ns = (namespace or "default") if resource.namespaced else None
        with self._lock:
            obj = self._objects.get(self._key(resource, ns, name))
            if obj is None:
                raise res.not_found(resource, name)
            return copy.deepcopy(obj)

    def exists(self, resource: Resource | str, name: str, namespace: str | None = None) -> bool:
        try:
            self.get(resource, name, namespace)
        except ApiError:
            return False
        return True

    def list(
        self,
        resource: Resource | str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        """LIST (``namespace=None``: all namespaces); returns a ``...List`` object."""
        resource = res.lookup(resource) if isinstance(resource, str) else resource
        labels = parse_label_selector(label_selector)
        fields = parse_field_selector(field_selector, resource.plural)
        after: tuple[str, str] | None = None
        if continue_token:
            try:
                decoded = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                after = (str(decoded["ns"]), str(decoded["name"]))
            except (ValueError, KeyError, TypeError, binascii.Error):
                raise res.bad_request("continue key is not valid: malformed token") from None
        with self._lock:
            rv = str(self._rv)
            items = sorted(
                (
                    (k[2], k[3], o)
                    for k, o in self._objects.items()
                    if k[0] == resource.group
                    and k[1] == resource.plural
                    and (namespace is None or not resource.namespaced or k[2] == namespace)
                ),
                key=lambda t: (t[0], t[1]),
            )
            selected = [
                (ns, name, o)
                for ns, name, o in items
                if (after is None or (ns, name) > after)
                and labels.matches(o.get("metadata", {}).get("labels"))
                and fields.matches(o)
            ]
            meta: dict[str, Any] = {"resourceVersion": rv}
            if limit and limit > 0 and len(selected) > limit:
                last_ns, last_name, _ = selected[limit - 1]
                token = json.dumps({"ns": last_ns, "name": last_name, "rv": rv})
                meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
                meta["remainingItemCount"] = len(selected) - limit
                selected = selected[:limit]
            out_items = []
            for _, _, o in selected:
                item = copy.deepcopy(o)
                if resource.builtin:
                    item.pop("apiVersion", None)
                    item.pop("kind", None)
                out_items.append(item)
        return {
            "apiVersion": resource.api_version,
            "kind": f"{resource.kind}List",
            "metadata": meta,
            "items": out_items,
        }

    def update(
        self, obj: Obj, *, resource: Resource | None = None, namespace: str | None = None
    ) -> Obj:
        """PUT: replace an object; a stale ``metadata.resourceVersion`` is a 409 Conflict."""
        resource = self.resolve(obj, resource)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = str(meta.get("name") or "")
        with self._lock:
            ns = self._namespace_of(resource, obj, namespace)
            key = self._key(resource, ns, name)
            current = self._objects.get(key)
            if current is None:
                raise res.not_found(resource, name)
            sent_rv = meta.get("resourceVersion")
            if sent_rv and str(sent_rv) != current["metadata"]["resourceVersion"]:
                raise res.conflict(resource, name)
            return self._replace(resource, key, current, obj)

    def _replace(
        self, resource: Resource, key: tuple[str, str, str, str], current: Obj, obj: Obj
    ) -> Obj:
        name = current["metadata"]["name"]
        if resource.plural in ("rolebindings", "clusterrolebindings") and obj.get(
            "roleRef"
        ) != current.get("roleRef"):
            raise res.invalid(
                resource, name, "roleRef", obj.get("roleRef"), "cannot change roleRef"
            )
        if resource.plural == "secrets" and obj.get("type", "Opaque") != current.get("type"):
            raise res.invalid(resource, name, "type", obj.get("type"), "field is immutable")
        if current.get("immutable") and (
            obj.get("data") != current.get("data") or "stringData" in obj
        ):
            raise res.invalid(
                resource, name, "data", "<data>", "field is immutable when `immutable` is set"
            )
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        for keep in ("name", "namespace", "uid", "creationTimestamp"):
            if keep in current["metadata"]:
                meta[keep] = current["metadata"][keep]
            else:
                meta.pop(keep, None)
        generation = current["metadata"].get("generation")
        if generation is not None or "spec" in obj:
            changed = obj.get("spec") != current.get("spec")
            meta["generation"] = (generation or 0) + (1 if changed else 0) or 1
        self._normalize(resource, obj, name)
        meta["resourceVersion"] = self._next_rv()
        self._objects[key] = obj
        return copy.deepcopy(obj)

    def patch(
        self,
        resource: Resource | str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
    ) -> Obj:
        """PATCH with ``merge`` (merge and strategic merge) or ``json`` (RFC 6902)."""
        resource = res.lookup(resource) if isinstance(resource, str) else resource
        ns = (namespace or "default") if resource.namespaced else None
        with self._lock:
            key = self._key(resource, ns, name)
            current = self._objects.get(key)
            if current is None:
                raise res.not_found(resource, name)
            if patch_type == "json":
                new = json_patch(current, patch)
            else:
                if not isinstance(patch, dict):
                    raise res.bad_request("a merge patch must be a JSON object")
                new = merge_patch(current, patch)
            sent_rv = (
                (patch.get("metadata") or {}).get("resourceVersion")
                if isinstance(patch, dict)
                else None
            )
            if sent_rv and str(sent_rv) != current["metadata"]["resourceVersion"]:
                raise res.conflict(resource, name)
            new_meta = new.get("metadata") or {}
            if new_meta.get("name", name) != name:
                raise res.invalid(
                    resource, name, "metadata.name", new_meta.get("name"), "field is immutable"
                )
            return self._replace(resource, key, current, new)

    def delete(self, resource: Resource | str, name: str, namespace: str | None = None) -> Obj:
        """DELETE; deleting a namespace deletes everything in it. Returns the object."""
        resource = res.lookup(resource) if isinstance(resource, str) else resource
        ns = (namespace or "default") if resource.namespaced else None
        with self._lock:
            obj = self._objects.pop(self._key(resource, ns, name), None)
            if obj is None:
                raise res.not_found(resource, name)
            if resource.plural == "namespaces":
                for k in [k for k in self._objects if k[2] == name]:
                    del self._objects[k]
            self._next_rv()
            return obj

    def apply(self, obj: Obj) -> Obj:
        """Create ``obj`` or merge it into the existing object (a sandbox convenience)."""
        resource = self.resolve(obj)
        meta = obj.get("metadata", {})
        with self._lock:
            ns = (meta.get("namespace") or "default") if resource.namespaced else None
            if self.exists(resource, meta.get("name", ""), ns):
                return self.patch(resource, meta["name"], obj, ns)
            return self.create(obj, resource=resource)
