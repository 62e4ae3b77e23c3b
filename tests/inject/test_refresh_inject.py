"""``inject --refresh``: the fetch container as a native sidecar (or, for older clusters,
an init container plus a refresh container), schema-valid and idempotent."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secretsboot.errors import BadInputError
from secretsboot.inject import FETCH_ARGS, inject_documents
from secretsboot.inject.refresh import refresh_documents
from secretsboot.spec import load_spec_text

SPEC = """
apiVersion: secretsboot/v1
kind: SecretsbootSpec
azure:
  tenantId: 00000000-0000-0000-0000-000000000000
  subscriptionId: 00000000-0000-0000-0000-000000000000
  resourceGroup: rg-apps
  location: eastus2
  oidcIssuer: https://oidc.example.com/
  keyVaults: [{name: kv-orders}]
kubernetes: {namespace: apps}
services:
  - name: orders
    secrets: [{name: db-password, from: "keyvault://kv-orders/orders-db"}]
"""


def workload(kind: str) -> dict[str, Any]:
    pod = {
        "metadata": {"labels": {"app": "orders"}},
        "spec": {
            "restartPolicy": "Never" if kind == "Job" else "Always",
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
            "containers": [{"name": "orders", "image": "orders:1.0"}],
        },
    }
    spec: dict[str, Any] = {"template": pod}
    if kind == "Deployment":
        spec["selector"] = {"matchLabels": {"app": "orders"}}
    api = "apps/v1" if kind == "Deployment" else "batch/v1"
    return {"apiVersion": api, "kind": kind, "metadata": {"name": "orders"}, "spec": spec}


def injected(kind: str, interval: str = "5m", form: str = "native") -> dict[str, Any]:
    result = inject_documents([workload(kind)], load_spec_text(SPEC))
    refresh_documents(result.documents, interval, form)
    return result.documents[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_native_sidecar_writes_first_then_refreshes(kind: str) -> None:
    doc = injected(kind)
    pod = doc["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["restartPolicy"] == "Always"
    assert fetch["args"][: len(FETCH_ARGS)] == list(FETCH_ARGS)
    assert fetch["args"][len(FETCH_ARGS) :][:2] == ["--refresh", "5m"]
    assert fetch["startupProbe"]["httpGet"]["path"] == "/readyz"  # the app waits for it
    assert fetch["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert [c["name"] for c in pod["containers"]] == ["orders"]
    kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_injecting_and_refreshing_twice_equals_once() -> None:
    once = injected("Deployment")
    twice = copy.deepcopy(once)
    result = inject_documents([twice], load_spec_text(SPEC))
    refresh_documents(result.documents, "5m", "native")
    assert result.documents[0] == once


def test_older_clusters_get_an_init_container_and_a_refresh_container() -> None:
    doc = injected("Deployment", "90s", "container")
    pod = doc["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert "restartPolicy" not in fetch and fetch["args"] == list(FETCH_ARGS)
    sidecar = pod["containers"][-1]
    assert sidecar["name"] == "secretsboot-refresh" and "--refresh" in sidecar["args"]
    assert "startupProbe" not in sidecar  # the init container wrote the first set
    kubernetes_validate.validate(doc, "1.37.0", strict=True)


def test_a_job_cannot_take_the_container_form_and_bad_intervals_are_refused() -> None:
    with pytest.raises(BadInputError, match="would never complete"):
        injected("Job", "5m", "container")
    with pytest.raises(BadInputError, match="--refresh: 'soon' is not an interval"):
        injected("Deployment", "soon")
    with pytest.raises(BadInputError, match="--refresh-sidecar must be one of"):
        injected("Deployment", "5m", "sidecar")


def test_cli(tmp_path: Path) -> None:
    spec = tmp_path / "secretsboot.yaml"
    spec.write_text(SPEC)
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(yaml.safe_dump(workload("Deployment")))
    done = subprocess.run(
        [sys.executable, "-m", "secretsboot", "inject", "-f", str(spec), "--refresh", "5m",
         str(manifest)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (doc,) = [d for d in yaml.safe_load_all(done.stdout) if d]
    assert doc["spec"]["template"]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
