"""Telling the app that its secrets changed, after each published change.

Ways, combinable (each one logs one line when it fails, and never stops the loop):

- ``--notify-signal SIG --notify-pid-file FILE``: send SIG to the pid written in FILE
  (re-read each time: the app may have restarted);
- ``--notify-signal SIG --notify-process NAME``: send SIG to every process named NAME
  (``/proc/<pid>/comm`` or the base name of ``argv[0]``). Needs
  ``shareProcessNamespace: true`` on the pod, and the same uid as the app (or
  ``CAP_KILL``, which secretsboot's manifests do not grant);
- ``--notify-exec CMD``: run CMD (split like a shell would, no shell), with a
  timeout; its exit status is logged, its output goes to ours;
- always: ``OUT/..changed`` is rewritten (a timestamp and the changed names, never a
  value), for apps that watch a file with inotify.

``run --refresh`` cannot hand new values to a running process: environment variables
are fixed when a program starts. So it **restarts** its child (SIGTERM, a grace
period, SIGKILL, then a fresh exec with the new environment): see :class:`Child`.
A signal would only tell the child to re-read an environment that did not change.

>>> parse_signal("HUP").name, parse_signal("SIGUSR1").name, parse_signal("15").name
('SIGHUP', 'SIGUSR1', 'SIGTERM')
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence

from secretsboot.errors import BadInputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol

    class Notifier(Protocol):
        def notify(self, changed: Sequence[str]) -> None:
            """Tell the app; raise nothing (log instead)."""
            ...


Log = Callable[[str], None]
CHANGED_FILE = "..changed"
EXEC_TIMEOUT = 30.0


def parse_signal(text: str) -> signal.Signals:
    """``SIGHUP``, ``HUP`` or ``1`` -> ``signal.SIGHUP``; a clear error otherwise."""
    value = text.strip().upper()
    try:
        if value.isdigit():
            return signal.Signals(int(value))
        return signal.Signals[value if value.startswith("SIG") else "SIG" + value]
    except (KeyError, ValueError):
        raise BadInputError(
            f"--notify-signal: unknown signal '{text}'", hint="use a name like SIGHUP or SIGUSR1"
        ) from None


class SignalPidFile:
    """Send a signal to the pid found in a file (read at each change)."""

    def __init__(self, sig: signal.Signals, pid_file: str, log: Log) -> None:
        self.sig = sig
        self.pid_file = pid_file
        self.log = log

    def notify(self, changed: Sequence[str]) -> None:
        try:
            with open(self.pid_file, encoding="ascii") as fh:
                pid = int(fh.read().strip())
        except (OSError, ValueError) as exc:
            self.log(f"notify: cannot read a pid from {self.pid_file} ({type(exc).__name__})")
            return
        _send(pid, self.sig, f"pid {pid} from {self.pid_file}", self.log)


class SignalProcess:
    """Send a signal to every process named ``name`` in a shared process namespace."""

    def __init__(self, sig: signal.Signals, name: str, log: Log, proc: str = "/proc") -> None:
        self.sig = sig
        self.name = name
        self.log = log
        self.proc = proc

    def matching(self) -> list[int]:
        """Pids whose ``comm`` or ``argv[0]`` base name is ``name`` (never our own)."""
        found = []
        me = os.getpid()
        try:
            entries = os.listdir(self.proc)
        except OSError:
            return []
        for entry in entries:
            if not entry.isdigit() or int(entry) == me:
                continue
            if self._name_matches(os.path.join(self.proc, entry)):
                found.append(int(entry))
        return sorted(found)

    def _name_matches(self, folder: str) -> bool:
        try:
            with open(os.path.join(folder, "comm"), "rb") as fh:
                if fh.read().strip().decode(errors="replace") == self.name[:15]:
                    return True
            with open(os.path.join(folder, "cmdline"), "rb") as fh:
                argv0 = fh.read().split(b"\0", 1)[0].decode(errors="replace")
        except OSError:
            return False  # the process ended meanwhile, or is not ours to read
        return os.path.basename(argv0) == self.name

    def notify(self, changed: Sequence[str]) -> None:
        pids = self.matching()
        if not pids:
            self.log(
                f"notify: no process named '{self.name}' (is shareProcessNamespace: true set?)"
            )
        for pid in pids:
            _send(pid, self.sig, f"process '{self.name}' (pid {pid})", self.log)


def _send(pid: int, sig: signal.Signals, what: str, log: Log) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        log(f"notify: {what} does not exist")
    except PermissionError:
        log(f"notify: not allowed to signal {what} (run as the app's uid)")
    else:
        log(f"notify: sent {sig.name} to {what}")


class ExecCommand:
    """Run a command after each change (no shell; its exit status is logged)."""

    def __init__(self, command: str, log: Log, timeout: float = EXEC_TIMEOUT) -> None:
        import shlex

        try:
            self.argv = shlex.split(command)
        except ValueError as exc:
            raise BadInputError(f"--notify-exec: cannot parse '{command}': {exc}") from None
        if not self.argv:
            raise BadInputError("--notify-exec: empty command")
        self.log = log
        self.timeout = timeout

    def notify(self, changed: Sequence[str]) -> None:
        try:
            done = subprocess.run(self.argv, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            self.log(f"notify: {self.argv[0]} still running after {self.timeout:.0f}s; killed")
        except OSError as exc:
            self.log(f"notify: cannot run {self.argv[0]}: {exc.strerror}")
        else:
            self.log(f"notify: {self.argv[0]} exited {done.returncode}")


class ChangedFile:
    """Rewrite ``OUT/..changed`` (time and changed names, no values) after each change."""

    def __init__(self, out_dir: str, log: Log) -> None:
        self.path = os.path.join(out_dir, CHANGED_FILE)
        self.log = log

    def notify(self, changed: Sequence[str]) -> None:
        from secretsboot._fs import atomic_write_text
        from secretsboot.errors import WriteError

        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        text = f"{stamp}\n" + "".join(f"{name}\n" for name in changed)
        try:
            atomic_write_text(self.path, text, mode=0o444, what="change marker")
        except WriteError as exc:
            self.log(f"notify: {exc}")


def notifiers(
    *,
    out_dir: str | None,
    log: Log,
    signal_name: str | None = None,
    pid_file: str | None = None,
    process: str | None = None,
    command: str | None = None,
) -> list[Notifier]:
    """The notifiers the flags ask for (the ``..changed`` file whenever there is an OUT)."""
    found: list[Notifier] = []
    if (pid_file or process) and not signal_name:
        raise BadInputError(
            "--notify-pid-file/--notify-process need --notify-signal", hint="e.g. SIGHUP"
        )
    if signal_name and not (pid_file or process):
        raise BadInputError("--notify-signal needs --notify-pid-file FILE or --notify-process NAME")
    sig = parse_signal(signal_name) if signal_name else None
    if sig is not None and pid_file:
        found.append(SignalPidFile(sig, pid_file, log))
    if sig is not None and process:
        found.append(SignalProcess(sig, process, log))
    if command:
        found.append(ExecCommand(command, log))
    if out_dir:
        found.append(ChangedFile(out_dir, log))
    return found


class Child:
    """``run --refresh``: the app as our child, restarted with a new environment on change.

    Signals we receive (TERM, INT, HUP, QUIT, USR1, USR2) are passed on to the child;
    when the child exits by itself, :attr:`exited` is set and :meth:`returncode` says how.
    """

    FORWARDED = (
        signal.SIGTERM,
        signal.SIGINT,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
    )

    def __init__(self, argv: Sequence[str], log: Log, grace: float = 10.0) -> None:
        self.argv = list(argv)
        self.log = log
        self.grace = grace
        self.exited = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._restarting = False
        self._lock = threading.Lock()

    @property
    def started(self) -> bool:
        with self._lock:
            return self._proc is not None

    def start(self, env: Mapping[str, str]) -> None:
        try:
            proc = subprocess.Popen(self.argv, env=dict(env))
        except OSError as exc:
            raise BadInputError(f"cannot run {self.argv[0]}: {exc.strerror}") from None
        with self._lock:
            self._proc = proc
            self._restarting = False
        threading.Thread(target=self._wait, args=(proc,), daemon=True).start()

    def _wait(self, proc: subprocess.Popen[bytes]) -> None:
        proc.wait()
        with self._lock:
            if proc is self._proc and not self._restarting:
                self.exited.set()

    def send(self, sig: int) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig``, wait the grace period, then SIGKILL; return the exit status."""
        with self._lock:
            proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.log(f"{self.argv[0]} ignored {signal.Signals(sig).name}; killing it")
                proc.kill()
                proc.wait()
        return _status(proc.returncode)

    def restart(self, env: Mapping[str, str]) -> None:
        with self._lock:
            self._restarting = True
        self.stop()
        self.start(env)
        self.log(f"restarted {self.argv[0]} with the new values")

    def returncode(self) -> int:
        with self._lock:
            proc = self._proc
        return 0 if proc is None or proc.returncode is None else _status(proc.returncode)


def _status(code: int) -> int:
    """A shell's convention: killed by signal N -> 128 + N."""
    return 128 - code if code < 0 else code
