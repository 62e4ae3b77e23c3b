"""``secretsboot fetch --refresh`` and ``run --refresh`` as processes, as a pod runs them:
SIGTERM exits 0 within a second and revokes the Vault token; the probes answer over
HTTP; ``run --refresh`` restarts its child with the new values."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from fetch_support import Pod, config, make_pod, put_vault, unique, vault_role

pytestmark = pytest.mark.integration
CANARY = "CANARY-cli-refresh"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def wait_for(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def vault_pod(sb: Any, tmp: Path) -> tuple[Pod, Path, str]:
    pod = make_pod(sb, tmp)
    base = unique("cli")
    vault_role(sb, pod, [f"secret/data/{base}/*", f"secret/metadata/{base}/*"])
    put_vault(sb, f"{base}/db", {"pw": f"{CANARY}-0"})
    doc = config(pod, [{"name": "db", "from": f"vault://secret/{base}/db#pw"}], sb=sb)
    return pod, pod.write_config(doc), f"{base}/db"


def tokens(sb: Any) -> int:
    return len(sb.vault.request("LIST", "auth/token/accessors")["data"]["keys"])


def spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "secretsboot", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_sigterm_exits_0_within_a_second_and_revokes_the_token(
    sandbox: Any, tmp_path: Path
) -> None:
    pod, cfg, path = vault_pod(sandbox, tmp_path)
    port = free_port()
    before = tokens(sandbox)
    proc = spawn(
        ["fetch", "-c", str(cfg), "--out", str(pod.out), "--refresh", "1s",
         "--health-port", str(port)],
        pod.env,
    )  # fmt: skip
    try:
        assert wait_for(lambda: get(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30)
        assert (pod.out / "db").read_text() == f"{CANARY}-0"
        assert tokens(sandbox) == before + 1  # the loop holds its login
        put_vault(sandbox, path, {"pw": f"{CANARY}-1"})
        assert wait_for(lambda: (pod.out / "db").read_text() == f"{CANARY}-1", 2.0)
        metrics = f"http://127.0.0.1:{port}/metrics"  # counted just after the swap
        assert wait_for(lambda: "secretsboot_refresh_publishes_total 1\n" in get(metrics)[1], 1)
        assert get(f"http://127.0.0.1:{port}/livez")[0] == 200
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(5)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    assert code == 0, err
    assert took < 1.0, f"exit took {took:.2f}s"
    assert tokens(sandbox) == before, "the Vault token must be revoked on exit"
    assert CANARY not in out + err


def test_bad_refresh_flags_are_bad_input(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, _ = vault_pod(sandbox, tmp_path)
    for extra, message in [
        (["--refresh", "soon"], "--refresh: 'soon' is not an interval"),
        (["--refresh", "1m", "--notify-signal", "HUP"], "--notify-signal needs"),
        (["--health-port", "8099"], "--health-port needs --refresh INTERVAL"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "secretsboot", "fetch", "-c", str(cfg), "--out",
             str(pod.out), *extra],
            env=pod.env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, done.stderr
        assert message in done.stderr
    assert not (pod.out / "db").exists()


def test_run_refresh_restarts_the_child_with_the_new_values(sandbox: Any, tmp_path: Path) -> None:
    pod, cfg, path = vault_pod(sandbox, tmp_path)
    seen = tmp_path / "seen.jsonl"
    child = (
        "import json, os, sys, time\n"
        "open(sys.argv[1], 'a').write(json.dumps(os.environ['DB']) + '\\n')\n"
        "time.sleep(60)\n"
    )
    proc = spawn(
        ["run", "-c", str(cfg), "--refresh", "1s", "--", sys.executable, "-c", child, str(seen)],
        pod.env,
    )
    try:
        assert wait_for(lambda: seen.exists() and seen.read_text().strip(), 30)
        put_vault(sandbox, path, {"pw": f"{CANARY}-2"})
        assert wait_for(lambda: len(seen.read_text().splitlines()) == 2, 4.0)
        values = [json.loads(line) for line in seen.read_text().splitlines()]
        assert values == [f"{CANARY}-0", f"{CANARY}-2"]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    assert code == 128 + signal.SIGTERM  # the child's own status: it died of the SIGTERM
    assert CANARY not in out + err
