"""The Kubernetes fake's writes as the real API server does them, seen through the
official ``kubernetes`` client (kubeconfig only): ``dryRun``, strategic merge
patch and server-side apply."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.kube.resources import RESOURCES, Resource

from .kube_helpers import api, client_as, kube, raw
from .kube_helpers import make_ns as _ns

__all__ = ["api", "kube"]  # the fixtures


def _status(err: pytest.ExceptionInfo[ApiException]) -> tuple[int, dict[str, Any]]:
    return err.value.status, json.loads(err.value.body)


# --- dryRun -----------------------------------------------------------------------------
def test_dry_run_create_update_patch_delete_persist_nothing(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "dry")
    secret = {"metadata": {"name": "db"}, "stringData": {"password": "CANARY-dry-1"}}
    would = v1.create_namespaced_secret(ns, secret, dry_run="All")
    assert would.metadata.uid and would.metadata.creation_timestamp
    assert not would.metadata.resource_version  # never stored, so no version
    assert would.type == "Opaque" and set(would.data) == {"password"}
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_secret("db", ns)
    assert err.value.status == 404
    rv_before = v1.list_namespaced_secret(ns).metadata.resource_version

    real = v1.create_namespaced_secret(ns, secret)
    replaced = v1.replace_namespaced_secret(
        "db", ns, {"metadata": {"name": "db"}, "stringData": {"other": "x"}}, dry_run="All"
    )
    assert set(replaced.data) == {"other"}
    patched = v1.patch_namespaced_secret(
        "db", ns, {"metadata": {"labels": {"x": "y"}}}, dry_run="All"
    )
    assert patched.metadata.labels == {"x": "y"}
    v1.delete_namespaced_secret("db", ns, dry_run="All")
    live = v1.read_namespaced_secret("db", ns)
    assert live.metadata.resource_version == real.metadata.resource_version
    assert set(live.data) == {"password"} and not live.metadata.labels
    assert int(rv_before) < int(real.metadata.resource_version)
    # deleting a namespace for real would terminate it; a dry run leaves it Active
    gone = v1.delete_namespace(ns, dry_run="All")
    assert api_dict(gone)["status"]["phase"] == "Terminating"
    assert v1.read_namespace(ns).status.phase == "Active"


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.plural)
def test_dry_run_for_every_kind(kube: KubeFake, resource: Resource) -> None:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
    base = (
        f"{prefix}/namespaces/default/{resource.plural}"
        if resource.namespaced
        else f"{prefix}/{resource.plural}"
    )
    name = f"dry-{resource.singular}"
    body = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": {"name": name}}
    code, out = raw(kube, "POST", f"{base}?dryRun=All", body)
    assert (code, out["metadata"]["name"]) == (201, name)
    assert raw(kube, "GET", f"{base}/{name}")[0] == 404
    code, live = raw(kube, "POST", base, body)
    assert code == 201
    labelled = {**body, "metadata": {"name": name, "labels": {"dry": "run"}}}
    code, out = raw(kube, "PUT", f"{base}/{name}?dryRun=All", labelled)
    assert (code, out["metadata"]["labels"]["dry"]) == (200, "run")
    merge = "application/merge-patch+json"
    patch = {"metadata": {"labels": {"dry": "patch"}}}
    code, out = raw(kube, "PATCH", f"{base}/{name}?dryRun=All", patch, content_type=merge)
    assert (code, out["metadata"]["labels"]["dry"]) == (200, "patch")
    assert raw(kube, "DELETE", f"{base}/{name}?dryRun=All")[0] == 200
    code, after = raw(kube, "GET", f"{base}/{name}")
    assert code == 200 and after == live  # nothing of it was stored
    assert raw(kube, "DELETE", f"{base}/{name}")[0] == 200


def test_unknown_dry_run_value_is_the_real_422(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("default", {"metadata": {"name": "c"}}, dry_run="Bogus")
    code, status = _status(err)
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["message"].startswith('CreateOptions.meta.k8s.io "" is invalid: dryRun: ')
    assert status["details"]["causes"][0]["field"] == "dryRun"
    with pytest.raises(ApiException) as err:
        v1.delete_namespaced_config_map("nope", "default", dry_run="Bogus")
    assert _status(err)[1]["details"]["kind"] == "DeleteOptions"


def test_dry_run_needs_the_real_verb(kube: KubeFake, api: client.ApiClient) -> None:
    ns = _ns(api, "dry-rbac")
    rules = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}]
    with client_as(kube, api, ns, "reader", rules) as as_reader, pytest.raises(ApiException) as err:
        client.CoreV1Api(as_reader).create_namespaced_secret(
            ns, {"metadata": {"name": "x"}}, dry_run="All"
        )
    code, status = _status(err)
    assert code == 403 and 'cannot create resource "secrets"' in status["message"]


# --- strategic merge patch --------------------------------------------------------------
def _deployment() -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{"name": "fetch", "image": "sb:1"}],
                    "containers": [
                        {
                            "name": "app",
                            "image": "app:1",
                            "args": ["--a"],
                            "env": [{"name": "A", "value": "1"}],
                            "volumeMounts": [{"name": "secrets", "mountPath": "/secrets"}],
                        }
                    ],
                    "volumes": [{"name": "secrets", "emptyDir": {"medium": "Memory"}}],
                },
            },
        },
    }


def _pod_spec(dep: Any) -> dict[str, Any]:
    return dict(api_dict(dep)["spec"]["template"]["spec"])


def api_dict(obj: Any) -> dict[str, Any]:
    return dict(client.ApiClient().sanitize_for_serialization(obj))


def test_strategic_merge_patch_merges_by_key(kube: KubeFake, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    ns = _ns(api, "smp")
    apps.create_namespaced_deployment(ns, _deployment())
    # the client sends a dict patch as application/strategic-merge-patch+json
    sidecar = {"name": "sidecar", "image": "side:1"}
    patched = apps.patch_namespaced_deployment(
        "web", ns, {"spec": {"template": {"spec": {"containers": [sidecar]}}}}
    )
    assert [c["name"] for c in _pod_spec(patched)["containers"]] == ["app", "sidecar"]
    patched = apps.patch_namespaced_deployment(
        "web",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "app",
                                "image": "app:2",
                                "args": ["--b"],
                                "env": [{"name": "B", "value": "2"}],
                                "volumeMounts": [
                                    {"name": "cfg", "mountPath": "/etc/cfg"},
                                    {"name": "secrets", "mountPath": "/secrets", "readOnly": True},
                                ],
                            },
                            {"name": "sidecar", "$patch": "delete"},
                        ],
                        "initContainers": [{"name": "wait", "image": "w:1"}],
                        "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}],
                    }
                }
            }
        },
    )
    spec = _pod_spec(patched)
    (app,) = spec["containers"]
    assert app["image"] == "app:2"
    assert app["args"] == ["--b"]  # no patch strategy: replaced
    assert [e["name"] for e in app["env"]] == ["A", "B"]
    mounts = {m["mountPath"]: m for m in app["volumeMounts"]}
    assert set(mounts) == {"/secrets", "/etc/cfg"} and mounts["/secrets"]["readOnly"] is True
    assert [c["name"] for c in spec["initContainers"]] == ["fetch", "wait"]
    assert [v["name"] for v in spec["volumes"]] == ["secrets", "cfg"]
    # $patch: replace replaces the whole list; $setElementOrder orders it
    patched = apps.patch_namespaced_deployment(
        "web",
        ns,
        {
            "spec": {
                "template": {
                    "spec": {
                        "$setElementOrder/volumes": [{"name": "cfg"}, {"name": "secrets"}],
                        "initContainers": [{"name": "only", "image": "o:1"}, {"$patch": "replace"}],
                    }
                }
            }
        },
    )
    spec = _pod_spec(patched)
    assert [c["name"] for c in spec["initContainers"]] == ["only"]
    assert [v["name"] for v in spec["volumes"]] == ["cfg", "secrets"]
    # a JSON merge patch still replaces lists wholesale
    code, merged = raw(
        kube,
        "PATCH",
        f"/apis/apps/v1/namespaces/{ns}/deployments/web",
        {"spec": {"template": {"spec": {"initContainers": [{"name": "x", "image": "x"}]}}}},
        content_type="application/merge-patch+json",
    )
    assert code == 200
    assert [c["name"] for c in merged["spec"]["template"]["spec"]["initContainers"]] == ["x"]


def test_strategic_merge_patch_service_account_and_meta(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "smp-sa")
    v1.create_namespaced_service_account(
        ns,
        {"metadata": {"name": "app", "finalizers": ["a/x"]}, "secrets": [{"name": "s1"}]},
    )
    sa = v1.patch_namespaced_service_account(
        "app",
        ns,
        {
            "metadata": {"finalizers": ["b/y"], "labels": {"l": "1"}},
            "secrets": [{"name": "s2"}],
        },
    )
    assert sa.metadata.finalizers == ["a/x", "b/y"]  # a merged primitive list
    assert [s.name for s in sa.secrets] == ["s1", "s2"]
    sa = v1.patch_namespaced_service_account(
        "app", ns, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a/x"]}}
    )
    assert sa.metadata.finalizers == ["b/y"]
    cm = v1.create_namespaced_config_map(ns, {"metadata": {"name": "c"}, "data": {"a": "1"}})
    cm = v1.patch_namespaced_config_map("c", ns, {"data": {"$patch": "replace", "b": "2"}})
    assert cm.data == {"b": "2"}
    assert cm.metadata.uid


def test_strategic_merge_patch_on_a_custom_resource_is_415(kube: KubeFake) -> None:
    base = "/apis/secrets-store.csi.x-k8s.io/v1/namespaces/default/secretproviderclasses"
    body = {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "spc"},
        "spec": {"provider": "azure"},
    }
    assert raw(kube, "POST", base, body)[0] == 201
    code, status = raw(
        kube,
        "PATCH",
        f"{base}/spc",
        {"spec": {"x": 1}},
        content_type="application/strategic-merge-patch+json",
    )
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert "application/merge-patch+json" in status["message"]
    assert "strategic" not in status["message"]
    code, _ = raw(
        kube,
        "PATCH",
        f"{base}/spc",
        {"spec": {"x": 1}},
        content_type="application/merge-patch+json",
    )
    assert code == 200


# --- server-side apply ------------------------------------------------------------------
def _apply(
    api: client.ApiClient, ns: str, body: dict[str, Any], manager: str | None, **kw: Any
) -> Any:
    return client.CoreV1Api(api).patch_namespaced_config_map(
        body["metadata"]["name"],
        ns,
        body,
        _content_type="application/apply-patch+yaml",
        **({"field_manager": manager} if manager else {}),
        **kw,
    )


def _cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": data}


def test_server_side_apply(api: client.ApiClient) -> None:
    ns = _ns(api, "ssa")
    with pytest.raises(ApiException) as err:
        _apply(api, ns, _cm(a="1"), None)
    code, status = _status(err)
    assert (code, status["details"]["causes"][0]["field"]) == (422, "fieldManager")
    created = _apply(api, ns, _cm(a="1", b="2"), "team-a")
    assert created.data == {"a": "1", "b": "2"}
    (entry,) = created.metadata.managed_fields
    assert (entry.manager, entry.operation, entry.fields_type) == ("team-a", "Apply", "FieldsV1")
    assert entry.fields_v1 == {"f:data": {"f:a": {}, "f:b": {}}}
    # another manager may add its own fields...
    both = _apply(api, ns, _cm(c="3"), "team-b")
    assert both.data == {"a": "1", "b": "2", "c": "3"}
    # ...but not change one team-a owns, unless it forces
    with pytest.raises(ApiException) as err:
        _apply(api, ns, _cm(a="9"), "team-b")
    code, status = _status(err)
    assert (code, status["reason"]) == (409, "Conflict")
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "team-a": .data.a'
    forced = _apply(api, ns, _cm(a="9", c="3"), "team-b", force=True)
    assert forced.data["a"] == "9"
    owners = {e.manager: e.fields_v1 for e in forced.metadata.managed_fields}
    assert owners == {
        "team-a": {"f:data": {"f:b": {}}},
        "team-b": {"f:data": {"f:a": {}, "f:c": {}}},
    }
    # a field team-a stops applying (and nobody else owns) is removed
    dropped = _apply(api, ns, _cm(), "team-a")
    assert dropped.data == {"a": "9", "c": "3"}
    # an update by another client takes the fields it changes, with its User-Agent's name
    v1 = client.CoreV1Api(api)
    v1.patch_namespaced_config_map("cfg", ns, {"data": {"c": "4"}})
    with pytest.raises(ApiException) as err:
        _apply(api, ns, _cm(a="9", c="5"), "team-b")
    assert 'conflict with "OpenAPI-Generator" using v1: .data.c' in _status(err)[1]["message"]


def test_server_side_apply_merges_containers_by_name(api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    ns = _ns(api, "ssa-apps")
    apps.create_namespaced_deployment(ns, _deployment())
    applied = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "sidecar", "image": "side:1"}]},
            }
        },
    }
    out = apps.patch_namespaced_deployment(
        "web", ns, applied, field_manager="injector", _content_type="application/apply-patch+yaml"
    )
    assert [c["name"] for c in _pod_spec(out)["containers"]] == ["app", "sidecar"]
    mine = next(e for e in out.metadata.managed_fields if e.manager == "injector")
    containers = mine.fields_v1["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"sidecar"}': {".": {}, "f:image": {}, "f:name": {}}}
    # apply creates what is absent
    fresh = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fresh"},
        "spec": {**_deployment()["spec"], "replicas": 2},
    }
    created = apps.patch_namespaced_deployment(
        "fresh", ns, fresh, field_manager="injector", _content_type="application/apply-patch+yaml"
    )
    assert created.metadata.uid and created.spec.replicas == 2
    assert [e.operation for e in created.metadata.managed_fields] == ["Apply"]


def test_server_side_apply_that_creates_needs_create(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "ssa-rbac")
    rules = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}]
    with client_as(kube, api, ns, "patcher", rules) as as_patcher:
        with pytest.raises(ApiException) as err:
            _apply(as_patcher, ns, _cm(a="1"), "patcher")
        code, status = _status(err)
        assert code == 403 and 'cannot create resource "configmaps"' in status["message"]
        v1.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}})
        assert _apply(as_patcher, ns, _cm(a="1"), "patcher").data == {"a": "1"}
