"""The init image, for real: built with podman (scripts/build_init_image.sh), and
``secretsboot fetch`` run in it the way kubelet runs an init container, against the
sandbox's three stores, into a root-owned 0777 host folder; then another uid on the
host tries to read what it wrote.

Skipped only when not root or podman/runc are missing, and never under ``CI=true``
(``.ci/run`` installs them and builds the image first): there it fails instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_fetch_kubelet_folders import readable_by_others
from test_refresh_sandbox import three_stores

ROOT = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("SECRETSBOOT_INIT_IMAGE", "localhost/secretsboot-init:dev")
PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
AS_KUBELET = [  # an init container with a restricted security context
    "--user", "10001:10001", "--read-only", "--cap-drop=ALL",
    "--security-opt", "no-new-privileges", "--network", "host",
]  # fmt: skip
OUT = "/var/run/secrets/secretsboot"
NOT_IN_THE_IMAGE = (
    "typer", "rich", "pydantic", "click", "azure", "hvac", "kubernetes", "requests",
    "urllib3", "secretsboot.sandbox", "secretsboot.provision", "secretsboot.audit",
    "secretsboot.cli", "secretsboot.demo", "secretsboot.inject", "secretsboot.spec",
)  # fmt: skip


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (podman storage, debootstrap, root-owned folders)"
    for tool in ("podman", "runc", "debootstrap"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc debootstrap)"
    return None


MISSING = _missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.openbao,
    pytest.mark.skipif(MISSING is not None and os.environ.get("CI") != "true", reason=str(MISSING)),
]


@pytest.fixture(scope="module")
def image() -> str:
    """The image, (re)built by the script when the sources changed since its last build."""
    if MISSING is not None:
        pytest.fail(f"CI must run the image test, but {MISSING}")
    built = subprocess.run(
        ["bash", str(ROOT / "scripts" / "build_init_image.sh")],
        env={**os.environ, "PYTHON": sys.executable, "SECRETSBOOT_INIT_IMAGE": IMAGE},
        capture_output=True, text=True, timeout=1200, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-4000:]
    print(built.stdout)
    return IMAGE


def podman_run(image: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PODMAN, "run", "--rm", *ULIMITS, *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def test_image_holds_only_the_fetch_path(image: str) -> None:
    probe = (
        "import importlib.util as u, sys\n"
        f"names = {NOT_IN_THE_IMAGE!r}\n"
        "print(' '.join(n for n in names if u.find_spec(n.split('.')[0]) is not None "
        "and u.find_spec(n) is not None) or 'none')\n"
    )
    found = podman_run(image, *AS_KUBELET, "--entrypoint", "python3", image, "-c", probe)
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "none"
    other = podman_run(image, *AS_KUBELET, image, "audit", "x")
    assert other.returncode == 2 and "init image" in other.stderr


def test_image_trusts_the_roots_azure_chains_to(image: str) -> None:
    """A fetch from the real cloud verifies Key Vault's, Entra ID's and ARM's
    certificates with the image's default trust store (no SSL_CERT_FILE there)."""
    probe = (
        "import ssl\n"
        "names = {dict(x[0] for x in c['subject']).get('commonName') "
        "for c in ssl.create_default_context().get_ca_certs()}\n"
        "print(len(names), 'DigiCert Global Root G2' in names, "
        "'Microsoft RSA Root Certificate Authority 2017' in names)\n"
    )
    found = podman_run(image, *AS_KUBELET, "--entrypoint", "python3", image, "-c", probe)
    assert found.returncode == 0, found.stderr
    count, digicert, microsoft = found.stdout.split()
    assert int(count) > 50 and digicert == microsoft == "True", found.stdout


def test_fetch_in_the_image_as_kubelet_runs_an_init_container(
    image: str, sandbox: Any, open_tmp: Path
) -> None:
    t = three_stores(sandbox, open_tmp)
    cfg = t.pod.write_config(t.doc)
    readable_by_others(t.pod, sandbox)
    emptydir = open_tmp / "emptydir"  # as kubelet makes it: root's, 0777
    emptydir.mkdir()
    os.chown(emptydir, 0, 0)
    emptydir.chmod(0o777)
    env = [f"--env={k}={v}" for k, v in t.pod.env.items() if k not in {"PATH", "HOME"}]
    result = podman_run(
        image, *AS_KUBELET,
        "-v", f"{t.pod.folder}:{t.pod.folder}:ro", "-v", f"{emptydir}:{OUT}", *env,
        "--entrypoint", "python3", image,
        "-X", "importtime", "-m", "secretsboot", "fetch", "--config", str(cfg), "--out", OUT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {ln.split("|")[-1].strip() for ln in result.stderr.splitlines() if "|" in ln}
    assert "secretsboot.fetch.writer" in imported
    assert not {m for m in imported if m.split(".")[0] in {"typer", "rich", "pydantic"}}
    assert "CANARY" not in result.stdout + result.stderr

    values = {
        "api-key": "CANARY-r1-kv-0",
        "db-password": "CANARY-r1-vault-0",
        "cache-token": "CANARY-r1-k8s-0",
    }
    for name, value in values.items():
        assert (emptydir / name).read_text() == value
    folder = Path(os.path.realpath(emptydir / "..data"))
    assert folder.stat().st_uid == 10001 and oct(folder.stat().st_mode & 0o777) == "0o700"
    for name in values:  # another uid on the host cannot read a secret
        other = subprocess.run(
            ["setpriv", "--reuid", "10002", "--regid", "10002", "--clear-groups",
             "cat", str(emptydir / name)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert other.returncode != 0 and "Permission denied" in other.stderr
        assert "CANARY" not in other.stdout
