"""``fetch`` as a non-root init container in the folders kubelet really creates.

Kubelet creates an emptyDir as root, mode 0777 (1777 on the memory medium), and with
``fsGroup`` gives it that group and the setgid bit. The init container runs as uid
10001 and owns none of them. Here each shape is made as root and ``secretsboot
fetch`` runs as uid 10001 through ``setpriv`` against the sandbox; then another uid
tries to read what it wrote.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fetch_support import Pod, config, make_pod, unique
from test_fetch_k8s_fallback import _k8s_secret as k8s_secret

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="makes root-owned folders and switches uid"),
]

FETCH_UID = 10001
OTHER_UID = 10002
APP_UID = 10003  # the app container: another uid, in the pod's fsGroup when there is one
FS_GROUP = 4242


def as_user(uid: int, groups: list[int] | None, argv: list[str], env: dict[str, str]) -> Any:
    """Run ``argv`` as ``uid`` (gid = uid) with exactly ``groups`` as supplementary groups."""
    switch = ["setpriv", "--reuid", str(uid), "--regid", str(uid)]
    switch += ["--groups", ",".join(map(str, groups))] if groups else ["--clear-groups"]
    return subprocess.run(
        [*switch, *argv], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def pod(sandbox: Any, open_tmp: Path) -> Pod:
    """A pod whose files (tokens, CA, config) uid 10001 can read, in a folder it can reach."""
    p = make_pod(sandbox, open_tmp)
    readable_by_others(p, sandbox)
    return p


def installed_for_others(folder: Path) -> tuple[list[str], dict[str, str]]:
    """secretsboot (and PyYAML) copied into ``folder`` readable by every uid, as the
    init image lays them out in /opt/secretsboot/lib: the checkout and its venv may sit
    in a folder other uids cannot enter (``mktemp -d`` makes 0700 ones). Returns the
    interpreter's argv prefix (no site-packages: only the stdlib and this copy) and the
    environment entries that point it there."""
    import yaml

    import secretsboot

    lib = folder / "lib"
    skip = shutil.ignore_patterns("__pycache__", "sandbox", "audit", "provision", "cli")
    shutil.copytree(Path(secretsboot.__file__).parent, lib / "secretsboot", ignore=skip)
    shutil.copytree(Path(yaml.__file__).parent, lib / "yaml", ignore=skip)
    for path in [lib, *lib.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return [sys.executable, "-S"], {"PYTHONPATH": str(lib), "PYTHONDONTWRITEBYTECODE": "1"}


def readable_by_others(pod: Pod, sandbox: Any) -> None:
    """Give uid 10001 what a pod gives it: its token files, the CA, the config."""
    ca = pod.folder / "ca.pem"
    shutil.copy(sandbox.ca_path, ca)
    pod.env["SSL_CERT_FILE"] = str(ca)
    for path in [pod.folder, *pod.folder.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _emptydir(parent: Path, shape: str) -> Path:
    out = parent / f"out-{shape}"
    out.mkdir()
    if shape == "fsgroup":
        os.chown(out, 0, FS_GROUP)
        out.chmod(0o2777)
    else:
        os.chown(out, 0, 0)
        out.chmod(0o1777 if shape == "memory" else 0o777)
    return out


@pytest.mark.parametrize("shape", ["disk", "memory", "fsgroup"])
def test_fetch_as_10001_in_kubelets_emptydir_and_other_uids_cannot_read(
    sandbox: Any, pod: Pod, shape: str
) -> None:
    values = {"db-password": f"CANARY-{unique('k')}", "api-key": f"CANARY-{unique('k')}"}
    secret = unique("app-")
    k8s_secret(sandbox, pod, secret, values)
    cfg = pod.write_config(
        config(pod, [{"name": k, "from": f"k8s://{secret}#{k}"} for k in values])
    )
    cfg.chmod(0o644)
    out = _emptydir(pod.folder, shape)
    groups = [FS_GROUP] if shape == "fsgroup" else None
    python, env = installed_for_others(pod.folder)
    fetch = [*python, "-m", "secretsboot", "fetch", "--config", str(cfg), "--out", str(out)]

    for _round in range(2):  # a first publish, then a swap over the existing set
        result = as_user(FETCH_UID, groups, fetch, {**pod.env, **env})
        assert result.returncode == 0, result.stderr
        assert "CANARY" not in result.stdout + result.stderr
        assert (out / "db-password").read_text() == values["db-password"]

    st = os.stat(out)  # kubelet's folder is left as it was
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (
        0,
        {"disk": 0o777, "memory": 0o1777, "fsgroup": 0o2777}[shape],
    )
    data = os.path.realpath(out / "..data")
    assert os.stat(data).st_uid == FETCH_UID
    assert len([e for e in os.listdir(out) if e.startswith("..20")]) == 1

    cat = ["cat", str(out / "db-password")]
    denied = as_user(OTHER_UID, None, cat, pod.env)
    assert denied.returncode != 0 and "Permission denied" in denied.stderr
    assert values["db-password"] not in denied.stdout
    app = as_user(APP_UID, [FS_GROUP], cat, pod.env)
    if shape == "fsgroup":  # the app container is in the fsGroup: it reads the secret
        assert app.returncode == 0 and app.stdout == values["db-password"]
        assert stat.S_IMODE(os.stat(out / "db-password").st_mode) == 0o440
    else:  # without fsGroup only the fetch uid reads (the app runs as it, or use --owner)
        assert app.returncode != 0
