"""What the API server does to an object of each kind before storing it: the registry
strategies' PrepareForCreate and PrepareForUpdate, defaulting, and the validation of
names, immutable fields and finalizers.

Plain functions on plain dicts: :mod:`.store` calls them under its lock and keeps the
objects, the resourceVersions and the events.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import json
import secrets as _secrets
import uuid
from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import Resource

Obj = dict[str, Any]

#: set by the server: a create drops what the client sent
_SERVER_SET = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp")
#: an update keeps them from the stored object, whatever the client sent
_KEPT_ON_UPDATE = ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp")


def now() -> str:
    """A timestamp as the API server writes it (``2024-01-02T03:04:05Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_name(resource: Resource, meta: Any) -> str:
    """The name of an object being created: ``metadata.name``, else ``generateName`` and
    five random characters; 422 when there is neither or it is not a valid name."""
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
    return name


def prepare_for_create(resource: Resource, obj: Obj, name: str, namespace: str | None) -> None:
    """Server-set metadata (uid, creationTimestamp, generation), the namespace strategy's
    finalizer and phase, then defaulting and validation; ``obj`` is changed in place."""
    meta = obj["metadata"]
    obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
    meta["name"] = name
    if namespace is not None:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    for server_field in _SERVER_SET:
        meta.pop(server_field, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now()
    if resource.plural == "namespaces":
        spec = obj["spec"] = dict(obj.get("spec") or {})
        finalizers = list(spec.get("finalizers") or [])
        spec["finalizers"] = [*finalizers, *(["kubernetes"] * ("kubernetes" not in finalizers))]
        obj["status"] = {"phase": "Active"}
    if "spec" in obj:
        meta["generation"] = 1
    normalize(resource, obj, name)


def prepare_for_update(resource: Resource, current: Obj, obj: Obj) -> bool:
    """The stored object's identity carried over, ``generation`` bumped when the spec
    changed, then defaulting and validation; ``obj`` is changed in place. Returns
    whether the object is being deleted (its finalizers then may only go)."""
    name = current["metadata"]["name"]
    check_immutable(resource, name, current, obj)
    meta = obj.setdefault("metadata", {})
    obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
    if resource.plural == "namespaces":  # only the namespace controller changes these
        obj["spec"] = {**(obj.get("spec") or {}), **copy.deepcopy(current.get("spec") or {})}
        obj["status"] = copy.deepcopy(current.get("status") or {})
    for keep in _KEPT_ON_UPDATE:
        if keep in current["metadata"]:
            meta[keep] = current["metadata"][keep]
        else:
            meta.pop(keep, None)
    generation = current["metadata"].get("generation")
    if generation is not None or "spec" in obj:
        changed = obj.get("spec") != current.get("spec")
        meta["generation"] = (generation or 0) + (1 if changed else 0) or 1
    normalize(resource, obj, name)
    deleting = bool(meta.get("deletionTimestamp")) and resource.plural != "namespaces"
    if deleting:
        check_finalizers(resource, name, current, obj)
    return deleting


def normalize(resource: Resource, obj: Obj, name: str) -> None:
    """Validate ``obj`` and apply the kind's defaults (a Secret's ``stringData`` folded
    into base64 ``data``, a Pod's phase, a Namespace's name label)."""
    res.validate_object(resource, obj, name)
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
        labels = obj["metadata"].setdefault("labels", {})
        labels.setdefault("kubernetes.io/metadata.name", name)


def check_immutable(resource: Resource, name: str, current: Obj, obj: Obj) -> None:
    """The fields an update may not change (422, as the API server's validation)."""
    if resource.plural in ("rolebindings", "clusterrolebindings") and obj.get(
        "roleRef"
    ) != current.get("roleRef"):
        raise res.invalid(resource, name, "roleRef", obj.get("roleRef"), "cannot change roleRef")
    if resource.plural == "secrets" and obj.get("type", "Opaque") != current.get("type"):
        raise res.invalid(resource, name, "type", obj.get("type"), "field is immutable")
    if current.get("immutable") and (obj.get("data") != current.get("data") or "stringData" in obj):
        raise res.invalid(
            resource, name, "data", "<data>", "field is immutable when `immutable` is set"
        )


def check_finalizers(resource: Resource, name: str, current: Obj, obj: Obj) -> None:
    """An object being deleted may lose finalizers, never gain one."""
    old = set(current["metadata"].get("finalizers") or [])
    added = sorted(set(obj["metadata"].get("finalizers") or []) - old)
    if added:
        why = (
            "Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {json.dumps(added)}"
        )
        raise res.field_error(resource, name, "metadata.finalizers", why, "FieldValueForbidden")


def marked_deleted(obj: Obj) -> Obj:
    """A copy of ``obj`` with ``deletionTimestamp`` set (graceful deletion, period 0)."""
    new = copy.deepcopy(obj)
    new["metadata"]["deletionTimestamp"] = now()
    new["metadata"]["deletionGracePeriodSeconds"] = 0
    return new


def default_service_account(namespace: str) -> Obj:
    """The ``default`` ServiceAccount the service-account controller adds to a namespace."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {
            "name": "default",
            "namespace": namespace,
            "uid": str(uuid.uuid4()),
            "creationTimestamp": now(),
        },
    }
