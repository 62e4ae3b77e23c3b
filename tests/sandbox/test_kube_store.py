"""The Kubernetes fake's store, selectors and RBAC rules, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from secretsboot.sandbox.kube import ApiError, ObjectStore
from secretsboot.sandbox.kube.rbac import Attributes, UserInfo, authorize, rule_allows
from secretsboot.sandbox.kube.selectors import parse_label_selector
from secretsboot.sandbox.kube.store import json_patch, merge_patch


@pytest.fixture
def store() -> ObjectStore:
    s = ObjectStore()
    s.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "dev"}})
    return s


@pytest.mark.parametrize(
    ("selector", "labels", "matches"),
    [
        ("app=web", {"app": "web"}, True),
        ("app=web", {"app": "api"}, False),
        ("app==web", {"app": "web"}, True),
        ("app!=web", {}, True),
        ("app!=web", {"app": "web"}, False),
        ("tier in (a, b)", {"tier": "b"}, True),
        ("tier in (a,b)", {}, False),
        ("tier notin (a)", {}, True),
        ("tier notin (a)", {"tier": "a"}, False),
        ("legacy", {"legacy": ""}, True),
        ("legacy", {}, False),
        ("!legacy", {}, True),
        ("!legacy", {"legacy": "1"}, False),
        ("app=web,!legacy,tier in (x)", {"app": "web", "tier": "x"}, True),
        ("azure.workload.identity/use=true", {"azure.workload.identity/use": "true"}, True),
        ("", {"anything": "x"}, True),
    ],
)
def test_label_selectors(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector(selector).matches(labels) is matches


@pytest.mark.parametrize("bad", ["a b c", "=x", "k in (a", "-bad-=x"])
def test_malformed_selector_is_400(bad: str) -> None:
    with pytest.raises(ApiError) as err:
        parse_label_selector(bad)
    assert err.value.code == 400


def test_merge_patch_rfc7386() -> None:
    assert merge_patch({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": None, "e": 3}, "d": [2]}) == {
        "a": {"c": 2, "e": 3},
        "d": [2],
    }


def test_json_patch_ops() -> None:
    doc = {"metadata": {"labels": {"a": "1"}}, "list": [1, 2]}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/metadata/labels/b", "value": "2"},
            {"op": "replace", "path": "/metadata/labels/a", "value": "x"},
            {"op": "add", "path": "/list/-", "value": 3},
            {"op": "remove", "path": "/list/0"},
            {"op": "test", "path": "/list", "value": [2, 3]},
        ],
    )
    assert out == {"metadata": {"labels": {"a": "x", "b": "2"}}, "list": [2, 3]}
    assert doc["list"] == [1, 2]  # the input is not modified
    with pytest.raises(ApiError) as err:
        json_patch(doc, [{"op": "remove", "path": "/nope"}])
    assert err.value.code == 422


def _secret(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "dev"},
        **extra,
    }


def test_resource_versions_are_monotonic_and_conflicts_detected(store: ObjectStore) -> None:
    a = store.create(_secret("a", stringData={"k": "v"}))
    b = store.create(_secret("b"))
    assert int(b["metadata"]["resourceVersion"]) > int(a["metadata"]["resourceVersion"])
    updated = store.update({**a, "data": {"k": "dzI="}})
    assert int(updated["metadata"]["resourceVersion"]) > int(b["metadata"]["resourceVersion"])
    assert updated["metadata"]["uid"] == a["metadata"]["uid"]
    with pytest.raises(ApiError) as err:
        store.update({**a, "data": {}})  # a's resourceVersion is stale now
    assert (err.value.code, err.value.reason) == (409, "Conflict")


def test_secret_data_validation_and_string_data(store: ObjectStore) -> None:
    s = store.create(_secret("s", stringData={"k": "CANARY-store"}, data={"b": "eA=="}))
    assert s["data"] == {"b": "eA==", "k": "Q0FOQVJZLXN0b3Jl"}
    assert "stringData" not in s
    with pytest.raises(ApiError) as err:
        store.create(_secret("bad", data={"k": "not base64!"}))
    assert err.value.code == 422
    with pytest.raises(ApiError) as err:
        store.patch("secrets", "s", {"type": "kubernetes.io/tls"}, "dev")
    assert err.value.code == 422


def test_generate_name_and_name_rules(store: ObjectStore) -> None:
    made = store.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"generateName": "run-", "namespace": "dev"},
        }
    )
    assert made["metadata"]["name"].startswith("run-")
    assert len(made["metadata"]["name"]) == len("run-") + 5
    for bad in ("UPPER", "-lead", "x" * 254, "under_score"):
        with pytest.raises(ApiError) as err:
            store.create(_secret(bad))
        assert err.value.code == 422, bad
    # RBAC objects allow ':' (system:auth-delegator style names)
    store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "secretsboot:reader"},
            "rules": [],
        }
    )


def test_namespace_delete_cascades(store: ObjectStore) -> None:
    store.create(_secret("a"))
    store.namespace_finalize_seconds = 60.0  # finalized below, by hand
    terminating = store.delete("namespaces", "dev")
    assert terminating["status"]["phase"] == "Terminating"
    assert terminating["metadata"]["deletionTimestamp"]
    assert store.exists("secrets", "a", "dev")  # the namespace controller has not run yet
    with pytest.raises(ApiError) as err:
        store.create(_secret("b"))
    assert (err.value.code, err.value.reason) == (403, "Forbidden")
    store.finalize_namespace("dev")
    assert not store.exists("namespaces", "dev")
    assert not store.exists("secrets", "a", "dev")
    assert not store.exists("serviceaccounts", "default", "dev")
    with pytest.raises(ApiError) as err:
        store.create(_secret("b"))
    assert err.value.code == 404


def test_generation_bumps_on_spec_change_only(store: ObjectStore) -> None:
    dep = store.create(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "dev"},
            "spec": {"replicas": 1},
        }
    )
    assert dep["metadata"]["generation"] == 1
    dep = store.patch("deployments", "d", {"metadata": {"labels": {"x": "y"}}}, "dev")
    assert dep["metadata"]["generation"] == 1
    dep = store.patch("deployments", "d", {"spec": {"replicas": 2}}, "dev")
    assert dep["metadata"]["generation"] == 2


RULE = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db"]}


@pytest.mark.parametrize(
    ("rule", "attrs", "allowed"),
    [
        (RULE, Attributes("get", "", "secrets", "dev", "db"), True),
        (RULE, Attributes("get", "", "secrets", "dev", "other"), False),
        (RULE, Attributes("list", "", "secrets", "dev", None), False),
        (RULE, Attributes("get", "apps", "secrets", "dev", "db"), False),
        (RULE, Attributes("get", "", "configmaps", "dev", "db"), False),
        (
            {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
            Attributes("delete", "apps", "deployments", "dev", "x"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]},
            Attributes("create", "", "serviceaccounts/token", "dev", "sa"),
            True,
        ),
        (
            {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["create"]},
            Attributes("create", "", "serviceaccounts/token", "dev", "sa"),
            False,
        ),
        (
            {"apiGroups": [""], "resources": ["*/token"], "verbs": ["create"]},
            Attributes("create", "", "serviceaccounts/token", "dev", "sa"),
            True,
        ),
    ],
)
def test_rbac_rules(rule: dict[str, Any], attrs: Attributes, allowed: bool) -> None:
    assert rule_allows(rule, attrs) is allowed


def test_rbac_bindings_scope(store: ObjectStore) -> None:
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "prod"}})
    store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "secret-reader"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list"]}],
        }
    )
    # a RoleBinding to a ClusterRole grants it in the binding's namespace only
    store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "dev"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "secret-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "app"}],
        }
    )
    user = UserInfo(
        "system:serviceaccount:dev:app",
        "u",
        ("system:serviceaccounts", "system:serviceaccounts:dev"),
    )
    assert authorize(store, user, Attributes("get", "", "secrets", "dev", "x"))
    assert not authorize(store, user, Attributes("get", "", "secrets", "prod", "x"))
    assert not authorize(store, user, Attributes("list", "", "secrets", None, None))
    group_binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "all-sas"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "secret-reader",
        },
        "subjects": [{"kind": "Group", "name": "system:serviceaccounts:dev"}],
    }
    store.create(group_binding)
    assert authorize(store, user, Attributes("get", "", "secrets", "prod", "x"))
    assert authorize(
        store,
        UserInfo("admin", groups=("system:masters",)),
        Attributes("delete", "", "namespaces", None, "prod"),
    )


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"metadata": {"labels": {"app": "x" * 64}}}, "metadata.labels"),
        ({"metadata": {"labels": {"app": "has space"}}}, "metadata.labels"),
        ({"metadata": {"labels": {"Bad Key": "v"}}}, "metadata.labels"),
        ({"metadata": {"labels": {"UPPER.example/app": "v"}}}, "metadata.labels"),
        ({"metadata": {"annotations": {"a": 1}}}, "metadata.annotations[a]"),
        ({"data": {"bad/key": "dg=="}}, "data[bad/key]"),
    ],
)
def test_labels_annotations_and_data_keys_are_validated(
    store: ObjectStore, extra: dict[str, Any], field: str
) -> None:
    obj = _secret("v")
    obj["metadata"].update(extra.pop("metadata", {}))
    obj.update(extra)
    with pytest.raises(ApiError) as err:
        store.create(obj)
    assert err.value.code == 422
    assert err.value.details["causes"][0]["field"] == field


def test_valid_labels_pass(store: ObjectStore) -> None:
    obj = _secret("ok")
    obj["metadata"]["labels"] = {
        "azure.workload.identity/use": "true",
        "app.kubernetes.io/managed-by": "secretsboot",
        "empty": "",
    }
    obj["metadata"]["annotations"] = {"secretsboot.dev/fingerprint": "sha256:ab12 x y"}
    assert store.create(obj)["metadata"]["labels"]["empty"] == ""
