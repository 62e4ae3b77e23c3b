"""Request and response bodies of the Kubernetes fake: JSON (and the protobuf
envelope kubectl sends), and the metadata-only forms of objects and lists."""

from __future__ import annotations

from typing import Any

from secretsboot.sandbox._http import Request
from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError


def read_body(req: Request) -> Any:
    ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/json" and not ctype.endswith("+json"):
        # Like the real API server for a media type it does not serve (CBOR, protobuf):
        # 415 makes client-go (kubectl 1.3x) fall back to JSON.
        raise res.ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - "
            "accepted media types include: application/json, application/yaml",
        )
    try:
        return req.json()
    except ValueError:
        raise res.bad_request("the request body is not valid JSON") from None


# --- metadata-only reads (what `kubectl get --show-kind -o name`, the audit and
# controllers' metadata informers ask for): the Accept header's first media range
# "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1" (or
# "as=PartialObjectMetadata" for one object) gets metadata and nothing else.
_META = "meta.k8s.io/v1"


def as_metadata(accept: str, doc: dict[str, Any], *, many: bool) -> dict[str, Any]:
    """``doc`` as the API server serves it for this Accept header."""
    params: dict[str, str] = {}
    for part in accept.split(",")[0].split(";")[1:]:
        key, _, value = part.strip().partition("=")
        params[key.lower()] = value.strip()
    wanted = params.get("as")
    if not wanted:
        return doc
    expected = "PartialObjectMetadataList" if many else "PartialObjectMetadata"
    if wanted != expected or params.get("g") != "meta.k8s.io" or params.get("v") != "v1":
        raise ApiError(
            406, "NotAcceptable", f"only the following media types are accepted: {accept}"
        )
    if not many:
        return {"kind": expected, "apiVersion": _META, "metadata": doc.get("metadata") or {}}
    items = [
        {"kind": "PartialObjectMetadata", "apiVersion": _META, "metadata": i.get("metadata") or {}}
        for i in doc.get("items") or []
    ]
    return {
        "kind": expected,
        "apiVersion": _META,
        "metadata": doc.get("metadata") or {},
        "items": items,
    }
