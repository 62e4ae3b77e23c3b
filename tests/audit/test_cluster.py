"""``audit --cluster`` against the sandbox's Kubernetes fake (real client, real HTTPS)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretsboot.audit.cluster import load_cluster
from secretsboot.audit.engine import run
from secretsboot.cli import main

pytestmark = pytest.mark.integration

NS = "audit-cluster"
CANARY = "CANARY-1c9e77aa5d03"


def _objects() -> list[dict[str, Any]]:
    pod_spec = {
        "serviceAccountName": "orders",
        "containers": [
            {
                "name": "app",
                "image": "mcr.microsoft.com/app:1",
                "envFrom": [{"secretRef": {"name": "db"}}],
            }
        ],
        "volumes": [
            {
                "name": "kv",
                "csi": {
                    "driver": "secrets-store.csi.k8s.io",
                    "volumeAttributes": {"secretProviderClass": "orders-kv"},
                },
            }
        ],
    }
    labels = {"app": "orders", "azure.workload.identity/use": "true"}
    objs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {
                "name": "orders",
                "namespace": NS,
                "annotations": {
                    "azure.workload.identity/client-id": "c0ffee00-0000-0000-0000-000000000001"
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db", "namespace": NS},
            "stringData": {"password": CANARY},
        },
        {
            "apiVersion": "secrets-store.csi.x-k8s.io/v1",
            "kind": "SecretProviderClass",
            "metadata": {"name": "orders-kv", "namespace": NS},
            "spec": {
                "provider": "azure",
                "parameters": {"clientID": "c0ffee00-0000-0000-0000-000000000001"},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "orders", "namespace": NS},
            "spec": {
                "selector": {"matchLabels": {"app": "orders"}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": "orders-7d9",
                "namespace": NS,
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": "orders",
                        "uid": "u1",
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "selector": {"matchLabels": {"app": "orders"}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec},
            },
        },
    ]
    for i in range(7):  # more pods than one page holds
        objs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"orders-7d9-{i}",
                    "namespace": NS,
                    "labels": labels,
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": "orders-7d9",
                            "uid": "u2",
                            "controller": True,
                        }
                    ],
                },
                "spec": pod_spec,
            }
        )
    objs.append(
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": NS},
            "spec": {
                "schedule": "0 1 * * *",
                "jobTemplate": {
                    "spec": {
                        "template": {
                            "metadata": {
                                "annotations": {"vault.hashicorp.com/agent-inject": "true"}
                            },
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "job", "image": "job:1"}],
                            },
                        }
                    }
                },
            },
        }
    )
    return objs


@pytest.fixture(scope="module")
def cluster(sandbox: Any) -> Any:
    for obj in _objects():
        try:
            sandbox.kube.store.create(obj)
        except Exception as exc:  # already there from an earlier module run in the session
            if "AlreadyExists" not in repr(exc) and "already exists" not in str(exc):
                raise
    return sandbox


def test_cluster_objects_classified_through_the_same_pipeline(cluster: Any) -> None:
    calls_before = len(cluster.kube.app.calls)
    loaded = load_cluster(kubeconfig=cluster.kube.kubeconfig_path, namespace=NS, page_size=3)
    result = run(loaded)
    by_ref = {w.ref: w.approach_ids for w in result.workloads}
    assert by_ref == {
        f"Deployment/{NS}/orders": ["k8s-secret-env", "keyvault-csi", "workload-identity"],
        f"CronJob/{NS}/nightly": ["vault-agent-injector"],
    }
    # the ReplicaSet and its pods are the Deployment's, counted as skipped
    assert sum(n for why, n in result.coverage.skipped.items() if "controlled by" in why) == 8
    calls = cluster.kube.app.calls[calls_before:]
    pod_lists = [c for c in calls if f"/namespaces/{NS}/pods" in c.path]
    assert len(pod_lists) == 3  # 7 pods, pages of 3: limit/continue
    assert {c.status for c in calls} <= {200, 404}  # 404: CRDs the fake does not serve
    assert result.errors == []


def test_secret_values_are_dropped_at_once(cluster: Any) -> None:
    loaded = load_cluster(kubeconfig=cluster.kube.kubeconfig_path, namespace=NS)
    (secret,) = [m for m in loaded.manifests if m.kind == "Secret" and m.name == "db"]
    assert CANARY not in json.dumps(secret.body)
    assert all(CANARY not in json.dumps(m.body) for m in loaded.manifests)


def test_cli_cluster_mode(cluster: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "audit",
            "--cluster",
            "--kubeconfig",
            str(cluster.kube.kubeconfig_path),
            "-n",
            NS,
            "-o",
            "json",
            "--report-only",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    names = {w["name"] for w in json.loads(out)["workloads"]}
    assert names == {"orders", "nightly"}
    assert CANARY not in out and CANARY not in err


def test_bad_kubeconfig_is_bad_input(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", "--cluster", "--kubeconfig", str(tmp_path / "none"), "--context", "x"])
    assert code == 2
    assert "kubeconfig" in capsys.readouterr().err


def test_forbidden_kind_is_a_load_error_and_the_rest_is_audited(cluster: Any) -> None:
    cluster.kube.faults.fail_next(1, status=403)  # the first list: pods
    try:
        loaded = load_cluster(kubeconfig=cluster.kube.kubeconfig_path, namespace=NS)
    finally:
        cluster.kube.faults.clear()
    (error,) = loaded.errors
    assert error.reason.startswith("cannot list pods: HTTP 403")
    assert {w.name for w in run(loaded).workloads} == {"orders", "nightly"}


def test_unreachable_cluster_is_unavailable(cluster: Any) -> None:
    from secretsboot.errors import UnavailableError

    cluster.kube.faults.stop()
    try:
        with pytest.raises(UnavailableError, match="cannot reach the API server"):
            load_cluster(kubeconfig=cluster.kube.kubeconfig_path, namespace=NS)
    finally:
        cluster.kube.faults.start()


def test_an_older_served_version_of_a_crd_is_tried_on_404() -> None:
    from kubernetes.client.exceptions import ApiException

    from secretsboot.audit.cluster import ClusterReader, Kind

    asked: list[str] = []

    class Reader(ClusterReader):
        def _pages(self, kind: Kind, namespace: str | None) -> Any:
            asked.append(f"{kind.kind}@{kind.api_version}")
            if kind.kind == "ExternalSecret" and kind.api_version == "external-secrets.io/v1beta1":
                yield {"items": [{"metadata": {"name": "db", "namespace": NS}, "spec": {}}]}
                return
            raise ApiException(status=404, reason="Not Found")

    loaded = Reader(None, source="stub").read(NS)
    assert [(m.kind, m.api_version, m.name) for m in loaded.manifests] == [
        ("ExternalSecret", "external-secrets.io/v1beta1", "db")
    ]
    assert asked.index("ExternalSecret@external-secrets.io/v1") < asked.index(
        "ExternalSecret@external-secrets.io/v1beta1"
    )
    assert "ExternalSecret@external-secrets.io/v1alpha1" not in asked
    assert loaded.errors == []


def test_no_secret_value_is_ever_received(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every byte the fake sends to a live audit is recorded: Secrets are asked for as
    metadata only, and neither the canary nor its base64 is ever on the wire."""
    import base64

    app = cluster.kube.app
    sent: list[tuple[str, str, bytes]] = []
    original = app.dispatch

    def recording(req: Any) -> Any:
        resp = original(req)
        sent.append((req.path, req.headers.get("accept", ""), resp.encode()[0]))
        return resp

    monkeypatch.setattr(app, "dispatch", recording)
    result = run(load_cluster(kubeconfig=cluster.kube.kubeconfig_path, namespace=NS))
    secret_calls = [(accept, body) for path, accept, body in sent if path.endswith("/secrets")]
    assert secret_calls, "the audit listed no Secret"
    for accept, body in secret_calls:
        assert "as=PartialObjectMetadataList" in accept
        assert json.loads(body)["kind"] == "PartialObjectMetadataList"
    b64 = base64.b64encode(CANARY.encode())
    for _, _, body in sent:
        assert CANARY.encode() not in body and b64 not in body
    assert any(w.name == "orders" for w in result.workloads)


