"""``secretsboot fetch`` and ``secretsboot run`` without Typer: the init container's fast path.

``secretsboot/__main__.py`` sends ``fetch``/``run`` here before it loads the Typer
app (``import typer`` alone costs ~50 ms). ``secretsboot/cli/fetch.py`` registers
the same commands in the Typer app (for ``secretsboot --help``) and calls the same
functions, so both paths behave alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator, Sequence

from secretsboot.errors import BadInputError, SecretsbootError, exit_code_for

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_TIMEOUT = 60.0
DEFAULT_PROPAGATION_WINDOW = 30.0


def do_fetch(
    *,
    config_path: str | None,
    out: str | None,
    timeout: float = DEFAULT_TIMEOUT,
    propagation_window: float = DEFAULT_PROPAGATION_WINDOW,
    dotenv: str | None = None,
    json_file: str | None = None,
    owner: int | None = None,
    group: int | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> None:
    """Fetch every secret and write them atomically under ``out``."""
    from secretsboot.contract import resolve_config
    from secretsboot.fetch.runtime import fetch_secrets
    from secretsboot.fetch.writer import write_secrets

    started = time.monotonic()
    out = out or os.environ.get("SECRETSBOOT_OUT")
    if not out:
        raise BadInputError("no output folder", hint="pass --out DIR or set SECRETSBOOT_OUT")
    config = resolve_config(config_path).with_output(dotenv=dotenv, json_file=json_file)
    values = fetch_secrets(
        config,
        timeout=timeout,
        propagation_window=propagation_window,
        log=_log if verbose else None,
    )
    names = write_secrets(config, values, out, owner=owner, group=group)
    if not quiet:
        ms = (time.monotonic() - started) * 1000
        print(
            f"secretsboot: wrote {len(names)} files for {len(values)} secrets to {out} "
            f"in {ms:.0f} ms",
            file=sys.stderr,
        )


def do_run(
    command: Sequence[str],
    *,
    config_path: str | None,
    timeout: float = DEFAULT_TIMEOUT,
    propagation_window: float = DEFAULT_PROPAGATION_WINDOW,
    verbose: bool = False,
) -> None:
    """Fetch every secret into the environment and replace this process with ``command``."""
    from secretsboot.contract import resolve_config
    from secretsboot.fetch.runtime import env_for, fetch_secrets

    if not command:
        raise BadInputError(
            "no command to run", hint="secretsboot run --config FILE -- CMD ARGS..."
        )
    config = resolve_config(config_path)
    values = fetch_secrets(
        config,
        timeout=timeout,
        propagation_window=propagation_window,
        log=_log if verbose else None,
    )
    env = dict(os.environ)
    env.update(env_for(config, values))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], list(command), env)  # noqa: S606 - the user's program, by design
    except OSError as exc:
        raise BadInputError(f"cannot run {command[0]}: {exc.strerror}") from None


def _log(message: str) -> None:
    print(f"secretsboot: {message}", file=sys.stderr)


USAGE = {
    "fetch": "usage: secretsboot fetch [--config FILE] [--out DIR] [--timeout S] "
    "[--propagation-window S] [--dotenv NAME] [--json NAME] [--owner UID] [--group GID] "
    "[-v] [-q]",
    "run": "usage: secretsboot run [--config FILE] [--timeout S] [--propagation-window S] "
    "[-v] -- CMD ARGS...",
}
HELP = """
Fetch a pod's secrets{what}. Options:
  -c, --config FILE           FetchConfig file (default $SECRETSBOOT_CONFIG; else the
                              environment: SECRETSBOOT_SECRETS, AZURE_*, VAULT_*)
  -o, --out DIR               output folder (default $SECRETSBOOT_OUT)            [fetch]
      --timeout S             overall deadline in seconds (default 60)
      --propagation-window S  retry denials typical of a fresh grant (AADSTS70021,
                              Key Vault 403) for S seconds (default 30)
      --dotenv NAME           also write a dotenv file NAME in --out              [fetch]
      --json NAME             also write a JSON bundle NAME in --out              [fetch]
      --owner UID, --group GID  owner of the files                                [fetch]
  -v, --verbose               log retries and fallbacks (never a value)
  -q, --quiet                 print errors only                                   [fetch]
