"""``secretsboot fetch`` and ``secretsboot run``: the one definition of their command lines.

Standard library only (``argparse``, ~2 ms): the init container must not import
Typer, Rich or pydantic. ``secretsboot/__main__.py`` sends ``fetch``/``run`` here
before it loads the Typer app, and ``secretsboot/cli/fetch.py`` hands the same
arguments here from the Typer app, so both paths parse, help and fail alike.

One CLI language (as the other commands): the folder is ``--out`` (no short flag),
``-o/--output`` is a format, ``-c/--config`` the config, ``-q`` prints errors only.
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
    import argparse
    from typing import Any, NamedTuple

    from secretsboot.contract import FetchConfig
else:
    from secretsboot._records import NamedTuple

DEFAULT_TIMEOUT = 60.0
DEFAULT_PROPAGATION_WINDOW = 30.0
#: Exit codes of an interrupted fetch (128 + the signal, as a shell reports it).
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

SUMMARY = {
    "fetch": "Fetch a pod's secrets into files, published all at once (init container).",
    "run": "Fetch secrets into the environment and exec CMD in place (nothing on disk).",
}
EPILOG = (
    "exit codes: 0 ok, 2 bad input, 3 denied, 4 not found, 5 unavailable or deadline "
    "passed, 6 cannot write (the old set stays), 130 SIGINT, 143 SIGTERM"
)


# ---- the command line -------------------------------------------------------------------


def _formatter(prog: str) -> argparse.HelpFormatter:
    """argparse's own formatter, told the width. Left to itself it asks
    ``shutil.get_terminal_size`` on every ``add_argument``, and importing :mod:`shutil`
    loads bz2 and lzma: 4 ms of a pod's start for a help text nobody reads there."""
    import argparse

    return argparse.HelpFormatter(prog, width=terminal_columns() - 2)


