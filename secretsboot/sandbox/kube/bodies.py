"""Request and response bodies of the Kubernetes fake: JSON (and the protobuf
envelope kubectl sends), and the metadata-only forms of objects and lists."""

from __future__ import annotations

from typing import Any

import yaml

from secretsboot.sandbox._http import Request
from secretsboot.sandbox.kube import protobuf, tables
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError


def read_body(req: Request) -> Any:
    """The request's object from JSON, YAML or Kubernetes protobuf (kubectl >= 1.32
    sends protobuf for built-in kinds); any other media type is the real 415."""
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == protobuf.MEDIA_TYPE:
        return protobuf.decode(req.body) if req.body else None
    if ctype == "application/yaml":
        try:
            return yaml.safe_load(req.body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError):
            raise res.bad_request("the request body is not valid YAML") from None
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        raise res.ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            f"application/json, application/yaml, {protobuf.MEDIA_TYPE}",
        )
    try:
        return req.json()
    except ValueError:
        raise res.bad_request("the request body is not valid JSON") from None


# --- what a read answers, by the Accept header's media ranges, first acceptable wins:
# plain JSON; "application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1"
# (metadata only: `kubectl get -o name`, the audit, metadata informers); or
# "as=Table" (what plain `kubectl get` prints). Protobuf ranges are passed over,
# as a server answers JSON to a client that accepts both.
_META = "meta.k8s.io/v1"


def _ranges(accept: str) -> list[tuple[str, dict[str, str]]]:
    out = []
    for media_range in (accept or "application/json").split(","):
        mtype, *params = media_range.split(";")
        parsed = {}
        for part in params:
            key, _, value = part.strip().partition("=")
            parsed[key.lower()] = value.strip()
        out.append((mtype.strip().lower(), parsed))
    return out


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": _META, "metadata": obj["metadata"]}


def as_metadata(accept: str, doc: dict[str, Any], *, many: bool) -> dict[str, Any]:
    """``doc`` (an object, or a list when ``many``) as served for this Accept header."""
    for mtype, params in _ranges(accept):
        if mtype not in ("application/json", "application/*", "*/*"):
            continue
        wanted = params.get("as")
        if not wanted:
            return doc
        if params.get("g") != "meta.k8s.io" or params.get("v") not in ("v1", "v1beta1"):
            continue
        if wanted == "Table":
            return tables.table(doc, many=many, include=params.get("includeobject"))
        if wanted == ("PartialObjectMetadataList" if many else "PartialObjectMetadata"):
            if not many:
                return _partial(doc)
            return {
                "kind": wanted,
                "apiVersion": _META,
                "metadata": doc.get("metadata") or {},
                "items": [_partial(i) for i in doc.get("items") or []],
            }
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, application/yaml, "
        "application/json;as=Table;v=v1;g=meta.k8s.io, "
        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    )
