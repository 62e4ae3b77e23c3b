"""Run the sandbox in a background process: ``up``, ``status``, ``env``, ``down``.

``up`` spawns ``python -m secretsboot.sandbox.stack serve --dir D`` in its own
session and returns once ``D/state.json`` says every component is healthy.
``down`` stops exactly the processes ``up`` started: the serve process and its
OpenBao child, each checked by pid *and* command line before it is signalled.

Example::

    state, already = up(Path(".secretsboot-sandbox"))
    print(env_script(Path(".secretsboot-sandbox")))   # export NAME='value' lines
    down(Path(".secretsboot-sandbox"))
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secretsboot._fs import atomic_write_text
from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.sandbox import openbao, seed
from secretsboot.sandbox.stack import COMPONENTS, CONTROL_DIR, PKI_DIR, STATE_FILE

ERROR_FILE = "error.json"
LOG_FILE = "sandbox.log"
AZURE_FILE = "azure.json"
PODS_DIR = "pods"
#: Everything ``up`` creates in its state directory; ``down`` removes exactly these.
CREATED_FILES = (
    STATE_FILE,
    ERROR_FILE,
    LOG_FILE,
    AZURE_FILE,
    "kubeconfig",
    seed.OPERATOR_FILE,
    openbao.CONFIG_FILE,
    openbao.LOG_FILE,
    openbao.ROOT_TOKEN_FILE,
)
CREATED_DIRS = (PKI_DIR, CONTROL_DIR, PODS_DIR)
_SERVE_MARKER = "secretsboot.sandbox.stack"

# Popen objects of serve processes spawned by this process: kept alive so they are
# reaped by ``down`` (and never garbage-collected while running).
_SPAWNED: dict[int, subprocess.Popen[bytes]] = {}


def _cmdline(pid: int) -> list[str] | None:
    """The command line of ``pid`` (None when no such process, or a zombie)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.exists() or sys.platform.startswith("linux"):
        try:
            raw = proc.read_bytes()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            return None
        if not raw:  # zombie or kernel thread
            return None
        return [p.decode("utf-8", "replace") for p in raw.split(b"\0") if p]
    try:
        out = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split() or None


def is_serve_process(pid: int | None, state_dir: Path) -> bool:
    """True when ``pid`` is the serve process of ``state_dir``."""
    if not pid:
        return False
    cmd = _cmdline(int(pid))
    if not cmd:
        return False
    joined = " ".join(cmd)
    return _SERVE_MARKER in joined and "serve" in cmd and str(state_dir) in cmd


def is_openbao_process(pid: int | None) -> bool:
    """True when ``pid`` runs ``bao server -dev``."""
    if not pid:
        return False
    cmd = _cmdline(int(pid))
    if not cmd:
        return False
    return Path(cmd[0]).name == "bao" and "server" in cmd and "-dev" in cmd


