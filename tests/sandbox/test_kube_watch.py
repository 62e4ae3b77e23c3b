"""Watches and the namespace lifecycle of the Kubernetes fake, through the official
client's ``watch.Watch().stream(...)`` (configured by kubeconfig only)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from secretsboot.sandbox.kube import KubeFake

from .kube_helpers import api, client_as, kube
from .kube_helpers import make_ns as _ns

__all__ = ["api", "kube"]  # the fixtures


@pytest.fixture(scope="module", autouse=True)
def quick_bookmarks(kube: KubeFake) -> None:
    kube.app.bookmark_seconds = 0.3


def _collect(
    list_fn: Callable[..., Any],
    *args: Any,
    until: Callable[[list[tuple[str, Any]]], bool],
    actions: Callable[[], None] | None = None,
    **kwargs: Any,
) -> list[tuple[str, Any]]:
    """Watch ``list_fn`` while ``actions`` run in a thread; stop once ``until`` holds.

    ``actions`` start with the first event, or at once when watching from a
    ``resource_version`` (every later change is streamed whenever the watch starts)."""
    seen: list[tuple[str, Any]] = []
    w = watch.Watch()
    worker = threading.Thread(target=actions) if actions else None
    started = False
    if worker is not None and kwargs.get("resource_version"):
        worker.start()
        started = True
    kwargs.setdefault("timeout_seconds", 10)
    for event in w.stream(list_fn, *args, **kwargs):
        seen.append((event["type"], event["object"]))
        if worker is not None and not started:
            worker.start()
            started = True
        if until(seen):
            w.stop()
    if worker is not None:
        worker.join(10)
    return seen


def _names(seen: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    return [(t, o.metadata.name) for t, o in seen if t != "BOOKMARK"]


def test_watch_streams_added_modified_deleted(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "watch-secrets")
    v1.create_namespaced_secret(ns, {"metadata": {"name": "first"}, "stringData": {"k": "v"}})

    def actions() -> None:
        v1.create_namespaced_secret(ns, {"metadata": {"name": "db"}, "stringData": {"k": "v"}})
        v1.patch_namespaced_secret("db", ns, {"metadata": {"labels": {"x": "1"}}})
        v1.create_namespaced_config_map(ns, {"metadata": {"name": "not-a-secret"}})
        v1.delete_namespaced_secret("db", ns)

    seen = _collect(
        v1.list_namespaced_secret,
        ns,
        actions=actions,
        until=lambda s: ("DELETED", "db") in _names(s),
    )
    assert _names(seen) == [
        ("ADDED", "first"),
        ("ADDED", "db"),
        ("MODIFIED", "db"),
        ("DELETED", "db"),
    ]
    modified = seen[2][1]
    assert modified.metadata.labels == {"x": "1"}
    versions = [int(o.metadata.resource_version) for _, o in seen]
    assert versions == sorted(versions)


def test_watch_from_a_resource_version_with_selectors(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "watch-rv")
    before = v1.create_namespaced_config_map(
        ns, {"metadata": {"name": "old", "labels": {"app": "a"}}}
    )
    rv = before.metadata.resource_version
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "new", "labels": {"app": "a"}}})
    v1.create_namespaced_config_map(ns, {"metadata": {"name": "other", "labels": {"app": "b"}}})
    # an object that starts matching the selector is ADDED, one that stops is DELETED
    v1.patch_namespaced_config_map("other", ns, {"metadata": {"labels": {"app": "a"}}})
    v1.patch_namespaced_config_map("old", ns, {"metadata": {"labels": {"app": "z"}}})
    seen = _collect(
        v1.list_namespaced_config_map,
        ns,
        resource_version=rv,
        label_selector="app=a",
        until=lambda s: len(_names(s)) >= 3,
    )
    assert _names(seen) == [("ADDED", "new"), ("ADDED", "other"), ("DELETED", "old")]


def test_watch_bookmarks_and_timeout(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "watch-bookmarks")
    start = time.monotonic()
    seen = _collect(
        v1.list_namespaced_service_account,
        ns,
        allow_watch_bookmarks=True,
        timeout_seconds=1,
        until=lambda s: False,
    )
    elapsed = time.monotonic() - start
    assert 0.9 <= elapsed < 5  # the server ended the stream after timeoutSeconds
    assert _names(seen) == [("ADDED", "default")]
    # the client hands bookmarks over as the raw object it got
    bookmarks = [o for t, o in seen if t == "BOOKMARK"]
    assert bookmarks and all(b["kind"] == "ServiceAccount" for b in bookmarks)
    assert all(int(b["metadata"]["resourceVersion"]) > 0 for b in bookmarks)


def test_watch_too_old_resource_version_is_410(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "watch-expired")
    old = v1.create_namespaced_secret(ns, {"metadata": {"name": "s"}}).metadata.resource_version
    v1.patch_namespaced_secret("s", ns, {"metadata": {"labels": {"a": "b"}}})
    kube.store.compact()
    with pytest.raises(ApiException) as err:
        _collect(v1.list_namespaced_secret, ns, resource_version=old, until=lambda s: True)
    assert err.value.status == 410
    assert "Expired: too old resource version" in str(err.value.reason)


def test_watch_needs_the_watch_verb(kube: KubeFake, api: client.ApiClient) -> None:
    ns = _ns(api, "watch-rbac")
    rules = [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]
    with client_as(kube, api, ns, "lister", rules) as as_lister:
        lister = client.CoreV1Api(as_lister)
        assert lister.list_namespaced_secret(ns).items == []
        with pytest.raises(ApiException) as err:
            _collect(lister.list_namespaced_secret, ns, until=lambda s: True)
    assert err.value.status == 403
    assert 'cannot watch resource "secrets"' in json.loads(err.value.body)["message"]


def test_watch_deployments_pods_and_namespaces(api: client.ApiClient) -> None:
    apps, v1 = client.AppsV1Api(api), client.CoreV1Api(api)
    ns = _ns(api, "watch-kinds")
    dep = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]},
            },
        },
    }
    seen = _collect(
        apps.list_namespaced_deployment,
        ns,
        resource_version=apps.list_namespaced_deployment(ns).metadata.resource_version,
        actions=lambda: apps.create_namespaced_deployment(ns, dep),
        until=lambda s: len(s) >= 1,
        allow_watch_bookmarks=False,
    )
    assert _names(seen) == [("ADDED", "web")]
    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    seen = _collect(
        v1.list_pod_for_all_namespaces,
        resource_version=v1.list_pod_for_all_namespaces().metadata.resource_version,
        actions=lambda: v1.create_namespaced_pod(ns, pod),
        field_selector=f"metadata.namespace={ns}",
        until=lambda s: ("ADDED", "p") in _names(s),
    )
    assert ("ADDED", "p") in _names(seen)


# --- namespace lifecycle ------------------------------------------------------------------
def test_namespace_goes_through_terminating(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "doomed")
    v1.create_namespaced_secret(ns, {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    # the namespace controller's turn comes when the test says so (a loaded machine
    # must not finalize the namespace before the checks made while it terminates)
    kube.store.namespace_finalize_seconds = 300.0
    try:
        events: list[tuple[str, Any]] = []

        def follow() -> None:
            events.extend(
                _collect(
                    v1.list_namespace,
                    field_selector=f"metadata.name={ns}",
                    until=lambda s: s[-1][0] == "DELETED",
                )
            )

        follower = threading.Thread(target=follow)
        follower.start()
        time.sleep(0.3)
        deleted = v1.delete_namespace(ns)
        assert client.ApiClient().sanitize_for_serialization(deleted)["status"]["phase"] == (
            "Terminating"
        )
        live = v1.read_namespace(ns)
        assert live.status.phase == "Terminating"
        assert live.metadata.deletion_timestamp is not None
        assert live.spec.finalizers == ["kubernetes"]
        with pytest.raises(ApiException) as err:
            v1.create_namespaced_config_map(ns, {"metadata": {"name": "late"}})
        status = json.loads(err.value.body)
        assert (err.value.status, status["reason"]) == (403, "Forbidden")
        assert status["message"] == (
            f'configmaps "late" is forbidden: unable to create new content in namespace {ns} '
            "because it is being terminated"
        )
        assert status["details"]["causes"][0]["reason"] == "NamespaceTerminating"
        assert v1.read_namespaced_secret("s", ns).metadata.name == "s"  # still there
        with pytest.raises(ApiException) as err:
            v1.create_namespace({"metadata": {"name": ns}})
        assert err.value.status == 409
        kube.store.finalize_namespace(ns)
        follower.join(15)
    finally:
        kube.store.namespace_finalize_seconds = 0.5
    with pytest.raises(ApiException) as err:
        v1.read_namespace(ns)
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_secret("s", ns)
    assert err.value.status == 404
    kinds = [(t, o.status.phase) for t, o in events]
    assert kinds[0] == ("ADDED", "Active")
    assert ("MODIFIED", "Terminating") in kinds
    assert kinds[-1][0] == "DELETED"
    v1.create_namespace({"metadata": {"name": ns}})  # the name is free again


def test_system_namespaces_may_not_be_deleted(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as err:
        client.CoreV1Api(api).delete_namespace("kube-system")
    status = json.loads(err.value.body)
    assert (err.value.status, status["message"]) == (
        403,
        'namespaces "kube-system" is forbidden: this namespace may not be deleted',
    )


def test_an_abandoned_watch_ends_on_the_server(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "watch-abandoned")

    def streams() -> int:
        return sum(t.name == "kubernetes-conn" for t in threading.enumerate())

    during = 0
    w = watch.Watch()
    for _ in w.stream(v1.list_namespaced_service_account, ns, timeout_seconds=600):
        during = streams()  # the watch's connection is among these
        w.stop()
    deadline = time.monotonic() + 5
    while streams() >= during and time.monotonic() < deadline:
        time.sleep(0.05)
    assert streams() < during  # its server side ended, not left waiting out 600 s


def test_finalizers_hold_objects_and_their_namespace(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "held")
    held = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}
    v1.create_namespaced_config_map(ns, held)
    deleted = client.ApiClient().sanitize_for_serialization(
        v1.delete_namespaced_config_map("held", ns)
    )
    assert deleted["metadata"]["deletionTimestamp"]  # the object, still there, marked
    assert v1.read_namespaced_config_map("held", ns).metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as err:
        v1.patch_namespaced_config_map(
            "held", ns, {"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}}
        )
    assert err.value.status == 422
    assert "no new finalizers can be added" in json.loads(err.value.body)["message"]
    v1.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_config_map("held", ns)
    assert err.value.status == 404  # the last finalizer removed, the object went
    # a namespace stays Terminating while an object in it keeps a finalizer
    v1.create_namespaced_config_map(ns, held)
    kube.store.namespace_finalize_seconds = 300.0
    try:
        v1.delete_namespace(ns)
        kube.store.finalize_namespace(ns)
        assert v1.read_namespace(ns).status.phase == "Terminating"
        assert v1.read_namespaced_config_map("held", ns).metadata.deletion_timestamp is not None
        v1.patch_namespaced_config_map("held", ns, {"metadata": {"finalizers": None}})
        kube.store.finalize_namespace(ns)
    finally:
        kube.store.namespace_finalize_seconds = 0.5
    with pytest.raises(ApiException) as err:
        v1.read_namespace(ns)
    assert err.value.status == 404
