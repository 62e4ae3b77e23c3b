"""Server-side apply (``PATCH`` with ``application/apply-patch+yaml``), a faithful
subset of the API server's:

- ``fieldManager`` is required (the real 422 otherwise); ``force`` only here;
- the object is created when absent (201), else the applied configuration is
  merged into it by the same merge keys as strategic merge patch (maps granular,
  ``containers`` by ``name``, ``volumeMounts`` by ``mountPath``...);
- a field another manager owns with a different value is a 409 conflict with the
  real message (``Apply failed with 1 conflict: conflict with "kubectl-create"
  using v1: .data.k``) unless ``force=true``, which takes it over;
- fields this manager applied before and no longer applies are removed, unless
  another manager owns them;
- ``metadata.managedFields`` records each manager's fields (``FieldsV1``).

Not modelled: per-version type conversion, ``x-kubernetes-list-type`` of custom
resources (their lists are atomic here), and the defaulting the real server
applies before comparing values.
"""

from __future__ import annotations

from typing import Any

import yaml

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.kube import fields as fs
from secretsboot.sandbox.kube import openapi
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.patches import merge_by_schema
from secretsboot.sandbox.kube.resources import ApiError, Resource
from secretsboot.sandbox.kube.store import ObjectStore

Obj = dict[str, Any]
record_update = fs.record_update


def manager_of(req: Request) -> str | None:
    """The request's field manager: ``fieldManager``, else its User-Agent's product."""
    named = req.arg("fieldManager")
    if named:
        return named[:128]
    agent = req.headers.get("user-agent", "").split("/")[0].strip()
    return agent[:128] or None


def _manager_label(e: Obj) -> str:
    name = f'"{e.get("manager")}"'
    return f"{name} using {e.get('apiVersion')}" if e.get("operation") == "Update" else name


def _conflict(conflicts: list[tuple[Obj, fs.Path]]) -> ApiError:
    causes = [
        {
            "reason": "FieldManagerConflict",
            "message": f"conflict with {_manager_label(e)}",
            "field": fs.path_str(p),
        }
        for e, p in conflicts
    ]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = (
            f"Apply failed with 1 conflict: conflict with {_manager_label(e)}: {fs.path_str(p)}"
        )
    else:
        lines: list[str] = []
        for label in dict.fromkeys(_manager_label(e) for e, _ in conflicts):
            lines.append(f"conflicts with {label}")
            lines += [f"- {fs.path_str(p)}" for e, p in conflicts if _manager_label(e) == label]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, causes=causes)


def _parse(req: Request, resource: Resource, name: str) -> Obj:
    try:
        body = yaml.safe_load(req.body.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise res.bad_request("error decoding YAML: the apply patch is not valid YAML") from None
    if not isinstance(body, dict):
        raise res.bad_request("the apply patch must be a YAML or JSON object")
    if not body.get("apiVersion") or not body.get("kind"):
        raise res.bad_request(
            "invalid object type: the apply patch must set apiVersion and kind "
            f"({resource.api_version}, {resource.kind})"
        )
    if (body["apiVersion"], body["kind"]) != (resource.api_version, resource.kind):
        raise res.bad_request(
            f"the object provided is unrecognized (must be of type {resource.kind}): "
            f"{body['apiVersion']}/{body['kind']}"
        )
    meta = body.setdefault("metadata", {})
    if meta.get("name", name) != name:
        raise res.bad_request(
            f"the name of the object ({meta.get('name')}) does not match the name on the "
            f"URL ({name})"
        )
    meta["name"] = name
    meta.pop("managedFields", None)
    return body


def server_side_apply(
    store: ObjectStore,
    req: Request,
    resource: Resource,
    name: str,
    ns: str | None,
    *,
    dry_run: bool,
) -> Response:
    """Answer one apply PATCH (see the module docstring)."""
    manager = req.arg("fieldManager")
    if not manager:
        raise res.invalid_options(
            "PatchOptions",
            "fieldManager",
            "FieldValueRequired",
            "Required value: is required for apply patch",
        )
    body = _parse(req, resource, name)
    openapi.check_fields(resource, body, req.arg("fieldValidation"))
    schema = fs.schema_of(resource)
    applied = fs.fieldset(body, schema)
    if not store.exists(resource, name, ns):
        body["metadata"]["managedFields"] = [
            fs.entry(manager, "Apply", resource.api_version, applied)
        ]
        created = store.create(body, resource=resource, namespace=ns, dry_run=dry_run)
        return Response(201, created)
    live = store.get(resource, name, ns)
    force = req.arg("force") in ("true", "1")
    entries = list((live.get("metadata") or {}).get("managedFields") or [])
    mine: set[fs.Path] = set()
    others: list[tuple[Obj, set[fs.Path]]] = []
    for e in entries:
        paths = fs.from_fields_v1(e.get("fieldsV1"))
        if (e.get("manager"), e.get("operation")) == (manager, "Apply"):
            mine = paths
        else:
            others.append((e, paths))
    conflicts = [
        (e, p)
        for e, paths in others
        for p in sorted(applied & paths)
        if not p[-1].startswith("k:") and fs.value_at(live, p) != fs.value_at(body, p)
    ]
    if conflicts and not force:
        raise _conflict(conflicts)
    taken = {p for _, p in conflicts}
    merged = merge_by_schema(live, body, schema)  # maps by key, lists by merge key
    still_owned = set().union(*(paths - taken for _, paths in others)) if others else set()
    for path in sorted(mine - applied - still_owned, key=len, reverse=True):
        fs.remove_path(merged, path)
    new_entries = [
        {**e, "fieldsV1": fs.to_fields_v1(paths - taken)} for e, paths in others if paths - taken
    ]
    new_entries.append(fs.entry(manager, "Apply", resource.api_version, applied))
    merged["metadata"]["managedFields"] = new_entries
    merged["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    return Response(200, store.replace_stored(resource, merged, dry_run=dry_run))