def read_state(state_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BadInputError(
            f"{state_dir / STATE_FILE} is not readable: {exc}",
            hint="remove it if no sandbox is running",
        ) from None
    return data if isinstance(data, dict) else None


def running_state(state_dir: Path) -> dict[str, Any] | None:
    """The state of the sandbox running in ``state_dir``, or None (stale state removed)."""
    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    if state is None:
        return None
    if is_serve_process(state.get("pid"), state_dir):
        return state
    with contextlib.suppress(FileNotFoundError):
        (state_dir / STATE_FILE).unlink()
    return None


def _reap(pid: int) -> None:
    proc = _SPAWNED.pop(pid, None)
    if proc is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


def _stop_pid(pid: int, still_ours: Any, timeout: float = 10.0) -> bool:
    """SIGTERM ``pid`` while ``still_ours(pid)``; SIGKILL after ``timeout``. True if stopped."""
    if not still_ours(pid):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid in _SPAWNED and _SPAWNED[pid].poll() is not None:
            break
        if not still_ours(pid):
            break
        time.sleep(0.05)
    else:
        if still_ours(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap(pid)
    return True


def _fresh_private(path: Path) -> int:
    """A new 0600 file at ``path`` (an old file or symlink there is removed first)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)


def up(
    state_dir: Path,
    components: Sequence[str] = COMPONENTS,
    *,
    spec: Path | None = None,
    timeout: float = 30.0,
    propagation: str | None = None,
) -> tuple[dict[str, Any], bool]:
    """Start the sandbox in the background; returns ``(state, already_running)``.

    With ``spec`` (a spec file), the sandbox also holds what that spec expects to
    exist already (see :mod:`secretsboot.sandbox.seed`).
    """
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    existing = running_state(state_dir)
    if existing is not None:
        return existing, True
    with contextlib.suppress(FileNotFoundError):
        (state_dir / ERROR_FILE).unlink()
    t0 = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "secretsboot.sandbox.stack",
        "serve",
        "--dir",
        str(state_dir),
        "--components",
        ",".join(components),
    ]
    if spec is not None:
        command += ["--spec", str(spec.resolve())]
    if propagation is not None:  # "LOW-HIGH" seconds (stack.parse_propagation)
        command += ["--propagation", propagation]
    with os.fdopen(_fresh_private(state_dir / LOG_FILE), "ab") as log_file:
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the shell that ran `up`
            close_fds=True,
        )
    _SPAWNED[proc.pid] = proc
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        state = read_state(state_dir)
        if state is not None and state.get("ready") and state.get("pid") == proc.pid:
            state["up_seconds"] = round(time.monotonic() - t0, 3)
            return state, False
        error_path = state_dir / ERROR_FILE
        if error_path.exists() or proc.poll() is not None:
            detail = ""
            with contextlib.suppress(OSError, ValueError):
                detail = json.loads(error_path.read_text(encoding="utf-8")).get("error", "")
            _stop_pid(proc.pid, lambda _p: proc.poll() is None, timeout=5)
            _reap(proc.pid)
            raise UnavailableError(
                f"the sandbox did not start{': ' + detail if detail else ''}",
                hint=f"see {state_dir / LOG_FILE}",
            )
        time.sleep(0.02)
    _shutdown(state_dir, proc.pid, None)
    raise UnavailableError(
        f"the sandbox was not healthy within {timeout:.0f} s (stopped it again)",
        hint=f"see {state_dir / LOG_FILE}",
    )


def _shutdown(state_dir: Path, serve_pid: int, openbao_pid: int | None) -> list[int]:
    stopped = []
    if _stop_pid(serve_pid, lambda p: is_serve_process(p, state_dir)):
        stopped.append(serve_pid)
    # The serve process stops OpenBao itself; only a survivor is signalled here.
    if openbao_pid and _stop_pid(openbao_pid, is_openbao_process, timeout=5):
        stopped.append(openbao_pid)
    return stopped


def remove_created(state_dir: Path) -> list[str]:
    """Remove every file and folder ``up`` creates (CA, keys, kubeconfig, logs, tokens);
    the state directory too when nothing else is left in it. Returns what was removed."""
    import shutil

    removed = []
    for name in CREATED_FILES:
        path = state_dir / name
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(name)
    for name in CREATED_DIRS:
        path = state_dir / name
        if path.is_symlink():
            path.unlink()
            removed.append(name)
        elif path.is_dir():
            shutil.rmtree(path)
            removed.append(name + "/")
    with contextlib.suppress(OSError):
        state_dir.rmdir()  # only when empty: a file of the user's keeps the folder
    return removed


def down(state_dir: Path) -> dict[str, Any]:
    """Stop the background sandbox of ``state_dir`` and remove what it created.

    Returns what was stopped and removed, and ``kept``: anything left in the state
    directory that the sandbox did not create (never touched).
    """
    state_dir = state_dir.resolve()
    state = read_state(state_dir)
    was_running, stopped = False, []
    if state is not None:
        serve_pid = int(state.get("pid") or 0)
        openbao_pid = state.get("openbao_pid")
        was_running = is_serve_process(serve_pid, state_dir)
        stopped = _shutdown(state_dir, serve_pid, int(openbao_pid) if openbao_pid else None)
    removed = remove_created(state_dir) if state_dir.is_dir() else []
    kept = sorted(p.name for p in state_dir.iterdir()) if state_dir.is_dir() else []
    return {"running": was_running, "stopped": stopped, "removed": removed, "kept": kept}


def _probe(url: str, ca_path: str) -> bool:
    ctx = ssl.create_default_context(cafile=ca_path) if url.startswith("https") else None
    try:
        with urllib.request.urlopen(url, timeout=2, context=ctx):  # noqa: S310 - loopback URLs
            return True
    except urllib.error.HTTPError as exc:
        exc.close()
        return True  # it answered: up (401/404 are fine for a liveness probe)
    except (OSError, ValueError):
        return False


def status(state_dir: Path) -> dict[str, Any]:
    """Whether the sandbox runs, and each component's endpoint and health."""
    state_dir = state_dir.resolve()
    state = running_state(state_dir)
    if state is None:
        return {"running": False, "state_dir": str(state_dir), "components": []}
    ca = str(state.get("ca_path", ""))
    rows = []
    for name, url in (state.get("endpoints") or {}).items():
        probe = {"kubernetes": "/healthz", "openbao": "/v1/sys/health"}.get(name, "/")
        rows.append({"name": name, "endpoint": url, "healthy": _probe(url + probe, ca)})
    return {
        "running": True,
        "state_dir": str(state_dir),
        "pid": state.get("pid"),
        "openbao_pid": state.get("openbao_pid"),
        "ca_path": ca,
        "kubeconfig": state.get("kubeconfig"),
        "components": rows,
    }


def environment(state_dir: Path) -> dict[str, str]:
    """The sandbox's environment (VAULT_TOKEN read from the root-token file)."""
    state_dir = state_dir.resolve()
    state = running_state(state_dir)
    if state is None:
        raise UnavailableError(
            f"no sandbox is running in {state_dir}", hint="run `secretsboot sandbox up` first"
        )
    env = {str(k): str(v) for k, v in (state.get("env") or {}).items()}
    env.update(seed.read_operator(state_dir))
    token_file = state.get("root_token_file")
    if token_file:
        with contextlib.suppress(FileNotFoundError):
            env["VAULT_TOKEN"] = Path(token_file).read_text(encoding="ascii").strip()
    return dict(sorted(env.items()))


def env_script(state_dir: Path) -> str:
    """``export NAME='value'`` lines for ``eval "$(secretsboot sandbox env)"``."""
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in environment(state_dir).items())


def send_fault(state_dir: Path, command: dict[str, Any], *, timeout: float = 5.0) -> dict[str, Any]:
    """Ask the running serve process to apply a fault command (see ``stack.apply_fault``)."""
    state_dir = state_dir.resolve()
    if running_state(state_dir) is None:
        raise UnavailableError(
            f"no sandbox is running in {state_dir}", hint="run `secretsboot sandbox up` first"
        )
    control = state_dir / CONTROL_DIR
    name = uuid.uuid4().hex
    atomic_write_text(
        control / f"{name}.request.json", json.dumps(command), mode=0o600, what="fault command"
    )
    response = control / f"{name}.response.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if response.exists():
            result: dict[str, Any] = json.loads(response.read_text(encoding="utf-8"))
            response.unlink()
            if not result.get("ok"):
                raise BadInputError(str(result.get("error", "the fault command failed")))
            return result
        time.sleep(0.02)
    with contextlib.suppress(FileNotFoundError):
        (control / f"{name}.request.json").unlink()
    raise UnavailableError(f"the sandbox did not answer the fault command within {timeout:.0f} s")
