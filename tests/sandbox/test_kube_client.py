"""The Kubernetes fake as the official ``kubernetes`` client sees it (kubeconfig only)."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.kube.resources import RESOURCES, Resource
from secretsboot.sandbox.tokens import unverified_claims

from .kube_helpers import api, kube, raw

__all__ = ["api", "kube"]  # the fixtures


def _ns(api: client.ApiClient, name: str) -> str:
    client.CoreV1Api(api).create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name))
    )
    return name


def _raw(
    kube: KubeFake, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    return raw(kube, method, path, body, token=token if token is not None else "")


def test_kubeconfig_shape(kube: KubeFake) -> None:
    import yaml

    cfg = yaml.safe_load(kube.kubeconfig_path.read_text())
    assert cfg["current-context"] == "secretsboot-sandbox"
    assert cfg["clusters"][0]["cluster"] == {
        "server": kube.url,
        "certificate-authority": str(kube.ca.ca_path),
    }
    assert cfg["users"][0]["user"]["token"] == kube.admin_token
    assert (kube.kubeconfig_path.stat().st_mode & 0o777) == 0o600


def test_secret_crud_and_metadata(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "crud")
    created = v1.create_namespaced_secret(
        ns,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="db", labels={"app": "orders"}),
            string_data={"password": "CANARY-kube-1"},
        ),
    )
    assert created.metadata.uid and created.metadata.creation_timestamp
    assert created.type == "Opaque"
    assert base64.b64decode(created.data["password"]) == b"CANARY-kube-1"
    got = v1.read_namespaced_secret("db", ns)
    assert got.metadata.uid == created.metadata.uid
    patched = v1.patch_namespaced_secret("db", ns, {"metadata": {"labels": {"tier": "be"}}})
    assert patched.metadata.labels == {"app": "orders", "tier": "be"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)
    json_patched = v1.patch_namespaced_secret(
        "db", ns, [{"op": "remove", "path": "/metadata/labels/tier"}]
    )
    assert json_patched.metadata.labels == {"app": "orders"}
    v1.delete_namespaced_secret("db", ns)
    with pytest.raises(ApiException) as err:
        v1.read_namespaced_secret("db", ns)
    assert err.value.status == 404
    status = json.loads(err.value.body)
    assert status["kind"] == "Status"
    assert status["reason"] == "NotFound"
    assert status["message"] == 'secrets "db" not found'


def test_namespace_gets_default_service_account(api: client.ApiClient) -> None:
    ns = _ns(api, "has-default-sa")
    sa = client.CoreV1Api(api).read_namespaced_service_account("default", ns)
    assert sa.metadata.namespace == ns


def test_already_exists_conflict_and_invalid(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "errors")
    body = {"metadata": {"name": "cfg"}, "data": {"a": "1"}}
    first = v1.create_namespaced_config_map(ns, body)
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(ns, body)
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (409, "AlreadyExists")
    v1.replace_namespaced_config_map("cfg", ns, {**body, "data": {"a": "2"}})  # unconditional
    stale = {"metadata": {"name": "cfg", "resourceVersion": first.metadata.resource_version}}
    with pytest.raises(ApiException) as err:
        v1.replace_namespaced_config_map("cfg", ns, {**stale, "data": {"a": "3"}})
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (409, "Conflict")
    assert v1.read_namespaced_config_map("cfg", ns).data == {"a": "2"}
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map(ns, {"metadata": {"name": "Bad_Name"}})
    status = json.loads(err.value.body)
    assert (err.value.status, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "metadata.name"
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_config_map("no-such-ns", {"metadata": {"name": "x"}})
    assert err.value.status == 404


def test_pagination_and_selectors(api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "paging")
    for i in range(7):
        v1.create_namespaced_config_map(
            ns,
            {
                "metadata": {
                    "name": f"cm-{i}",
                    "labels": {"app": "a" if i % 2 else "b", **({"legacy": "y"} if i == 3 else {})},
                }
            },
        )
    names: list[str] = []
    token = None
    pages = 0
    while True:
        page = v1.list_namespaced_config_map(ns, limit=3, _continue=token)
        names += [cm.metadata.name for cm in page.items]
        pages += 1
        token = page.metadata._continue
        if not token:
            break
        assert page.metadata.remaining_item_count == 7 - len(names)
    assert pages == 3
    assert names == [f"cm-{i}" for i in range(7)]

    def sel(selector: str) -> list[str]:
        items = v1.list_namespaced_config_map(ns, label_selector=selector).items
        return [cm.metadata.name for cm in items]

    assert sel("app=a") == ["cm-1", "cm-3", "cm-5"]
    assert sel("app==a,!legacy") == ["cm-1", "cm-5"]
    assert sel("app!=a") == ["cm-0", "cm-2", "cm-4", "cm-6"]
    assert sel("app in (a, b),legacy") == ["cm-3"]
    assert sel("app notin (b)") == ["cm-1", "cm-3", "cm-5"]
    assert [
        cm.metadata.name
        for cm in v1.list_namespaced_config_map(ns, field_selector="metadata.name=cm-4").items
    ] == ["cm-4"]
    with pytest.raises(ApiException) as err:
        v1.list_namespaced_config_map(ns, field_selector="spec.bogus=1")
    assert err.value.status == 400


def test_all_namespaces_apps_rbac_and_custom_objects(api: client.ApiClient) -> None:
    ns1, ns2 = _ns(api, "multi-1"), _ns(api, "multi-2")
    apps = client.AppsV1Api(api)
    deployment = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]},
            },
        },
    }
    for ns in (ns1, ns2):
        apps.create_namespaced_deployment(ns, deployment)
    everywhere = apps.list_deployment_for_all_namespaces(label_selector="")
    assert {(d.metadata.namespace, d.metadata.name) for d in everywhere.items} >= {
        (ns1, "web"),
        (ns2, "web"),
    }
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        ns1,
        {
            "metadata": {"name": "r"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
    )
    assert rbac.read_namespaced_role("r", ns1).rules[0].verbs == ["get"]
    custom = client.CustomObjectsApi(api)
    spc = {
        "apiVersion": "secrets-store.csi.x-k8s.io/v1",
        "kind": "SecretProviderClass",
        "metadata": {"name": "kv"},
        "spec": {"provider": "azure", "parameters": {"keyvaultName": "kv1"}},
    }
    custom.create_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io", "v1", ns1, "secretproviderclasses", spc
    )
    patched = custom.patch_namespaced_custom_object(
        "secrets-store.csi.x-k8s.io",
        "v1",
        ns1,
        "secretproviderclasses",
        "kv",
        {"spec": {"parameters": {"tenantId": "t"}}},
    )
    assert patched["spec"]["parameters"] == {"keyvaultName": "kv1", "tenantId": "t"}
    listed = custom.list_namespaced_custom_object(
        "aadpodidentity.k8s.io", "v1", ns1, "azureidentities"
    )
    assert listed["items"] == []
    assert client.VersionApi(api).get_code().major == "1"


def test_rbac_denies_service_account_beyond_its_role(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "rbac")
    v1.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    for name in ("allowed", "other"):
        v1.create_namespaced_secret(ns, {"metadata": {"name": name}, "string_data": {"k": "v"}})
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "read-one"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "verbs": ["get"],
                    "resourceNames": ["allowed"],
                }
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "app-read-one"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-one",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": ns}],
        },
    )
    sa_token = kube.mint_token(ns, "app", audiences=[kube.oidc_issuer])
    assert _raw(kube, "GET", f"/api/v1/namespaces/{ns}/secrets/allowed", token=sa_token)[0] == 200
    code, status = _raw(kube, "GET", f"/api/v1/namespaces/{ns}/secrets/other", token=sa_token)
    assert code == 403
    assert status["reason"] == "Forbidden"
    assert status["message"] == (
        f'secrets "other" is forbidden: User "system:serviceaccount:{ns}:app" cannot get '
        f'resource "secrets" in API group "" in the namespace "{ns}"'
    )
    assert _raw(kube, "GET", f"/api/v1/namespaces/{ns}/secrets", token=sa_token)[0] == 403
    # a token for another audience does not authenticate to the API at all
    wrong_aud = kube.mint_token(ns, "app", audiences=["vault"])
    assert _raw(kube, "GET", f"/api/v1/namespaces/{ns}/secrets/allowed", token=wrong_aud)[0] == 401
    assert _raw(kube, "GET", "/api/v1/namespaces", token="nope")[0] == 401
    # roleRef is immutable, as on a real cluster
    with pytest.raises(ApiException) as err:
        rbac.patch_namespaced_role_binding(
            "app-read-one",
            ns,
            {
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                }
            },
        )
    assert err.value.status == 422


def test_token_request_and_review(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "tokens")
    sa = v1.create_namespaced_service_account(ns, {"metadata": {"name": "worker"}})
    resp = v1.create_namespaced_service_account_token(
        "worker", ns, {"spec": {"audiences": ["vault"], "expirationSeconds": 600}}
    )
    token = resp.status.token
    claims = unverified_claims(token)
    assert claims["iss"] == kube.oidc_issuer
    assert claims["sub"] == f"system:serviceaccount:{ns}:worker"
    assert claims["aud"] == ["vault"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["kubernetes.io"] == {
        "namespace": ns,
        "serviceaccount": {"name": "worker", "uid": sa.metadata.uid},
    }
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_service_account_token("ghost", ns, {"spec": {}})
    assert err.value.status == 404
    with pytest.raises(ApiException) as err:
        v1.create_namespaced_service_account_token(
            "worker", ns, {"spec": {"expirationSeconds": 60}}
        )
    assert err.value.status == 422

    def review(tok: str, audiences: list[str] | None) -> dict[str, Any]:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": tok, **({"audiences": audiences} if audiences else {})},
        }
        code, out = _raw(
            kube,
            "POST",
            "/apis/authentication.k8s.io/v1/tokenreviews",
            body,
            token=kube.admin_token,
        )
        assert code == 201
        return dict(out["status"])

    ok = review(token, ["vault"])
    assert ok["authenticated"] is True
    assert ok["user"]["username"] == f"system:serviceaccount:{ns}:worker"
    assert ok["user"]["uid"] == sa.metadata.uid
    assert ok["audiences"] == ["vault"]
    assert not review(token, ["other"]).get("authenticated")
    assert not review(token, None).get("authenticated")  # API audience only by default
    assert not review(token + "x", ["vault"]).get("authenticated")
    expired = kube.mint_token(ns, "worker", audiences=["vault"], expiration_seconds=-10)
    assert not review(expired, ["vault"]).get("authenticated")
    # a deleted and re-created SA has a new uid: old tokens stop working
    v1.delete_namespaced_service_account("worker", ns)
    v1.create_namespaced_service_account(ns, {"metadata": {"name": "worker"}})
    assert "UID" in review(token, ["vault"])["error"]
    # reviewers need the right: an SA without system:auth-delegator gets 403
    v1.create_namespaced_service_account(ns, {"metadata": {"name": "nobody"}})
    nobody = kube.mint_token(ns, "nobody", audiences=[kube.oidc_issuer])
    code, _ = _raw(
        kube,
        "POST",
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"spec": {"token": token}},
        token=nobody,
    )
    assert code == 403


def test_mint_token_requires_existing_sa(kube: KubeFake) -> None:
    from secretsboot.sandbox.kube import ApiError

    with pytest.raises(ApiError) as err:
        kube.mint_token("default", "ghost")
    assert err.value.code == 404
    token = kube.mint_token("default", "default")  # audiences default to the API server's
    assert unverified_claims(token)["aud"] == [kube.oidc_issuer]


def test_oidc_discovery_documents(kube: KubeFake) -> None:
    code, doc = _raw(kube, "GET", "/.well-known/openid-configuration")
    assert code == 200
    assert doc["issuer"] == kube.oidc_issuer == kube.url
    assert doc["jwks_uri"] == f"{kube.url}/openid/v1/jwks"
    code, key_set = _raw(kube, "GET", "/openid/v1/jwks")
    assert code == 200
    assert [k["kid"] for k in key_set["keys"]] == [kube.signing_key.kid]
    assert key_set["keys"][0]["kty"] == "RSA"
    import jwt

    token = kube.mint_token("default", "default", audiences=["x"])
    public = jwt.PyJWK.from_dict(key_set["keys"][0]).key
    assert jwt.decode(token, public, algorithms=["RS256"], audience="x")["iss"] == kube.url


def test_calls_log_and_fault_as_status(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    kube.app.faults.fail_next(1, status=503)
    with pytest.raises(ApiException) as err:
        v1.read_namespace("default")
    assert err.value.status == 503
    assert json.loads(err.value.body)["kind"] == "Status"
    assert v1.read_namespace("default").metadata.name == "default"
    last = kube.app.calls[-2:]
    assert [(c.method, c.path, c.status) for c in last] == [
        ("GET", "/api/v1/namespaces/default", 503),
        ("GET", "/api/v1/namespaces/default", 200),
    ]
    assert time.time() - last[-1].time < 60


def test_unknown_resource_is_404(kube: KubeFake) -> None:
    code, status = _raw(kube, "GET", "/api/v1/widgets", token=kube.admin_token)
    assert code == 404
    assert status["message"] == "the server could not find the requested resource"


def test_state_dir_holds_only_expected_files(kube: KubeFake) -> None:
    files = {p.name for p in Path(kube.state_dir).iterdir()}
    assert {"ca.pem", "kubeconfig", "kubernetes.pem", "kubernetes-key.pem"} <= files


def test_access_reviews(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "reviews")
    v1.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "reader-view"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
    )
    authz = client.AuthorizationV1Api(api)

    def sar(namespace: str) -> bool:
        review = authz.create_subject_access_review(
            {
                "spec": {
                    "user": f"system:serviceaccount:{ns}:reader",
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"],
                    "resourceAttributes": {
                        "verb": "delete",
                        "resource": "secrets",
                        "namespace": namespace,
                    },
                }
            }
        )
        return bool(review.status.allowed)

    assert sar(ns) is True
    assert sar("default") is False  # a RoleBinding grants in its namespace only
    self_review = authz.create_self_subject_access_review(
        {"spec": {"resourceAttributes": {"verb": "list", "resource": "namespaces"}}}
    )
    assert self_review.status.allowed is True  # the admin token
    token = kube.mint_token(ns, "reader", audiences=[kube.oidc_issuer])
    code, out = _raw(
        kube,
        "POST",
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        {
            "spec": {
                "resourceAttributes": {"verb": "get", "resource": "secrets", "namespace": "default"}
            }
        },
        token=token,
    )
    assert (code, out["status"]["allowed"]) == (201, False)


def test_pod_bound_token_dies_with_its_pod(kube: KubeFake, api: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api)
    ns = _ns(api, "bound")
    v1.create_namespaced_service_account(ns, {"metadata": {"name": "app"}})
    pod = v1.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "app-0"},
            "spec": {"serviceAccountName": "app", "containers": [{"name": "c", "image": "i"}]},
        },
    )
    resp = v1.create_namespaced_service_account_token(
        "app",
        ns,
        {
            "spec": {
                "audiences": ["vault"],
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "app-0"},
            }
        },
    )
    token = resp.status.token
    claims = unverified_claims(token)
    assert claims["kubernetes.io"]["pod"] == {"name": "app-0", "uid": pod.metadata.uid}
    status = kube.review_token(token, ["vault"])
    assert status["authenticated"] is True
    assert status["user"]["extra"]["authentication.kubernetes.io/pod-name"] == ["app-0"]
    v1.delete_namespaced_pod("app-0", ns)
    status = kube.review_token(token, ["vault"])
    assert not status.get("authenticated")
    assert "pod" in status["error"]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.plural)
def test_every_served_resource_round_trips(kube: KubeFake, resource: Resource) -> None:
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else "/api/v1"
    name = f"rt-{resource.singular}"
    base = (
        f"{prefix}/namespaces/default/{resource.plural}"
        if resource.namespaced
        else (f"{prefix}/{resource.plural}")
    )
    body = {"apiVersion": resource.api_version, "kind": resource.kind, "metadata": {"name": name}}
    code, created = _raw(kube, "POST", base, body, token=kube.admin_token)
    assert code == 201, created
    assert created["kind"] == resource.kind
    code, got = _raw(kube, "GET", f"{base}/{name}", token=kube.admin_token)
    assert (code, got["metadata"]["uid"]) == (200, created["metadata"]["uid"])
    all_ns = f"{prefix}/{resource.plural}"
    code, listed = _raw(
        kube, "GET", f"{all_ns}?fieldSelector=metadata.name%3D{name}", token=kube.admin_token
    )
    assert code == 200
    assert [i["metadata"]["name"] for i in listed["items"]] == [name]
    assert _raw(kube, "DELETE", f"{base}/{name}", token=kube.admin_token)[0] == 200
    # a namespace goes Terminating first and vanishes once emptied (test_kube_lifecycle)
    deadline = time.monotonic() + 5
    while _raw(kube, "GET", f"{base}/{name}", token=kube.admin_token)[0] != 404:
        assert resource.plural == "namespaces" and time.monotonic() < deadline
        time.sleep(0.05)
