"""The OpenAPI v3 documents of the Kubernetes fake (``/openapi/v3``), as far as
kubectl reads them: each group version lists, per kind, the operations with their
``x-kubernetes-group-version-kind`` and the ``fieldValidation`` query parameter,
so kubectl (``apply``, ``create -f``) finds that the server validates fields
itself and sends ``fieldValidation=Strict`` instead of validating client-side
against schemas the fake does not carry (kubectl's strategic merge patches then
use its own compiled-in types, as against any server).

With ``Strict`` the fake rejects unknown top-level and ``metadata`` fields with
the real 400 (``strict decoding error: unknown field "spec2"``); deeper fields
are not checked (no schemas). ``Warn`` answers with a ``Warning`` header instead.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError, Resource

_PARAMS = [
    {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force", "pretty")
]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _doc(group: str, version: str) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in res.RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        gvk = {"group": group, "version": version, "kind": r.kind}
        scope = f"namespaces/{{namespace}}/{r.plural}" if r.namespaced else r.plural
        base = f"/{_gv_path(group, version)}/{scope}"
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": _PARAMS, "responses": {}}
        paths[base] = {"post": {**op, "x-kubernetes-action": "post"}}
        paths[f"{base}/{{name}}"] = {
            verb: {**op, "x-kubernetes-action": action}
            for verb, action in (("get", "get"), ("put", "put"), ("patch", "patch"))
        }
    if not paths:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    info = {"title": "Kubernetes", "version": "v1.31.0"}
    return {"openapi": "3.0.0", "info": info, "paths": paths, "components": {"schemas": {}}}


def index() -> dict[str, Any]:
    """``/openapi/v3``: every group version and the URL of its document."""
    paths = {}
    for group, versions in res.groups().items():
        for version in versions:
            path = _gv_path(group, version)
            digest = hashlib.sha256(json.dumps(_doc(group, version)).encode()).hexdigest()
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest[:16].upper()}"}
    return {"paths": paths}


def document(path: str) -> dict[str, Any]:
    """``/openapi/v3/api/v1``, ``/openapi/v3/apis/apps/v1``..."""
    segs = path.strip("/").split("/")
    if segs[:1] == ["api"] and len(segs) == 2:
        return _doc("", segs[1])
    if segs[:1] == ["apis"] and len(segs) == 3:
        return _doc(segs[1], segs[2])
    raise ApiError(404, "NotFound", "the server could not find the requested resource")


_TOP = {
    "apiVersion", "kind", "metadata", "spec", "status", "data", "stringData", "binaryData",
    "type", "immutable", "rules", "aggregationRule", "subjects", "roleRef", "secrets",
    "imagePullSecrets", "automountServiceAccountToken",
}  # fmt: skip
_METADATA = {
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
}  # fmt: skip


def unknown_fields(resource: Resource, body: Any) -> list[str]:
    """Top-level and ``metadata`` fields a built-in kind does not have."""
    if not resource.builtin or not isinstance(body, dict):
        return []
    unknown = [k for k in body if k not in _TOP]
    meta = body.get("metadata")
    if isinstance(meta, dict):
        unknown += [f"metadata.{k}" for k in meta if k not in _METADATA]
    return unknown


def check_fields(resource: Resource, body: Any, directive: str | None) -> dict[str, str]:
    """Apply ``fieldValidation``: 400 on Strict, ``Warning`` headers on Warn."""
    if directive not in (None, "", "Ignore", "Warn", "Strict"):
        raise res.invalid_options(
            "CreateOptions",
            "fieldValidation",
            "FieldValueNotSupported",
            f'Unsupported value: "{directive}": supported values: "Ignore", "Strict", "Warn"',
        )
    unknown = unknown_fields(resource, body)
    if not unknown or directive == "Ignore":  # unset: Warn, the server's default
        return {}
    if directive == "Strict":
        detail = ", ".join(f'unknown field "{f}"' for f in unknown)
        raise res.bad_request(f"strict decoding error: {detail}")
    return {"Warning": ", ".join(f'299 - "unknown field \\"{f}\\""' for f in unknown)}
