"""Telling the app (signals by pid file and by process name, a command, the ..changed
file, the restarted child of ``run --refresh``) and the loopback probe server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from secretsboot.errors import BadInputError
from secretsboot.fetch.health import HealthState, serve
from secretsboot.fetch.notify import (
    ChangedFile,
    Child,
    ExecCommand,
    SignalPidFile,
    SignalProcess,
    notifiers,
    parse_signal,
)

# A program that writes "ready" once its SIGHUP handler is in place, then "hup" per SIGHUP.
LISTENER = """
import signal, sys, time
out = sys.argv[1]
def on_hup(*_):
    with open(out, "a") as fh:
        fh.write("hup\\n")
signal.signal(signal.SIGHUP, on_hup)
with open(out, "a") as fh:
    fh.write("ready\\n")
time.sleep(30)
"""


def wait_for(predicate: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def listener(tmp_path: Path) -> Any:
    out = tmp_path / "heard.txt"
    script = tmp_path / "secretsboot-test-app"
    script.write_text(LISTENER)
    # Run the interpreter under a name no other process on the machine has: the
    # by-name notifier signals EVERY process of that name (other test runs' pythons too).
    interpreter = tmp_path / f"sbt{os.getpid() % 100000}{tmp_path.name[-6:]}"[:15]
    interpreter.symlink_to(sys.executable)
    proc = subprocess.Popen([str(interpreter), str(script), str(out)])
    assert wait_for(lambda: out.exists() and "ready" in out.read_text())
    try:
        yield proc, out, script
    finally:
        proc.kill()
        proc.wait()


def test_signal_names() -> None:
    assert parse_signal("SIGHUP") is signal.SIGHUP
    assert parse_signal("usr2") is signal.SIGUSR2
    with pytest.raises(BadInputError, match="unknown signal 'SIGNOPE'"):
        parse_signal("SIGNOPE")


def test_signal_by_pid_file(listener: Any, tmp_path: Path) -> None:
    proc, out, _ = listener
    pid_file = tmp_path / "app.pid"
    pid_file.write_text(f"{proc.pid}\n")
    lines: list[str] = []
    SignalPidFile(signal.SIGHUP, str(pid_file), lines.append).notify(["db"])
    assert wait_for(lambda: "hup" in out.read_text())
    assert lines == [f"notify: sent SIGHUP to pid {proc.pid} from {pid_file}"]


def test_signal_by_process_name_scans_proc(listener: Any) -> None:
    proc, out, _ = listener
    # python runs the script: argv[0] is the interpreter, so match on the comm name
    comm = Path(f"/proc/{proc.pid}/comm").read_text().strip()
    assert not comm.startswith("python"), "the listener must not share a name with other pythons"
    finder = SignalProcess(signal.SIGHUP, comm, lambda _line: None)
    assert proc.pid in finder.matching()
    finder.notify(["db"])
    assert wait_for(lambda: "hup" in out.read_text())


def test_signal_by_name_in_a_fake_proc_tree(tmp_path: Path) -> None:
    proc_dir = tmp_path / "proc"
    for pid, comm, argv0 in [(7, "nginx", b"/usr/sbin/nginx"), (8, "sh", b"/bin/sh"),
                             (9, "python3", b"/opt/app/bin/orders-api")]:  # fmt: skip
        (proc_dir / str(pid)).mkdir(parents=True)
        (proc_dir / str(pid) / "comm").write_text(comm + "\n")
        (proc_dir / str(pid) / "cmdline").write_bytes(argv0 + b"\0--flag\0")
    (proc_dir / "self").mkdir()
    assert SignalProcess(signal.SIGHUP, "nginx", print, str(proc_dir)).matching() == [7]
    assert SignalProcess(signal.SIGHUP, "orders-api", print, str(proc_dir)).matching() == [9]
    lines: list[str] = []
    SignalProcess(signal.SIGHUP, "redis", lines.append, str(proc_dir)).notify([])
    assert lines == ["notify: no process named 'redis' (is shareProcessNamespace: true set?)"]


def test_a_missing_pid_is_one_log_line(tmp_path: Path) -> None:
    lines: list[str] = []
    SignalPidFile(signal.SIGHUP, str(tmp_path / "none.pid"), lines.append).notify([])
    assert len(lines) == 1 and "cannot read a pid" in lines[0]


def test_exec_command_and_changed_file(tmp_path: Path) -> None:
    marker = tmp_path / "reloaded"
    lines: list[str] = []
    ExecCommand(f"touch {marker}", lines.append).notify(["db"])
    assert marker.exists() and lines == ["notify: touch exited 0"]
    ChangedFile(str(tmp_path), lines.append).notify(["db", "api-key"])
    text = (tmp_path / "..changed").read_text().splitlines()
    assert text[1:] == ["db", "api-key"] and text[0].endswith("Z")


def test_flag_combinations_are_checked(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="need --notify-signal"):
        notifiers(out_dir=None, log=print, pid_file="x")
    with pytest.raises(BadInputError, match="needs --notify-pid-file"):
        notifiers(out_dir=None, log=print, signal_name="HUP")
    found = notifiers(
        out_dir=str(tmp_path), log=print, signal_name="HUP", process="nginx", command="true"
    )
    assert [type(n).__name__ for n in found] == ["SignalProcess", "ExecCommand", "ChangedFile"]


def test_child_restart_gives_the_new_environment(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    code = "import os,sys,time; open(sys.argv[1],'a').write(os.environ['DB']+'\\n'); time.sleep(30)"
    child = Child([sys.executable, "-c", code, str(out)], lambda _line: None, grace=2)
    child.start({"DB": "one"})
    assert wait_for(lambda: out.exists() and out.read_text() == "one\n")
    child.restart({"DB": "two"})
    assert wait_for(lambda: out.read_text() == "one\ntwo\n")
    assert not child.exited.is_set()  # a restart is not an exit
    assert child.stop() == 128 + signal.SIGTERM
    assert child.exited.wait(2)


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_probe_server_on_loopback() -> None:
    state = HealthState(stale_after=60)
    server = serve(state, 0)
    try:
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        base = f"http://127.0.0.1:{port}"
        assert get(base + "/readyz")[0] == 503
        state.mark_ready()
        state.metrics.inc("secretsboot_refresh_cycles_total", 3)
        state.failure("vault", "unavailable", "Vault answered 503")
        assert get(base + "/readyz")[:1] == (200,)
        status, kind, body = get(base + "/metrics")
        assert status == 200 and kind.startswith("text/plain; version=0.0.4")
        assert "secretsboot_refresh_cycles_total 3\n" in body
        assert 'secretsboot_refresh_failures_total{reason="unavailable",store="vault"} 1' in body
        assert "# TYPE secretsboot_refresh_failures_total counter" in body
        status, _, body = get(base + "/livez")
        assert status == 200 and "vault: Vault answered 503" in body
        assert get(base + "/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
