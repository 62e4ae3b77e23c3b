"""`secretsboot demo` end to end: the README's main command, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

ROOT = Path(__file__).resolve().parents[2]


def run_demo(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VAULT_"))}
    env.pop("KUBECONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "secretsboot", "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def processes_under(folder: Path) -> list[int]:
    """Pids whose command line mentions ``folder`` or whose working folder is inside it
    (OpenBao runs with its state folder as working folder): proof the sandbox stopped."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if str(folder) in cmdline or Path(cwd).is_relative_to(folder):
            found.append(int(entry.name))
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    workdir = tmp_path_factory.mktemp("demo") / "out"
    started = time.monotonic()
    done = run_demo("--dir", str(workdir))
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"
    return done, workdir


def test_every_step_runs_and_says_so(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, workdir = demo
    out = done.stdout
    for n, step in enumerate(
        ("sandbox", "seed", "provision", "fetch", "fallback", "denial", "inject", "audit"), 1
    ):
        assert f"[{n}/8] {step}:" in out
    assert out.count("      ok: ") == 8
    assert "planned again: no changes" in out
    assert "10 secrets fetched by 5 pods" in out
    assert out.count("= seeded") == 11 and "!= seeded" not in out  # 10 fetched + 1 fallback
    assert "package: mongodb-connection <- k8s://package-secrets#mongodb-connection" in out
    assert "package started with Key Vault unreachable" in out
    assert "package -> delivery's keyvault://kv-dd-delivery/delivery-cosmosdb-key: exit 3" in out
    assert "Key Vault kv-dd-delivery denied" in out
    assert "no high" in out
    assert f"Everything is under {workdir}" in out
    assert out.rstrip().endswith("sandbox stopped")


def test_each_pod_got_its_own_secrets(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo
    pods = workdir / "pods"
    expected = {
        "delivery": {"cosmosdb-key", "redis-key"},  # the third lands in env via `run`
        "package": {"mongodb-connection", "appinsights-connection"},
        "workflow": {"queue-access-key", "queue-access-policy"},
        "ingestion": {"eventhub-key", "servicebus-key"},
        "dronescheduler": {"cosmosdb-key"},
    }
    for service, names in expected.items():
        folder = pods / service / "secrets"  # links name -> ..data/name (fetch's publish)
        files = {p.name for p in folder.iterdir() if not p.name.startswith("..")}
        assert files == names, service
        for name in names:
            assert (pods / service / "secrets" / name).stat().st_mode & 0o777 == 0o400
    assert list((pods / "package-denied" / "secrets").iterdir()) == []
    fallback = pods / "package-fallback" / "secrets" / "mongodb-connection"
    primary = pods / "package" / "secrets" / "mongodb-connection"
    assert fallback.read_bytes() == primary.read_bytes()


def test_no_secret_value_is_printed_or_reported(
    demo: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, workdir = demo
    values = [
        p.read_text(encoding="utf-8") for p in (workdir / "pods").glob("*/secrets/*") if p.is_file()
    ]
    assert len(values) == 10
    reported = [
        done.stdout,
        done.stderr,
        (workdir / "drone-delivery-audit.html").read_text(encoding="utf-8"),
        *(p.read_text(encoding="utf-8") for p in (workdir / "manifests").iterdir()),
        (workdir / "drone-delivery.sandbox.env").read_text(encoding="utf-8"),
    ]
    for value in values:
        assert value.startswith("demo-") and len(value) > 20
        for text in reported:
            assert value not in text


def test_outputs_are_where_it_says(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo
    report = (workdir / "drone-delivery-audit.html").read_text(encoding="utf-8")
    assert report.lstrip().lower().startswith("<!doctype html")
    assert "secretsboot-init" in report
    injected = list(
        yaml.safe_load_all(
            (workdir / "manifests" / "drone-delivery.injected.yaml").read_text(encoding="utf-8")
        )
    )
    kinds = [d["kind"] for d in injected]
    assert kinds.count("Deployment") == 5 and kinds.count("ConfigMap") == 4
    # the spec is used unchanged: no copy pointed at the sandbox, the overrides do it
    assert not list(workdir.glob("*.sandbox.yaml"))
    assert (workdir / ".gitignore").read_text(encoding="utf-8").splitlines()[-1] == "*"
    env_file = (workdir / "drone-delivery.sandbox.env").read_text(encoding="utf-8")
    assert "export KUBECONFIG=" in env_file
    assert "export SECRETSBOOT_KEYVAULT_KV_DD_DELIVERY=" in env_file
    assert 'VAULT_TOKEN="$(cat ' in env_file  # the root token itself stays in its file
    assert 'AZURE_CLIENT_SECRET="$(python3 -c ' in env_file  # so does the operator's secret


def test_the_sandbox_is_stopped(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, workdir = demo
    assert processes_under(workdir) == []


def test_a_failing_step_fails_loudly(tmp_path: Path) -> None:
    spec = tmp_path / "no-azure.yaml"
    spec.write_text(
        "apiVersion: secretsboot/v1\nkind: SecretsbootSpec\n"
        "services: [{name: web, identity: none}]\n",
        encoding="utf-8",
    )
    workdir = tmp_path / "out"
    done = run_demo("--dir", str(workdir), "--spec", str(spec))
    assert done.returncode == 2
    assert "[2/8] seed:" in done.stdout and "FAILED: the demo spec has no azure section" in (
        done.stdout
    )
    assert "[3/8]" not in done.stdout
    assert "error: demo step 'seed' failed: the demo spec has no azure section" in done.stderr
    assert "sandbox stopped" in done.stdout
    assert processes_under(workdir) == []
    assert (workdir / "no-azure.sandbox.env").is_file()  # outputs are named after the spec


def test_keep_leaves_the_sandbox_running_until_ctrl_c(tmp_path: Path) -> None:
    workdir = tmp_path / "kept"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "VAULT_"))}
    env["PYTHONUNBUFFERED"] = "1"
    lines: list[str] = []
    kept = threading.Event()
    with (tmp_path / "stderr.txt").open("w+", encoding="utf-8") as err_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "secretsboot", "demo", "--dir", str(workdir), "--keep"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err_file,  # a file, not a pipe nobody reads
            text=True,
        )

        def read() -> None:  # a thread: readline on a pipe has no timeout
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if "keeps running (--keep)" in line:
                    kept.set()

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + 150
            while not kept.wait(0.5) and proc.poll() is None and time.monotonic() < deadline:
                pass
            assert kept.is_set(), "".join(lines)
            time.sleep(0.5)
            assert proc.poll() is None, "the demo must wait while the sandbox is kept"
            assert processes_under(workdir), "OpenBao runs while the sandbox is kept"
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            reader.join(timeout=10)
            if proc.stdout is not None:
                proc.stdout.close()
        err_file.seek(0)
        err = err_file.read()
    out = "".join(lines)
    assert proc.returncode == 0, out + err
    assert out.rstrip().endswith("sandbox stopped"), out
    assert processes_under(workdir) == []