"""
_VALUED = {
    "--config": "config",
    "-c": "config",
    "--out": "out",
    "-o": "out",
    "--timeout": "timeout",
    "--propagation-window": "propagation_window",
    "--dotenv": "dotenv",
    "--json": "json_file",
    "--owner": "owner",
    "--group": "group",
}
_FLAGS = {"--verbose": "verbose", "-v": "verbose", "--quiet": "quiet", "-q": "quiet"}
_FETCH_ONLY = {"out", "dotenv", "json_file", "owner", "group", "quiet"}
_NUMBERS = {"timeout": float, "propagation_window": float, "owner": int, "group": int}


#: Exit codes of an interrupted fetch (128 + the signal, as a shell reports it).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Terminated(BaseException):
    """SIGTERM arrived (kubelet stops the pod): unwind, so a publish in progress rolls back."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` (SIGINT is already ``KeyboardInterrupt``) while
    the block runs, so ``finally`` clauses and the publish's rollback run on both."""
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_code_of_interrupt(exc: BaseException) -> int:
    """130 for SIGINT (``KeyboardInterrupt``), 143 for SIGTERM (:class:`Terminated`)."""
    return EXIT_SIGTERM if isinstance(exc, Terminated) else EXIT_SIGINT


class UsageError(BadInputError):
    """A bad command line (exit 2), printed with the usage line."""


def parse(argv: Sequence[str]) -> tuple[str, dict[str, Any], list[str]]:
    """``(command, options, command to exec)`` from ``fetch ...`` / ``run ...``.

    A small parser instead of argparse, which costs ~6 ms of the start-up budget.
    """
    if not argv or argv[0] not in USAGE:
        raise UsageError("expected 'fetch' or 'run'")
    command, rest = argv[0], list(argv[1:])
    opts: dict[str, Any] = {
        "config": None, "out": None, "timeout": DEFAULT_TIMEOUT,
        "propagation_window": DEFAULT_PROPAGATION_WINDOW, "dotenv": None, "json_file": None,
        "owner": None, "group": None, "verbose": False, "quiet": False,
    }  # fmt: skip
    tail: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        i += 1
        if arg in ("-h", "--help"):
            opts["help"] = True
            continue
        if arg == "--" or (command == "run" and not arg.startswith("-")):
            tail = rest[i:] if arg == "--" else rest[i - 1 :]
            break
        name, eq, inline = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _FLAGS and not eq:
            key = _FLAGS[name]
            value: Any = True
        elif name in _VALUED:
            key = _VALUED[name]
            if eq:
                value = inline
            elif i < len(rest):
                value = rest[i]
                i += 1
            else:
                raise UsageError(f"{name} needs a value")
            if key in _NUMBERS:
                try:
                    value = _NUMBERS[key](value)
                except ValueError:
                    raise UsageError(f"{name}: '{value}' is not a number") from None
        else:
            raise UsageError(f"unknown option {arg}")
        if command == "run" and key in _FETCH_ONLY:
            raise UsageError(f"{name} is an option of 'fetch', not 'run'")
        opts[key] = value
    return command, opts, tail


def main(argv: Sequence[str]) -> int:
    """Parse ``fetch ...`` / ``run ...`` and run it; return the exit code."""
    try:
        with interruptible():
            return _main(argv)
    except (KeyboardInterrupt, Terminated) as exc:
        print(
            "secretsboot: interrupted; the output folder holds the previous set or the whole "
            "new one",
            file=sys.stderr,
        )
        return exit_code_of_interrupt(exc)


def _main(argv: Sequence[str]) -> int:
    try:
        command, opts, cmd = parse(argv)
        if opts.pop("help", False):
            what = " into files" if command == "fetch" else " into the environment, then exec CMD"
            print(USAGE[command] + "\n" + HELP.format(what=what))
            return 0
        common = {
            "config_path": opts["config"],
            "timeout": opts["timeout"],
            "propagation_window": opts["propagation_window"],
            "verbose": opts["verbose"],
        }
        if command == "fetch":
            do_fetch(
                out=opts["out"],
                dotenv=opts["dotenv"],
                json_file=opts["json_file"],
                owner=opts["owner"],
                group=opts["group"],
                quiet=opts["quiet"],
                **common,
            )
        else:
            do_run(cmd, **common)
    except UsageError as exc:
        cmd_name = argv[0] if argv and argv[0] in USAGE else "fetch"
        print(USAGE[cmd_name], file=sys.stderr)
        report(exc)
        return exit_code_for(exc)
    except SecretsbootError as exc:
        report(exc)
        return exit_code_for(exc)
    return 0


def report(exc: SecretsbootError) -> None:
    """One ``error:`` line per failing secret."""
    for line in str(exc).splitlines():
        print(f"error: {line}", file=sys.stderr)