def terminal_columns() -> int:
    """``shutil.get_terminal_size().columns``: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def build_parser(command: str) -> argparse.ArgumentParser:
    """The parser of ``secretsboot fetch`` or ``secretsboot run`` (tests walk its options)."""
    import argparse

    p = argparse.ArgumentParser(
        prog=f"secretsboot {command}",
        description=SUMMARY[command],
        epilog=EPILOG,
        formatter_class=_formatter,
    )
    p.add_argument(
        "-c", "--config", metavar="FILE",
        help="FetchConfig file (default $SECRETSBOOT_CONFIG; else the environment alone: "
        "SECRETSBOOT_SECRETS, AZURE_*, VAULT_*)",
    )  # fmt: skip
    if command == "fetch":
        p.add_argument("--out", metavar="DIR", help="output folder (default $SECRETSBOOT_OUT)")
        p.add_argument(
            "--check", action="store_true",
            help="fetch everything, write nothing: one line per secret (source, identity, "
            "fingerprint or the failure and its fix); exit codes as a fetch",
        )  # fmt: skip
        p.add_argument(
            "-o", "--output", choices=("table", "json"), default="table",
            help="format of the --check report",
        )  # fmt: skip
        p.add_argument("--dotenv", metavar="NAME", help="also write a dotenv file NAME in --out")
        p.add_argument(
            "--json", metavar="NAME", dest="json_file", help="also write a JSON bundle NAME"
        )
        p.add_argument("--owner", metavar="UID", type=int, help="uid owning the files")
        p.add_argument("--group", metavar="GID", type=int, help="gid owning the files")
    p.add_argument(
        "--timeout", metavar="S", type=float, default=DEFAULT_TIMEOUT,
        help="overall deadline in seconds (default %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "--propagation-window", metavar="S", type=float, default=DEFAULT_PROPAGATION_WINDOW,
        help="retry denials typical of a fresh grant (AADSTS70021, Key Vault 403) for S "
        "seconds (default %(default)g)",
    )  # fmt: skip
    p.add_argument(
        "-v", "--verbose", action="store_true", help="log retries and fallbacks (never a value)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print errors only")
    from secretsboot.fetch.sidecar import add_arguments  # --refresh and friends (issue 15)

    add_arguments(p, command)
    if command == "run":
        p.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    return p


def main(argv: Sequence[str]) -> int:
    """Parse ``fetch ...`` / ``run ...`` and run it; return the exit code."""
    if not argv or argv[0] not in SUMMARY:
        print("usage: secretsboot {fetch,run} ...", file=sys.stderr)
        return 2
    try:
        args = build_parser(argv[0]).parse_args(argv[1:])
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        with interruptible():
            from secretsboot.fetch.sidecar import check_without_refresh, from_args

            common = Common.from_args(args)
            if args.refresh:
                return from_args(argv[0], args, common)
            check_without_refresh(args)
            if argv[0] == "run":
                do_run(args.command, common)
            elif args.check:
                return do_check(common, output=args.output)
            else:
                do_fetch(
                    common, out=args.out, dotenv=args.dotenv, json_file=args.json_file,
                    owner=args.owner, group=args.group,
                )  # fmt: skip
    except SecretsbootError as exc:
        report(exc)
        return exit_code_for(exc)
    except (KeyboardInterrupt, Terminated) as exc:
        print("secretsboot: interrupted; the output folder holds the previous set or the "
              "whole new one", file=sys.stderr)  # fmt: skip
        return exit_code_of_interrupt(exc)
    return 0


class Common(NamedTuple):
    """The options every ``fetch``/``run`` command line takes."""

    config_path: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    propagation_window: float = DEFAULT_PROPAGATION_WINDOW
    verbose: bool = False
    quiet: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Common:
        return cls(args.config, args.timeout, args.propagation_window, args.verbose, args.quiet)

    def config(self) -> FetchConfig:
        """The FetchConfig they name (``--config``, else the environment)."""
        from secretsboot.contract import resolve_config

        return resolve_config(self.config_path)

    def fetch_options(self) -> dict[str, Any]:
        """The keywords of ``fetch_secrets``/``check_secrets`` the command line sets."""
        return {
            "timeout": self.timeout,
            "propagation_window": self.propagation_window,
            "log": _log if self.verbose else None,
        }


def report(exc: SecretsbootError) -> None:
    """One ``error:`` line per failing secret."""
    for line in str(exc).splitlines():
        print(f"error: {line}", file=sys.stderr)


# ---- the commands -----------------------------------------------------------------------


def do_fetch(
    common: Common,
    *,
    out: str | None,
    dotenv: str | None = None,
    json_file: str | None = None,
    owner: int | None = None,
    group: int | None = None,
) -> None:
    """Fetch every secret and publish them as one set under ``out``."""
    from secretsboot.fetch.runtime import fetch_secrets
    from secretsboot.fetch.writer import write_secrets

    started = time.monotonic()
    out = out or os.environ.get("SECRETSBOOT_OUT")
    if not out:
        raise BadInputError("no output folder", hint="pass --out DIR or set SECRETSBOOT_OUT")
    config = common.config().with_output(dotenv=dotenv, json_file=json_file)
    values = fetch_secrets(config, **common.fetch_options())
    names = write_secrets(config, values, out, owner=owner, group=group)
    if not common.quiet:
        ms = (time.monotonic() - started) * 1000
        print(
            f"secretsboot: wrote {len(names)} files for {len(values)} secrets to {out} "
            f"in {ms:.0f} ms",
            file=sys.stderr,
        )


def do_check(common: Common, *, output: str = "table") -> int:
    """``fetch --check``: print one line per secret (or JSON); return the fetch's exit code."""
    from secretsboot.fetch.check import check_secrets, exit_code, render

    results = check_secrets(common.config(), **common.fetch_options())
    code = exit_code(results)
    if not common.quiet or code:
        print(render(results, output))
    return code


def do_run(command: Sequence[str], common: Common) -> None:
    """Fetch every secret into the environment and replace this process with ``command``."""
    from secretsboot.fetch.runtime import env_for, fetch_secrets

    command = list(command[1:] if command[:1] == ["--"] else command)
    if not command:
        raise BadInputError(
            "no command to run", hint="secretsboot run --config FILE -- CMD ARGS..."
        )
    config = common.config()
    values = fetch_secrets(config, **common.fetch_options())
    env = dict(os.environ)
    env.update(env_for(config, values))
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - the user's program, by design
    except OSError as exc:
        raise BadInputError(f"cannot run {command[0]}: {exc.strerror}") from None


def _log(message: str) -> None:
    print(f"secretsboot: {message}", file=sys.stderr)


# ---- signals ------------------------------------------------------------------------------


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
