"""All-or-nothing output, unsafe output folders, ``secretsboot run``, and what the fetch imports."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fetch_support import config, listing, make_pod, put_vault, run_cli, unique, vault_role

pytestmark = [pytest.mark.integration, pytest.mark.openbao]


def _vault_pod(sb: Any, tmp: Path, n: int) -> tuple[Any, Path, dict[str, str]]:
    pod = make_pod(sb, tmp)
    base = unique("out")
    vault_role(sb, pod, [f"secret/data/{base}/*"])
    values = {f"s{i}": f"CANARY-7f3a-{base}-{i}" for i in range(n)}
    for name, value in values.items():
        put_vault(sb, f"{base}/{name}", {"v": value})
    secrets = [{"name": k, "from": f"vault://secret/{base}/{k}#v"} for k in values]
    return pod, pod.write_config(config(pod, secrets, sb=sb)), values


def test_interrupted_publish_leaves_the_old_files(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _values = _vault_pod(sandbox, tmp_path, 4)
    pod.out.mkdir()
    (pod.out / "s0").write_text("old-s0")
    (pod.out / "s2").mkdir()  # the third file cannot be put in place
    result = run_cli(["fetch", "-c", str(cfg), "--out", str(pod.out)], pod.env)
    assert result.returncode == 6, result.stderr
    assert "cannot put s2" in result.stderr
    assert listing(pod.out) == ["s0", "s2"]  # no staging folder, no new file
    assert (pod.out / "s0").read_text() == "old-s0"
    assert "CANARY" not in result.stderr


def test_a_second_fetch_replaces_every_file(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, values = _vault_pod(sandbox, tmp_path, 2)
    pod.out.mkdir()
    (pod.out / "s1").write_text("stale")
    (pod.out / "s1").chmod(0o400)
    result = run_cli(["fetch", "-c", str(cfg), "--out", str(pod.out)], pod.env)
    assert result.returncode == 0, result.stderr
    assert (pod.out / "s1").read_text() == values["s1"]


def test_symlinked_output_folder_is_refused(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = _vault_pod(sandbox, tmp_path, 1)
    real = tmp_path / "real"
    real.mkdir()
    pod.out.symlink_to(real)
    result = run_cli(["fetch", "-c", str(cfg), "--out", str(pod.out)], pod.env)
    assert result.returncode == 6
    assert "symbolic link" in result.stderr
    assert listing(real) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the folder to another user")
def test_world_writable_folder_of_another_user_is_refused(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = _vault_pod(sandbox, tmp_path, 1)
    pod.out.mkdir()
    os.chown(pod.out, 65534, 65534)
    pod.out.chmod(0o1777)  # sticky or not: refused
    result = run_cli(["fetch", "-c", str(cfg), "--out", str(pod.out)], pod.env)
    assert result.returncode == 6
    assert "writable by every user" in result.stderr
    assert listing(pod.out) == []


def test_own_world_writable_folder_is_tightened(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = _vault_pod(sandbox, tmp_path, 1)
    pod.out.mkdir()
    pod.out.chmod(0o777)  # what an emptyDir looks like
    result = run_cli(["fetch", "-c", str(cfg), "--out", str(pod.out), "--owner", "1234",
                      "--group", "2345"], pod.env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(os.stat(pod.out).st_mode) == 0o755
    st = os.stat(pod.out / "s0")
    assert (st.st_uid, st.st_gid) == (1234, 2345)


CHILD = """
import hashlib, os, sys
expected = dict(a.split("=", 1) for a in sys.argv[1:])
ok = all(hashlib.sha256(os.environ.get(k, "").encode()).hexdigest() == v
         for k, v in expected.items())
print("OK" if ok else "MISMATCH", os.getpid())
"""


def test_run_execs_the_program_with_the_secrets_in_its_environment(
    sandbox: Any, tmp_path: Path
) -> None:
    import hashlib

    pod, cfg, values = _vault_pod(sandbox, tmp_path, 3)
    doc = json.loads(cfg.read_text())
    doc["secrets"][2]["env"] = "THIRD_SECRET"
    cfg.write_text(json.dumps(doc))
    expected = {"S0": values["s0"], "S1": values["s1"], "THIRD_SECRET": values["s2"]}
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    args = [f"{k}={hashlib.sha256(v.encode()).hexdigest()}" for k, v in expected.items()]
    proc = subprocess.Popen(
        [sys.executable, "-m", "secretsboot", "run", "-c", str(cfg), "--",
         sys.executable, str(child), *args],
        env=pod.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    word, pid = out.split()
    assert word == "OK"
    assert int(pid) == proc.pid, "exec in place: the program replaces secretsboot"
    assert not (pod.folder / "out").exists()
    assert not any(v in out + err for v in values.values())


def test_run_without_a_command_is_bad_input(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = _vault_pod(sandbox, tmp_path, 1)
    result = run_cli(["run", "-c", str(cfg)], pod.env)
    assert result.returncode == 2
    assert "no command" in result.stderr


PROBE = """
import sys, runpy
sys.argv = ["secretsboot"] + sys.argv[1:]
from secretsboot.fetch._cli import main
code = main(sys.argv[1:])
heavy = sorted(m for m in ("hvac", "kubernetes", "azure", "azure.identity", "requests", "typer",
                           "rich", "pydantic", "urllib3", "yaml") if m in sys.modules)
print(code, ",".join(heavy) or "-")
"""


def test_vault_only_fetch_imports_no_sdk(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = _vault_pod(sandbox, tmp_path, 2)
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    result = subprocess.run(
        [sys.executable, str(probe), "fetch", "-c", str(cfg), "--out", str(pod.out), "-q"],
        env=pod.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.split() == ["0", "-"], result.stderr


def test_azure_only_fetch_imports_no_vault_or_kubernetes_client(
    sandbox: Any, tmp_path: Path
) -> None:
    if sandbox.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    from fetch_support import keyvault, workload_identity

    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    workload_identity(sandbox, pod, kv)
    sandbox.azure.set_secret(kv, "a", "CANARY-a")
    doc = config(pod, [{"name": "a", "from": f"keyvault://{kv}/a"}], sb=sandbox,
                 identity="workload-identity")  # fmt: skip
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    cfg = pod.write_config(doc)
    result = subprocess.run(
        [sys.executable, str(probe), "fetch", "-c", str(cfg), "--out", str(pod.out), "-q"],
        env=pod.env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.stdout.split() == ["0", "-"], result.stderr
