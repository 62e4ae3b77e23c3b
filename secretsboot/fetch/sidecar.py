"""``fetch --refresh`` and ``run --refresh``: the refresh loop as a process.

:func:`fetch_refreshing` writes the first set, then keeps it fresh until SIGTERM or
SIGINT (exit 0 within a second, Vault tokens revoked). :func:`run_refreshing` starts
the app as a child with the values in its environment and restarts it when they
change (see :mod:`secretsboot.fetch.notify` for why a restart and not a signal); it
exits with the child's status. Both serve the probes of
:mod:`secretsboot.fetch.health` when given a port; the probe server starts before
the first fetch, so ``/readyz`` answers 503 until the first set is written.

>>> fetch_refreshing(config, out="/var/run/secrets/secretsboot",
...                  refresh=RefreshFlags(interval="5m"))  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, NamedTuple, NoReturn

    from secretsboot.contract import FetchConfig
    from secretsboot.fetch._cli import Common
    from secretsboot.fetch.health import HealthState
    from secretsboot.fetch.refresh import Options, Refresher
    from secretsboot.secret import SecretValue
else:
    from secretsboot._records import NamedTuple


class RefreshFlags(NamedTuple):
    """The refresh flags of ``fetch``/``run``, as the command line gives them."""

    interval: str
    remove_deleted: bool = False
    health_port: int | None = None
    health_host: str = "127.0.0.1"
    stale_after: str | None = None
    notify_signal: str | None = None
    notify_pid_file: str | None = None
    notify_process: str | None = None
    notify_exec: str | None = None

    def options(self, timeout: float) -> Options:
        from secretsboot.fetch.refresh import Options
        from secretsboot.interval import parse_interval

        stale = parse_interval(self.stale_after, "--stale-after") if self.stale_after else None
        return Options(
            interval=parse_interval(self.interval),
            timeout=min(timeout, 30.0),
            remove_deleted=self.remove_deleted,
            stale_after=stale,
        )


def _log(message: str) -> None:
    print(f"secretsboot: {message}", file=sys.stderr, flush=True)


def _loop_until_signalled(
    refresher: Refresher,
    stop: threading.Event,
    signals: Sequence[int],
    on_signal: Callable[[int], None],
) -> None:
    """Run the loop in a thread while this (main) thread waits for ``signals``.

    The handlers only note the signal; ``set_wakeup_fd`` wakes a ``select`` here, and
    ``on_signal`` then runs as ordinary code. (Setting an Event inside a handler can
    deadlock: the handler may interrupt this thread while it holds the Event's lock.)
    """
    import select

    received: list[int] = []
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def run() -> None:
        try:
            refresher.run(stop)
        finally:
            os.write(wake_w, b"\0")  # wakes the select below at once

    previous_fd = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    previous = {s: signal.signal(s, lambda num, _frame: received.append(num)) for s in signals}
    loop = threading.Thread(target=run, name="secretsboot-refresh", daemon=True)
    try:
        loop.start()
        while loop.is_alive():
            # the wakeup fd ends the wait at once; the short timeout bounds a missed wake
            # (a signal that lands between the checks below) well inside the 1 s exit budget
            select.select([wake_r], [], [], 0.2)
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
            while received:
                on_signal(received.pop(0))
        loop.join(1.0)
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def _serve_health(flags: RefreshFlags, health: HealthState) -> Callable[[], None]:
    if flags.health_port is None:
        return lambda: None
    from secretsboot.errors import BadInputError
    from secretsboot.fetch.health import serve

    try:
        server = serve(health, flags.health_port, flags.health_host)
    except OSError as exc:
        raise BadInputError(
            f"--health-port {flags.health_port}: cannot listen ({exc.strerror})",
            hint="choose a free port",
        ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()

    # started as soon as a stop is asked for, in parallel with the token revocation
    health.on_stop = lambda: threading.Thread(target=server.shutdown, daemon=True).start()
    return stop


def _stop(stop: threading.Event, health: HealthState) -> None:
    stop.set()
    health.on_stop()


def _first_set(
    refresher: Refresher, timeout: float, propagation_window: float, verbose: bool
) -> int:
    try:
        return refresher.start(
            timeout=timeout, propagation_window=propagation_window, verbose=verbose
        )
    except BaseException:
        refresher.close()  # revoke what the failed start obtained
        raise


def fetch_refreshing(
    config: FetchConfig,
    *,
    out: str,
    refresh: RefreshFlags,
    timeout: float = 60.0,
    propagation_window: float = 30.0,
    owner: int | None = None,
    group: int | None = None,
    verbose: bool = False,
    quiet: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Write the first set under ``out``, then refresh it until SIGTERM; return 0."""
    from secretsboot.fetch.health import HealthState
    from secretsboot.fetch.notify import notifiers
    from secretsboot.fetch.refresh import Refresher
    from secretsboot.fetch.writer import write_secrets

    options = refresh.options(timeout)
    told = notifiers(
        out_dir=out,
        log=_log,
        signal_name=refresh.notify_signal,
        pid_file=refresh.notify_pid_file,
        process=refresh.notify_process,
        command=refresh.notify_exec,
    )

    def publish(cfg: FetchConfig, values: Mapping[str, SecretValue]) -> None:
        write_secrets(cfg, values, out, owner=owner, group=group)

    health = HealthState(options.live_bound)
    stop_health = _serve_health(refresh, health)
    refresher = Refresher(
        config, publish, options, env=env, notifiers=told, health=health, log=_log
    )
    try:
        count = _first_set(refresher, timeout, propagation_window, verbose)
        if not quiet:
            _log(f"wrote {count} secrets to {out}; refreshing every {refresh.interval}")
        stop = threading.Event()
        _loop_until_signalled(
            refresher, stop, (signal.SIGTERM, signal.SIGINT), lambda _num: _stop(stop, health)
        )
    finally:
        stop_health()
    return 0


def run_refreshing(
    command: Sequence[str],
    config: FetchConfig,
    *,
    refresh: RefreshFlags,
    timeout: float = 60.0,
    propagation_window: float = 30.0,
    verbose: bool = False,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``command`` with the secrets in its environment; restart it when they
    change; return its exit status when it exits (or after we pass it SIGTERM)."""
    from secretsboot.errors import BadInputError
    from secretsboot.fetch.health import HealthState
    from secretsboot.fetch.notify import Child
    from secretsboot.fetch.refresh import Refresher
    from secretsboot.fetch.runtime import env_for

    if not command:
        raise BadInputError("no command to run", hint="secretsboot run --refresh 5m -- CMD ARGS...")
    if refresh.notify_signal or refresh.notify_pid_file or refresh.notify_process:
        raise BadInputError(
            "run --refresh restarts its child on change; --notify-signal does not apply",
            hint="use fetch --refresh with --notify-signal for an app that reloads files",
        )
    base = dict(os.environ if env is None else env)
    options = refresh.options(timeout)
    child = Child(command, _log)

    def publish(cfg: FetchConfig, values: Mapping[str, SecretValue]) -> None:
        new_env = {**base, **env_for(cfg, values)}
        if child.started:
            child.restart(new_env)
        else:
            child.start(new_env)

    health = HealthState(options.live_bound)
    stop_health = _serve_health(refresh, health)
    refresher = Refresher(config, publish, options, env=base, health=health, log=_log)
    received: list[int] = []
    stop = threading.Event()
    try:
        _first_set(refresher, timeout, propagation_window, verbose)

        def on_signal(num: int) -> None:
            if num in (signal.SIGTERM, signal.SIGINT):
                received.append(num)
                stop.set()
            else:
                child.send(num)

        def stop_when_child_exits() -> None:
            child.exited.wait()
            stop.set()

        threading.Thread(target=stop_when_child_exits, daemon=True).start()
        _loop_until_signalled(refresher, stop, Child.FORWARDED, on_signal)
    finally:
        stop_health()
    if received and not child.exited.is_set():
        return child.stop(received[0])
    return child.returncode()


def add_arguments(p: argparse.ArgumentParser, command: str) -> None:
    """The refresh options of ``fetch``/``run`` (their one parser is in ``fetch/_cli.py``)."""
    g = p.add_argument_group("refresh (keep running and keep the secrets fresh)")
    g.add_argument(
        "--refresh", metavar="INTERVAL",
        help="after the first write, re-check every INTERVAL (90, 90s, 5m, 1h) and publish "
        "a changed set atomically" + (" and tell the app" if command == "fetch" else
                                       "; the child is restarted with the new values"),
    )  # fmt: skip
    g.add_argument(
        "--health-port", metavar="PORT", type=int,
        help="serve /readyz, /livez and /metrics on 127.0.0.1:PORT",
    )  # fmt: skip
    g.add_argument(
        "--health-host", metavar="ADDR", default="127.0.0.1",
        help="listen on ADDR instead (0.0.0.0 for the kubelet's probes)",
    )  # fmt: skip
    g.add_argument(
        "--stale-after", metavar="INTERVAL",
        help="/livez fails after this long without a good cycle (default 3 x INTERVAL)",
    )  # fmt: skip
    g.add_argument(
        "--remove-deleted", action="store_true",
        help="remove the file of a secret deleted in every source (default: keep it, report)",
    )  # fmt: skip
    if command == "fetch":
        g.add_argument("--notify-signal", metavar="SIG", help="signal to send after a change")
        g.add_argument("--notify-pid-file", metavar="FILE", help="... to the pid in FILE")
        g.add_argument(
            "--notify-process", metavar="NAME",
            help="... to every process named NAME (shareProcessNamespace: true)",
        )  # fmt: skip
        g.add_argument("--notify-exec", metavar="CMD", help="run CMD after each change")


REFRESH_ONLY = ("health_port", "stale_after", "remove_deleted", "notify_signal",
                "notify_pid_file", "notify_process", "notify_exec")  # fmt: skip


def check_without_refresh(args: argparse.Namespace) -> None:
    """A refresh option without ``--refresh`` is bad input (exit 2), not ignored."""
    from secretsboot.errors import BadInputError

    for key in REFRESH_ONLY:
        if getattr(args, key, None):
            flag = "--" + key.replace("_", "-")
            raise BadInputError(f"{flag} needs --refresh INTERVAL")


def from_args(command: str, args: argparse.Namespace, common: Common) -> int:
    """Run ``fetch``/``run`` with ``--refresh``; end the process with its exit code."""
    from secretsboot.errors import BadInputError

    flags = RefreshFlags(
        interval=str(args.refresh),
        remove_deleted=bool(args.remove_deleted),
        health_port=args.health_port,
        health_host=str(args.health_host),
        stale_after=args.stale_after,
        notify_signal=getattr(args, "notify_signal", None),
        notify_pid_file=getattr(args, "notify_pid_file", None),
        notify_process=getattr(args, "notify_process", None),
        notify_exec=getattr(args, "notify_exec", None),
    )
    shared: dict[str, Any] = {
        "timeout": float(common.timeout),
        "propagation_window": float(common.propagation_window),
        "verbose": bool(common.verbose),
    }
    config = common.config()
    if command == "run":
        argv = list(args.command[1:] if args.command[:1] == ["--"] else args.command)
        _exit_now(run_refreshing(argv, config, refresh=flags, **shared))
    out = args.out or os.environ.get("SECRETSBOOT_OUT")
    if not out:
        raise BadInputError("no output folder", hint="pass --out DIR or set SECRETSBOOT_OUT")
    config = config.with_output(dotenv=args.dotenv, json_file=args.json_file)
    code = fetch_refreshing(
        config,
        out=out,
        refresh=flags,
        owner=args.owner,
        group=args.group,
        quiet=bool(common.quiet),
        **shared,
    )
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """End the process at once: the loop has stopped, tokens are revoked, files complete.
    Skipping the interpreter's teardown (collecting every module) keeps SIGTERM -> exit
    under a second on a busy node."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
