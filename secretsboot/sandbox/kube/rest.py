"""Resource requests of the Kubernetes fake: get, list, watch, create, update,
patch (JSON merge, JSON, strategic merge, server-side apply) and delete, each
authorized by RBAC with the verb the real API server checks (``watch`` for a
watch; a dry run needs the verb it simulates) and honouring ``dryRun=All``.
:class:`Rest` is mixed into :class:`~secretsboot.sandbox.kube.app.KubeApp`.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.kube import apply as ssa
from secretsboot.sandbox.kube import openapi
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.bodies import as_metadata, read_body
from secretsboot.sandbox.kube.patches import PATCH_TYPES
from secretsboot.sandbox.kube.rbac import Attributes, UserInfo
from secretsboot.sandbox.kube.resources import ApiError, Resource
from secretsboot.sandbox.kube.selectors import parse_field_selector, parse_label_selector
from secretsboot.sandbox.kube.store import ObjectStore
from secretsboot.sandbox.kube.watch import WatchSpec, WatchStream, parse_timeout

# The API server answers DELETE with the object for these (ReturnDeletedObject or
# graceful deletion), with a Status for everything else.
_DELETE_RETURNS_OBJECT = frozenset({"pods", "serviceaccounts", "namespaces"})

#: (method, names one object?) -> the RBAC verb of a resource request
_VERBS = {
    ("GET", False): "list",
    ("GET", True): "get",
    ("HEAD", True): "get",
    ("HEAD", False): "list",
    ("POST", False): "create",
    ("PUT", True): "update",
    ("PATCH", True): "patch",
    ("DELETE", True): "delete",
}
#: the verb -> the options object the API server validates its query against
_OPTIONS = {"create": "CreateOptions", "update": "UpdateOptions", "patch": "PatchOptions"}

_NOT_HERE = "the server could not find the requested resource"


def _status_success(resource: Resource, obj: dict[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"], "kind": resource.plural}
    if resource.group:
        details["group"] = resource.group
    details["uid"] = obj["metadata"].get("uid")
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def dry_run(values: list[str], options: str) -> bool:
    """``dryRun``: absent (False) or ``All`` (True); anything else is the real 422."""
    if any(v != "All" for v in values):
        raise res.invalid_options(
            options,
            "dryRun",
            "FieldValueNotSupported",
            f'Unsupported value: {json.dumps(values)}: supported values: "All"',
        )
    return bool(values)


def locate(segs: list[str]) -> tuple[str, Resource, str | None, str | None, str | None]:
    """``/api[s]/...`` -> (group, resource, namespace, name, subresource); 404 otherwise."""
    not_here = ApiError(404, "NotFound", _NOT_HERE)
    if segs[0] == "api" and len(segs) >= 3:
        group, version, rest = "", segs[1], segs[2:]
    elif segs[0] == "apis" and len(segs) >= 4:
        group, version, rest = segs[1], segs[2], segs[3:]
    else:
        raise not_here
    namespace: str | None = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    resource = res.by_path(group, version, rest[0])
    if resource is None or len(rest) > 3:
        raise not_here
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if namespace is not None and not resource.namespaced:
        raise not_here
    if resource.namespaced and namespace is None and name is not None:
        raise not_here
    return group, resource, namespace, name, sub


def check_kind(resource: Resource, body: dict[str, Any]) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (kind and kind != resource.kind) or (api_version and api_version != resource.api_version):
        raise res.bad_request(
            f"the object provided is unrecognized (must be of type {resource.kind}): "
            f"{api_version}/{kind}"
        )


class Rest:
    """The REST verbs over the store (mixed into KubeApp)."""

    store: ObjectStore
    closing: threading.Event
    bookmark_seconds: float

    def _authorize(self, user: UserInfo, attrs: Attributes) -> None:
        raise NotImplementedError

    def _token_request(self, req: Request, user: UserInfo, ns: str, name: str) -> Response:
        raise NotImplementedError

    def _resource_request(self, req: Request, user: UserInfo, segs: list[str]) -> Response:
        group, resource, namespace, name, sub = locate(segs)
        if sub is not None:
            if (resource.plural, sub, req.method) == ("serviceaccounts", "token", "POST"):
                return self._token_request(req, user, str(namespace), str(name))
            raise ApiError(404, "NotFound", _NOT_HERE)
        verb = _VERBS.get((req.method, name is not None))
        if verb is None:
            raise ApiError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
            )
        if verb == "list" and req.arg("watch") in ("true", "1"):
            verb = "watch"
        body = read_body(req) if verb in ("create", "update", "delete") else None
        attr_name = None if verb == "create" and isinstance(body, dict) else name
        self._authorize(user, Attributes(verb, group, resource.plural, namespace, attr_name))
        if verb == "watch":
            return self._watch(req, resource, namespace)
        if verb == "list":
            return self._list(req, resource, namespace)
        if verb == "get":
            got = self.store.get(resource, str(name), namespace)
            return Response(200, as_metadata(req.headers.get("accept", ""), got, many=False))
        if verb == "delete":
            return self._delete(req, resource, str(name), namespace, body)
        if verb in ("create", "update"):
            return self._write(req, verb, resource, name, namespace, body)
        return self._patch(req, user, resource, str(name), namespace)

    def _list(self, req: Request, resource: Resource, namespace: str | None) -> Response:
        limit = req.arg("limit")
        listed = self.store.list(
            resource,
            namespace,
            label_selector=req.arg("labelSelector"),
            field_selector=req.arg("fieldSelector"),
            limit=int(limit) if limit and limit.isdigit() else None,
            continue_token=req.arg("continue"),
        )
        return Response(200, as_metadata(req.headers.get("accept", ""), listed, many=True))

    def _watch(self, req: Request, resource: Resource, namespace: str | None) -> Response:
        labels = parse_label_selector(req.arg("labelSelector"))
        fields = parse_field_selector(req.arg("fieldSelector"), resource.plural)
        rv = req.arg("resourceVersion")
        if rv not in (None, "") and not str(rv).isdigit():
            raise res.bad_request(f'invalid resource version "{rv}"')
        bookmarks = req.arg("allowWatchBookmarks") in ("true", "1")
        initial = req.arg("sendInitialEvents") in ("true", "1")
        if initial and (req.arg("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            raise res.invalid_options(
                "ListOptions",
                "sendInitialEvents",
                "FieldValueForbidden",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to "
                "NotOlderThan and allowWatchBookmarks to true",
            )
        spec = WatchSpec(
            resource=resource,
            namespace=namespace,
            matches=lambda o: (
                labels.matches(o.get("metadata", {}).get("labels")) and fields.matches(o)
            ),
            resource_version=rv,
            timeout=parse_timeout(req.arg("timeoutSeconds")),
            bookmarks=bookmarks,
            initial_events=initial,
        )
        stream = WatchStream(
            self.store.events, self.store.snapshot, spec, self.closing, self.bookmark_seconds
        )
        return Response(200, headers={"Content-Type": "application/json"}, stream=stream)

    def _delete(
        self, req: Request, resource: Resource, name: str, namespace: str | None, body: Any
    ) -> Response:
        values = list(req.query.get("dryRun", []))
        if isinstance(body, dict) and isinstance(body.get("dryRun"), list):
            values += [str(v) for v in body["dryRun"]]
        dry = dry_run(values, "DeleteOptions")
        deleted = self.store.delete(resource, name, namespace, dry_run=dry)
        pending = bool(deleted["metadata"].get("finalizers"))  # kept until they are removed
        if resource.plural in _DELETE_RETURNS_OBJECT or pending:
            return Response(200, deleted)
        return Response(200, _status_success(resource, deleted))

    def _write(
        self,
        req: Request,
        verb: str,
        resource: Resource,
        name: str | None,
        namespace: str | None,
        body: Any,
    ) -> Response:
        """``create`` (201) or ``update`` (200) of a JSON object body."""
        dry = dry_run(req.query.get("dryRun", []), _OPTIONS[verb])
        if not isinstance(body, dict):
            raise res.bad_request("the request body must be a JSON object")
        check_kind(resource, body)
        warnings = openapi.check_fields(resource, body, req.arg("fieldValidation"))
        manager = ssa.manager_of(req)
        if verb == "create":
            ssa.record_update(None, body, manager, resource)
            created = self.store.create(body, resource=resource, namespace=namespace, dry_run=dry)
            return Response(201, created, warnings)
        body_name = (body.get("metadata") or {}).get("name")
        if body_name != name:
            raise res.bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        live = self.store.get(resource, str(name), namespace)
        ssa.record_update(live, body, manager, resource)
        updated = self.store.update(body, resource=resource, namespace=namespace, dry_run=dry)
        return Response(200, updated, warnings)

    def _patch(
        self, req: Request, user: UserInfo, resource: Resource, name: str, ns: str | None
    ) -> Response:
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        patch_type = PATCH_TYPES.get(ctype)
        if patch_type is None:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types "
                f"include: {', '.join(PATCH_TYPES)}",
            )
        dry = dry_run(req.query.get("dryRun", []), "PatchOptions")
        force = req.arg("force")
        if patch_type == "apply":
            if not self.store.exists(resource, name, ns):  # an apply that creates: both verbs
                self._authorize(
                    user, Attributes("create", resource.group, resource.plural, ns, name)
                )
            return ssa.server_side_apply(self.store, req, resource, name, ns, dry_run=dry)
        if force is not None:
            raise res.invalid_options(
                "PatchOptions",
                "force",
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
            )
        patch = read_body(req)
        warnings = (
            openapi.check_fields(resource, patch, req.arg("fieldValidation"))
            if patch_type != "json"
            else {}
        )
        live = self.store.get(resource, name, ns)
        patched = self.store.patch(resource, name, patch, ns, patch_type=patch_type, dry_run=True)
        ssa.record_update(live, patched, ssa.manager_of(req), resource)
        return Response(200, self.store.replace_stored(resource, patched, dry_run=dry), warnings)
