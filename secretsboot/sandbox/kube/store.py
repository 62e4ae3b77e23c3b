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
import json
import threading
from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube import strategy
from secretsboot.sandbox.kube.patches import json_patch, merge_patch, strategic_merge_patch
from secretsboot.sandbox.kube.resources import ApiError, Resource
from secretsboot.sandbox.kube.selectors import parse_field_selector, parse_label_selector
from secretsboot.sandbox.kube.watch import Event, EventLog, WatchSpec

__all__ = ["ObjectStore", "json_patch", "merge_patch"]

Obj = dict[str, Any]

_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
Key = tuple[str, str, str, str]


class ObjectStore:
    """Every object of the fake cluster, keyed by (resource, namespace, name)."""

    def __init__(self, *, namespace_finalize_seconds: float = 0.5) -> None:
        self._lock = threading.RLock()
        self._objects: dict[Key, Obj] = {}
        self._rv = 0
        self.events = EventLog(self._lock)
        # how long a deleted namespace stays Terminating before the namespace
        # controller's work (emptying it, dropping the finalizer) is done
        self.namespace_finalize_seconds = namespace_finalize_seconds
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

    def _put(self, key: Key, obj: Obj, event: str, prev: Obj | None = None) -> None:
        """Store ``obj`` under a new resourceVersion and record the event (lock held)."""
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self._objects[key] = obj
        self.events.record(Event(self._rv, event, key[0], key[1], key[2], copy.deepcopy(obj), prev))

    def _drop(self, key: Key) -> Obj:
        """Remove the object at ``key``, record DELETED (lock held); returns it."""
        obj = self._objects.pop(key)
        obj["metadata"]["resourceVersion"] = self._next_rv()
        self.events.record(Event(self._rv, "DELETED", key[0], key[1], key[2], copy.deepcopy(obj)))
        return obj

    def compact(self) -> None:
        """Forget the event history so far (older watch resourceVersions get 410)."""
        with self._lock:
            self.events.compact(self._rv)

    def snapshot(self, spec: WatchSpec) -> tuple[int, list[Obj]]:
        """(current resourceVersion, the objects a new watch starts with)."""
        r = spec.resource
        with self._lock:
            items = [
                copy.deepcopy(o)
                for k, o in sorted(self._objects.items())
                if (k[0], k[1]) == (r.group, r.plural)
                and (spec.namespace is None or k[2] == spec.namespace)
                and spec.matches(o)
            ]
            return self._rv, items

    @staticmethod
    def _key(resource: Resource, namespace: str | None, name: str) -> tuple[str, str, str, str]:
        return (resource.group, resource.plural, namespace or "", name)

    @staticmethod
    def _address(resource: Resource | str, namespace: str | None) -> tuple[Resource, str | None]:
        """The resource (by name or itself) and the namespace a request on it means:
        ``default`` when none is given, None for a cluster-scoped resource."""
        resource = res.lookup(resource) if isinstance(resource, str) else resource
        return resource, ((namespace or "default") if resource.namespaced else None)

    def _current(self, resource: Resource, namespace: str | None, name: str) -> tuple[Key, Obj]:
        """The key and the stored object (lock held); 404 when there is none."""
        key = self._key(resource, namespace, name)
        current = self._objects.get(key)
        if current is None:
            raise res.not_found(resource, name)
        return key, current

    @staticmethod
    def _check_version(resource: Resource, name: str, current: Obj, sent: Any) -> None:
        """Optimistic concurrency: a resourceVersion sent that is not the stored one is 409."""
        if sent and str(sent) != current["metadata"]["resourceVersion"]:
            raise res.conflict(resource, name)

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

    def _require_namespace(self, ns: str | None, resource: Resource, name: str) -> None:
        """The namespace exists and is not being deleted (NamespaceLifecycle admission)."""
        if ns is None:
            return
        _, found = self._current(res.lookup("namespaces"), None, ns)
        if found["metadata"].get("deletionTimestamp"):
            message = (
                f"{res.qualified(resource, name)} is forbidden: unable to create new content "
                f"in namespace {ns} because it is being terminated"
            )
            why = f"namespace {ns} is being terminated"
            cause = ("NamespaceTerminating", why, "metadata.namespace")
            raise res.object_error(403, "Forbidden", resource, name, message, cause=cause)

    # -- CRUD ----------------------------------------------------------------------
    def create(
        self,
        obj: Obj,
        *,
        resource: Resource | None = None,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """POST: store a copy of ``obj`` with server-set metadata; return that copy
        (``dry_run``: the same answer, without a resourceVersion, nothing stored)."""
        resource = self.resolve(obj, resource)
        obj = copy.deepcopy(obj)
        name = strategy.new_name(resource, obj.setdefault("metadata", {}))
        with self._lock:
            ns = self._namespace_of(resource, obj, namespace)
            self._require_namespace(ns, resource, name)
            key = self._key(resource, ns, name)
            if key in self._objects:
                raise res.already_exists(resource, name)
            strategy.prepare_for_create(resource, obj, name, ns)
            if dry_run:
                return copy.deepcopy(obj)
            self._put(key, obj, "ADDED")
            if resource.plural == "namespaces":
                sa = res.lookup("serviceaccounts")
                default_sa = strategy.default_service_account(name)
                self._put(self._key(sa, name, "default"), default_sa, "ADDED")
            return copy.deepcopy(obj)

    def get(self, resource: Resource | str, name: str, namespace: str | None = None) -> Obj:
        """GET one object (404 ApiError when missing)."""
        resource, ns = self._address(resource, namespace)
        with self._lock:
            return copy.deepcopy(self._current(resource, ns, name)[1])

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
        self,
        obj: Obj,
        *,
        resource: Resource | None = None,
        namespace: str | None = None,
        dry_run: bool = False,
    ) -> Obj:
        """PUT: replace an object; a stale ``metadata.resourceVersion`` is a 409 Conflict."""
        resource = self.resolve(obj, resource)
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        name = str(meta.get("name") or "")
        with self._lock:
            key, current = self._current(
                resource, self._namespace_of(resource, obj, namespace), name
            )
            self._check_version(resource, name, current, meta.get("resourceVersion"))
            return self._replace(resource, key, current, obj, dry_run=dry_run)

    def _replace(
        self, resource: Resource, key: Key, current: Obj, obj: Obj, *, dry_run: bool = False
    ) -> Obj:
        deleting = strategy.prepare_for_update(resource, current, obj)
        if dry_run:
            obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            return copy.deepcopy(obj)
        self._put(key, obj, "MODIFIED", copy.deepcopy(current))
        if deleting and not obj["metadata"].get("finalizers"):  # the last finalizer is gone
            self._drop(key)
        return copy.deepcopy(obj)

    def patch(
        self,
        resource: Resource | str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
        dry_run: bool = False,
    ) -> Obj:
        """PATCH with ``merge`` (RFC 7386), ``strategic`` or ``json`` (RFC 6902)."""
        resource, ns = self._address(resource, namespace)
        with self._lock:
            key, current = self._current(resource, ns, name)
            if patch_type == "json":
                new = json_patch(current, patch)
            elif patch_type == "strategic":
                new = strategic_merge_patch(resource, current, patch)
            else:
                if not isinstance(patch, dict):
                    raise res.bad_request("a merge patch must be a JSON object")
                new = merge_patch(current, patch)
            sent = (patch.get("metadata") or {}) if isinstance(patch, dict) else {}
            self._check_version(resource, name, current, sent.get("resourceVersion"))
            new_meta = new.get("metadata") or {}
            if new_meta.get("name", name) != name:
                raise res.invalid(
                    resource, name, "metadata.name", new_meta.get("name"), "field is immutable"
                )
            return self._replace(resource, key, current, new, dry_run=dry_run)

    def replace_stored(self, resource: Resource, new: Obj, *, dry_run: bool = False) -> Obj:
        """Store ``new`` (a full object computed from the live one, e.g. by server-side
        apply) through the same checks as an update; 404 when the object is gone."""
        meta = new.get("metadata") or {}
        _, ns = self._address(resource, meta.get("namespace"))
        name = str(meta.get("name"))
        with self._lock:
            key, current = self._current(resource, ns, name)
            self._check_version(resource, name, current, meta.get("resourceVersion"))
            return self._replace(resource, key, current, copy.deepcopy(new), dry_run=dry_run)

    def delete(
        self,
        resource: Resource | str,
        name: str,
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> Obj:
        """DELETE; returns the object as deleted. A namespace goes Terminating first
        (see :meth:`finalize_namespace`); ``dry_run`` changes nothing."""
        resource, ns = self._address(resource, namespace)
        with self._lock:
            key, obj = self._current(resource, ns, name)
            if resource.plural == "namespaces":
                return self._terminate(key, obj, dry_run=dry_run)
            if obj["metadata"].get("finalizers"):  # stays, marked, until they are removed
                return self._mark_deleted(key, obj, dry_run=dry_run)
            if dry_run:
                return copy.deepcopy(obj)
            return self._drop(key)

    def _mark_deleted(self, key: Key, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Set ``deletionTimestamp`` on an object its finalizers keep (lock held)."""
        if obj["metadata"].get("deletionTimestamp"):
            return copy.deepcopy(obj)
        new = strategy.marked_deleted(obj)
        if not dry_run:
            self._put(key, new, "MODIFIED", copy.deepcopy(obj))
        return copy.deepcopy(new)

    def _terminate(self, key: Key, obj: Obj, *, dry_run: bool) -> Obj:
        name = obj["metadata"]["name"]
        if name in _DEFAULT_NAMESPACES:
            namespaces = res.lookup("namespaces")
            message = (
                f"{res.qualified(namespaces, name)} is forbidden: this namespace may not be deleted"
            )
            raise res.object_error(403, "Forbidden", namespaces, name, message)
        if obj["metadata"].get("deletionTimestamp"):
            return copy.deepcopy(obj)
        new = strategy.marked_deleted(obj)
        new.setdefault("status", {})["phase"] = "Terminating"
        if dry_run:
            return new
        self._put(key, new, "MODIFIED", copy.deepcopy(obj))
        self._schedule_finalize(name)
        return copy.deepcopy(new)

    def _schedule_finalize(self, name: str) -> None:
        timer = threading.Timer(self.namespace_finalize_seconds, self.finalize_namespace, [name])
        timer.daemon = True
        timer.start()

    def finalize_namespace(self, name: str) -> None:
        """The namespace controller's work on a Terminating namespace: delete what is
        in it, drop the ``kubernetes`` finalizer, then the namespace itself."""
        key = self._key(res.lookup("namespaces"), None, name)
        with self._lock:
            obj = self._objects.get(key)
            if obj is None or not obj["metadata"].get("deletionTimestamp"):
                return
            held = False
            for k in sorted(k for k in self._objects if k[2] == name):
                if self._objects[k]["metadata"].get("finalizers"):
                    self._mark_deleted(k, self._objects[k])
                    held = True
                else:
                    self._drop(k)
            if held:  # the controller tries again until their finalizers are removed
                self._schedule_finalize(name)
                return
            new = copy.deepcopy(obj)
            finalizers = [f for f in new.get("spec", {}).get("finalizers", []) if f != "kubernetes"]
            new.setdefault("spec", {})["finalizers"] = finalizers
            if not finalizers:
                new["spec"].pop("finalizers")
            self._put(key, new, "MODIFIED", obj)
            if not finalizers and not new["metadata"].get("finalizers"):
                self._drop(key)

    def apply(self, obj: Obj) -> Obj:
        """Create ``obj`` or merge it into the existing object (a sandbox convenience)."""
        resource = self.resolve(obj)
        meta = obj.get("metadata", {})
        with self._lock:
            ns = (meta.get("namespace") or "default") if resource.namespaced else None
            if self.exists(resource, meta.get("name", ""), ns):
                return self.patch(resource, meta["name"], obj, ns)
            return self.create(obj, resource=resource)
