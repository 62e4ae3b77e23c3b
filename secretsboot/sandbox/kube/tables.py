"""``Table`` answers (``Accept: application/json;as=Table;g=meta.k8s.io;v=v1``), what
plain ``kubectl get`` prints: the API server's columns for the kinds the project
reads, ``Name`` and ``Age`` (as for a custom resource) for the rest."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
Column = tuple[str, str, Callable[[Obj], Any]]


def human_duration(seconds: float) -> str:
    """apimachinery's ``duration.HumanDuration`` (``5m``, ``3h20m``, ``12d``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes, hours = s // 60, s // 3600
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _age(obj: Obj) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = dt.datetime.strptime(str(created), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())


def _ready(obj: Obj) -> str:
    status, spec = obj.get("status") or {}, obj.get("spec") or {}
    return f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"


_NAME: Column = ("Name", "name", lambda o: o["metadata"]["name"])
_AGE: Column = ("Age", "", _age)
_COLUMNS: dict[tuple[str, str], list[Column]] = {
    ("v1", "Secret"): [
        ("Type", "", lambda o: o.get("type", "Opaque")),
        ("Data", "", lambda o: len(o.get("data") or {})),
    ],
    ("v1", "ConfigMap"): [
        ("Data", "", lambda o: len(o.get("data") or {}) + len(o.get("binaryData") or {}))
    ],
    ("v1", "Namespace"): [("Status", "", lambda o: (o.get("status") or {}).get("phase", ""))],
    ("v1", "ServiceAccount"): [("Secrets", "", lambda o: len(o.get("secrets") or []))],
    ("v1", "Pod"): [("Status", "", lambda o: (o.get("status") or {}).get("phase", ""))],
    ("apps/v1", "Deployment"): [
        ("Ready", "", _ready),
        ("Up-to-date", "", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
    ],
}


def table(doc: Obj, *, many: bool, include: str | None) -> Obj:
    """``doc`` (an object or a list) as a ``meta.k8s.io/v1`` Table."""
    items = list(doc.get("items") or []) if many else [doc]
    api_version = str(doc.get("apiVersion", ""))
    kind = str(doc.get("kind", "")).removesuffix("List") if many else str(doc.get("kind", ""))
    columns = [_NAME, *_COLUMNS.get((api_version, kind), []), _AGE]
    rows = []
    for item in items:
        if include == "None":
            row_obj: Any = None
        elif include == "Object":
            row_obj = {"apiVersion": api_version, "kind": kind, **item}
        else:  # Metadata, the default
            row_obj = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": item.get("metadata") or {},
            }
        rows.append({"cells": [get(item) for _, _, get in columns], "object": row_obj})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": (doc.get("metadata") or {}).get("resourceVersion", "")},
        "columnDefinitions": [
            {
                "name": name,
                "type": "string" if name != "Data" else "integer",
                "format": fmt,
                "description": name,
                "priority": 0,
            }
            for name, fmt, _ in columns
        ],
        "rows": rows,
    }
