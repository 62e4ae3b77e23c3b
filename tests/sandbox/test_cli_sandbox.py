"""``secretsboot sandbox up|status|env|down`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = [pytest.mark.openbao, pytest.mark.integration]


def _components() -> str:
    return "kubernetes,azure,openbao"


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "AZURE_"))}
    return subprocess.run(
        [sys.executable, "-m", "secretsboot", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in process (cheaper than a subprocess: no interpreter start-up)."""
    from secretsboot.cli import main

    capsys.readouterr()
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def _alive(pid: int) -> bool:
    """Running and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _processes_using(state_dir: Path) -> list[int]:
    """Pids whose command line or working directory is the sandbox dir."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().decode("utf-8", "replace")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if (str(state_dir) in cmd or cwd == str(state_dir)) and _alive(int(entry.name)):
            found.append(int(entry.name))
    return found


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    d = (tmp_path / "sbx").resolve()
    yield d
    if (d / "state.json").exists():  # a failed test must not leave a sandbox behind
        _cli("sandbox", "down", "--dir", str(d))


def test_up_status_env_down(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t0 = time.monotonic()
    up = _cli("sandbox", "up", "--dir", str(state_dir), "--components", _components(), "-o", "json")
    wall = time.monotonic() - t0
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    with capsys.disabled():
        print(
            f"\nsandbox up ({_components()}): {wall:.2f} s wall for the CLI, "
            f"{info['startup_seconds']:.2f} s until healthy"
        )
    assert info["already_running"] is False
    # ~1.2 s measured on an idle 2-core machine, 7.7 s at load average 14: bound loosely
    assert wall < 30
    state = json.loads((state_dir / "state.json").read_text())
    serve_pid, bao_pid = state["pid"], state["openbao_pid"]
    assert _alive(serve_pid) and _alive(bao_pid)
    assert (state_dir / "state.json").stat().st_mode & 0o077 == 0

    code, out, _ = _run(
        capsys, "sandbox", "up", "--dir", str(state_dir), "--components", _components()
    )
    assert code == 0
    assert f"already running (pid {serve_pid})" in out

    code, out, err = _run(capsys, "sandbox", "status", "--dir", str(state_dir), "-o", "json")
    assert code == 0, err
    rows = json.loads(out)["components"]
    assert {r["name"] for r in rows} >= {"kubernetes", "openbao"}
    assert all(r["healthy"] for r in rows), rows
    code, out, _ = _run(capsys, "sandbox", "status", "--dir", str(state_dir))
    assert "healthy" in out and "kubernetes" in out

    code, out, _ = _run(capsys, "sandbox", "env", "--dir", str(state_dir), "-o", "table")
    assert code == 0
    assert "export " not in out and "VAULT_ADDR" in out  # a table for people, secrets hidden
    code, out, _ = _run(capsys, "sandbox", "env", "--dir", str(state_dir))
    assert code == 0
    exported = {}
    for line in out.splitlines():
        words = shlex.split(line)
        assert words[0] == "export"
        name, _, value = words[1].partition("=")
        exported[name] = value
    for name in (
        "KUBECONFIG",
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_CACERT",
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
    ):
        assert name in exported, name
    if "azure" in _components():
        for name in (
            "AZURE_TENANT_ID",
            "AZURE_AUTHORITY_HOST",
            "AZURE_CLIENT_ID",
            "AZURE_CLIENT_SECRET",
            "SECRETSBOOT_ARM_ENDPOINT",
        ):
            assert name in exported, name
        # the operator's secret, like the root token, is only in its own 0600 file
        assert exported["AZURE_CLIENT_SECRET"] not in (state_dir / "state.json").read_text()
        assert (state_dir / "operator.json").stat().st_mode & 0o077 == 0
    assert Path(exported["KUBECONFIG"]).is_file()
    # the root token lives in its own 0600 file, never in state.json or the serve log
    assert exported["VAULT_TOKEN"] not in (state_dir / "state.json").read_text()
    assert exported["VAULT_TOKEN"] not in (state_dir / "sandbox.log").read_text()
    import hvac

    client = hvac.Client(
        url=exported["VAULT_ADDR"], token=exported["VAULT_TOKEN"], verify=exported["VAULT_CACERT"]
    )
    try:
        assert client.is_authenticated()
    finally:
        client.adapter.close()

    # fault knobs reach the background process
    kube_url = next(r["endpoint"] for r in rows if r["name"] == "kubernetes")
    code, out, err = _run(
        capsys, "sandbox", "fault", "kubernetes", "--stop", "--dir", str(state_dir)
    )
    assert code == 0, err
    assert "stop applied" in out
    assert _refused(kube_url)
    code, _, err = _run(
        capsys,
        "sandbox",
        "fault",
        "kubernetes",
        "--start",
        "--fail-next",
        "1",
        "--status",
        "500",
        "--dir",
        str(state_dir),
    )
    assert code == 0, err
    assert not _refused(kube_url)
    code, out, _ = _run(capsys, "sandbox", "status", "--dir", str(state_dir), "-o", "json")
    assert all(r["healthy"] for r in json.loads(out)["components"])  # a 500 still answers
    # OpenBao's front: --stop refuses connections, --start accepts them again
    bao_url = next(r["endpoint"] for r in rows if r["name"] == "openbao")
    code, out, err = _run(capsys, "sandbox", "fault", "openbao", "--stop", "--dir", str(state_dir))
    assert code == 0, err
    assert _refused(bao_url)
    code, out, err = _run(capsys, "sandbox", "fault", "openbao", "--start", "--dir", str(state_dir))
    assert code == 0, err
    assert not _refused(bao_url)
    code, _, err = _run(capsys, "sandbox", "fault", "etcd", "--clear", "--dir", str(state_dir))
    assert code == 2
    assert "etcd" in err

    down = _cli("sandbox", "down", "--dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    assert str(serve_pid) in down.stdout
    deadline = time.monotonic() + 5
    while (_alive(serve_pid) or _alive(bao_pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(serve_pid)
    assert not _alive(bao_pid)
    assert not (state_dir / "state.json").exists()
    assert _processes_using(state_dir) == []
    # down removed everything up created (CA, keys, kubeconfig, logs, tokens) and the folder
    assert "pki/" in down.stdout and "openbao.log" in down.stdout
    assert not state_dir.exists()

    code, out, _ = _run(capsys, "sandbox", "down", "--dir", str(state_dir))
    assert code == 0
    assert "no sandbox running" in out
    code, out, err = _run(capsys, "sandbox", "status", "--dir", str(state_dir))
    assert code == 5  # nothing runs: non-zero
    assert "no sandbox running" in err
    code, _, err = _run(capsys, "sandbox", "env", "--dir", str(state_dir))
    assert code == 5
    assert "sandbox up" in err


def test_stale_state_is_not_trusted(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A state.json naming a pid that is not our serve process is never signalled."""
    state_dir.mkdir(parents=True)
    (state_dir / "state.json").write_text(json.dumps({"pid": os.getpid(), "openbao_pid": 1}))
    code, out, _ = _run(capsys, "sandbox", "status", "--dir", str(state_dir), "-o", "json")
    assert json.loads(out)["running"] is False
    (state_dir / "state.json").write_text(json.dumps({"pid": os.getpid(), "openbao_pid": 1}))
    code, out, _ = _run(capsys, "sandbox", "down", "--dir", str(state_dir), "-o", "json")
    assert code == 0
    assert json.loads(out) == {
        "running": False,
        "stopped": [],
        "removed": ["state.json"],
        "kept": [],
    }
    assert _alive(os.getpid()) and _alive(1)  # nothing signalled: the command lines differ
    assert not (state_dir / "state.json").exists()


def test_up_timeout_cleans_up(state_dir: Path) -> None:
    result = _cli(
        "sandbox",
        "up",
        "--dir",
        str(state_dir),
        "--components",
        "kubernetes,openbao",
        "--timeout",
        "0.05",
    )
    assert result.returncode == 5
    assert "not healthy within" in result.stderr
    deadline = time.monotonic() + 5
    while _processes_using(state_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _processes_using(state_dir) == []
    assert not (state_dir / "state.json").exists()


def test_unknown_component_is_bad_input(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(
        capsys, "sandbox", "up", "--dir", str(state_dir), "--components", "kubernetes,etcd"
    )
    assert code == 2
    assert "etcd" in err


def _listening(port: int) -> list[str]:
    """Local addresses of LISTEN sockets on ``port`` (from /proc/net/tcp{,6})."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            local, state = fields[1], fields[3]
            addr, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.append(addr)
    return found


def test_every_endpoint_binds_only_loopback(sandbox: object) -> None:
    endpoints = sandbox.endpoints()  # type: ignore[attr-defined]
    assert endpoints
    for name, url in endpoints.items():
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1", (name, url)
        ports = [parts.port or 0]
        if name == "openbao":  # the front, OpenBao's own listener and its cluster listener
            server = urlsplit(sandbox.vault.server_address).port or 0  # type: ignore[attr-defined]
            ports += [server, server + 1]
        for port in ports:
            addrs = _listening(port)
            assert addrs, (name, port)
            assert set(addrs) == {"0100007F"}, (name, port, addrs)  # 127.0.0.1 only