def test_the_fake_serves_metadata_only_lists_and_objects(cluster: Any) -> None:
    """The Kubernetes fake answers the PartialObjectMetadata Accept headers as the API
    server does (and refuses a kind of metadata it does not serve with 406)."""
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(cluster.kube.kubeconfig_path))
    try:

        def get(path: str, accept: str) -> tuple[int, dict[str, Any]]:
            request = api.param_serialize(
                method="GET",
                resource_path=path,
                header_params={"Accept": accept},
                auth_settings=["BearerToken"],
            )
            resp = api.call_api(*request)
            try:
                return resp.status, json.loads(resp.read() or b"{}")
            finally:
                resp.close()

        base = f"/api/v1/namespaces/{NS}/secrets"
        meta = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
        status, listed = get(base, meta.replace("Metadata;", "MetadataList;"))
        assert status == 200 and listed["kind"] == "PartialObjectMetadataList"
        (item,) = [i for i in listed["items"] if i["metadata"]["name"] == "db"]
        assert set(item) == {"kind", "apiVersion", "metadata"}
        status, one = get(f"{base}/db", meta)
        assert status == 200 and one["kind"] == "PartialObjectMetadata" and "data" not in one
        status, full = get(f"{base}/db", "application/json")
        assert status == 200 and full["kind"] == "Secret" and "data" in full
        status, table = get(base, "application/json;as=Table;g=meta.k8s.io;v=v1")
        assert status == 200 and table["kind"] == "Table"  # what plain `kubectl get` reads
        status, _ = get(base, meta)  # one object's form asked of a list
        assert status == 406
    finally:
        api.close()
