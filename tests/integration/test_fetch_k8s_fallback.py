"""``k8s://`` sources (in-cluster and kubeconfig) and the fallback chain."""

from __future__ import annotations

import base64
import socket
from pathlib import Path
from typing import Any

import pytest
from fetch_support import (
    Pod,
    config,
    keyvault,
    listing,
    make_pod,
    put_vault,
    run_cli,
    unique,
    vault_role,
    workload_identity,
)

pytestmark = pytest.mark.integration


def _k8s_secret(sb: Any, pod: Pod, name: str, data: dict[str, str] | None) -> None:
    """A Secret (unless ``data`` is None) and a Role + RoleBinding letting the pod get it."""
    store = sb.kube.store
    if data is not None:
        store.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": pod.namespace},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            }
        )
    role = unique("read-")
    store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": role, "namespace": pod.namespace},
            "rules": [
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name],
                 "verbs": ["get"]}
            ],
        }
    )  # fmt: skip
    store.create(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": role, "namespace": pod.namespace},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": pod.service_account,
                          "namespace": pod.namespace}],
        }
    )  # fmt: skip


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_in_cluster_service_account(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    _k8s_secret(sandbox, pod, "db", {"password": "CANARY-k8s-db"})
    doc = config(pod, [{"name": "db-password", "from": "k8s://db#password"}])
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "db-password").read_text() == "CANARY-k8s-db"


def test_kubeconfig_outside_a_cluster(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    _k8s_secret(sandbox, pod, "api", {"token": "CANARY-k8s-kubeconfig"})
    for key in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        pod.env.pop(key)
    pod.env["KUBECONFIG"] = str(sandbox.kube.kubeconfig_path)
    doc = config(pod, [{"name": "api-token", "from": "k8s://api#token"}])
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "api-token").read_text() == "CANARY-k8s-kubeconfig"


def test_not_found_falls_back_to_the_next_source(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("fb")
    vault_role(sandbox, pod, [f"secret/data/{base}/*"])
    _k8s_secret(sandbox, pod, "legacy", {"conn": "CANARY-fallback"})
    secrets = [
        {
            "name": "conn",
            "from": f"vault://secret/{base}/missing#conn",
            "fallback": ["k8s://legacy#conn"],
        }
    ]
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(config(pod, secrets, sb=sandbox))),
         "--out", str(pod.out), "-v"],
        pod.env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (pod.out / "conn").read_text() == "CANARY-fallback"
    assert "trying k8s://legacy#conn" in result.stderr


def test_unavailable_source_falls_back_after_retries(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    _k8s_secret(sandbox, pod, "spare", {"v": "CANARY-spare"})
    doc = config(
        pod,
        [{"name": "v", "from": "vault://secret/x/y#v", "fallback": ["k8s://spare#v"]}],
        vault={
            "address": f"https://127.0.0.1:{_closed_port()}",
            "auth": {"method": "kubernetes", "role": "r"},
        },
    )
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out), "--timeout", "20"],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "v").read_text() == "CANARY-spare"


@pytest.mark.parametrize("fallback_on_denied", [False, True])
def test_denial_does_not_fall_back_unless_asked(
    sandbox: Any, tmp_path: Path, fallback_on_denied: bool
) -> None:
    if sandbox.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    sandbox.azure.set_secret(kv, "conn", "CANARY-primary")
    workload_identity(sandbox, pod, kv, grant=False)
    _k8s_secret(sandbox, pod, "spare", {"conn": "CANARY-secondary"})
    secrets = [{"name": "conn", "from": f"keyvault://{kv}/conn", "fallback": ["k8s://spare#conn"]}]
    doc = config(
        pod,
        secrets,
        sb=sandbox,
        identity="workload-identity",
        fallbackOnDenied=fallback_on_denied,
    )
    result = run_cli(
        [
            "fetch",
            "-c",
            str(pod.write_config(doc)),
            "--out",
            str(pod.out),
            "--propagation-window",
            "0",
        ],
        pod.env,
    )
    if fallback_on_denied:
        assert result.returncode == 0, result.stderr
        assert (pod.out / "conn").read_text() == "CANARY-secondary"
    else:
        assert result.returncode == 3
        assert "denied" in result.stderr
        assert "k8s://spare" not in result.stderr  # never tried
        assert listing(pod.out) == []


def test_every_source_missing_reports_the_whole_chain(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("chain")
    vault_role(sandbox, pod, [f"secret/data/{base}/*"])
    put_vault(sandbox, f"{base}/present", {"other": "CANARY-other"})
    _k8s_secret(sandbox, pod, "nowhere", None)  # allowed, but absent
    secrets = [
        {
            "name": "x",
            "from": f"vault://secret/{base}/present#absent",
            "fallback": ["k8s://nowhere#x"],
        }
    ]
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(config(pod, secrets, sb=sandbox))),
         "--out", str(pod.out)],
        pod.env,
    )  # fmt: skip
    assert result.returncode == 4
    line = result.stderr.strip()
    assert "has no key 'absent'" in line
    assert f"Secret {pod.namespace}/nowhere not found" in line
    assert "CANARY" not in line
