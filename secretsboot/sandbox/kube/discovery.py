"""Discovery documents of the Kubernetes fake (``/version``, ``/api``, ``/apis/...``):
just enough for the official client and ``kubectl`` to find every served resource."""

from __future__ import annotations

from typing import Any

from secretsboot.sandbox.kube import resources as res
from secretsboot.sandbox.kube.resources import ApiError

GIT_VERSION = "v1.31.0-secretsboot"


def version() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "31",
        "gitVersion": GIT_VERSION,
        "gitCommit": "0" * 40,
        "gitTreeState": "clean",
        "buildDate": "2026-11-01T00:00:00Z",
        "goVersion": "go1.23",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def group_list() -> dict[str, Any]:
    groups = []
    for group, versions in res.groups().items():
        if not group:
            continue
        gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        groups.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    for extra in ("authentication.k8s.io", "authorization.k8s.io"):
        gv = {"groupVersion": f"{extra}/v1", "version": "v1"}
        groups.append({"name": extra, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(group: str, version: str) -> dict[str, Any]:
    gv = f"{group}/{version}" if group else version
    verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
    items = [
        {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": verbs,
            **({"shortNames": list(r.short_names)} if r.short_names else {}),
        }
        for r in res.RESOURCES
        if r.group == group and r.version == version
    ]
    if group == "" and version == "v1":
        items.append(
            {
                "name": "serviceaccounts/token",
                "singularName": "",
                "namespaced": True,
                "group": "authentication.k8s.io",
                "version": "v1",
                "kind": "TokenRequest",
                "verbs": ["create"],
            }
        )
    if group == "authentication.k8s.io":
        for plural, kind in (
            ("tokenreviews", "TokenReview"),
            ("selfsubjectreviews", "SelfSubjectReview"),
        ):
            items.append(
                {
                    "name": plural,
                    "singularName": kind.lower(),
                    "namespaced": False,
                    "kind": kind,
                    "verbs": ["create"],
                }
            )
    if group == "authorization.k8s.io":
        items.append(
            {
                "name": "selfsubjectaccessreviews",
                "singularName": "selfsubjectaccessreview",
                "namespaced": False,
                "kind": "SelfSubjectAccessReview",
                "verbs": ["create"],
            }
        )
        items.append(
            {
                "name": "selfsubjectrulesreviews",
                "singularName": "selfsubjectrulesreview",
                "namespaced": False,
                "kind": "SelfSubjectRulesReview",
                "verbs": ["create"],
            }
        )
        items.append(
            {
                "name": "subjectaccessreviews",
                "singularName": "subjectaccessreview",
                "namespaced": False,
                "kind": "SubjectAccessReview",
                "verbs": ["create"],
            }
        )
    if not items:
        raise ApiError(404, "NotFound", "the server could not find the requested resource")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": items,
    }
