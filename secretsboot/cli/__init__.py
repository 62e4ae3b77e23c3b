"""The ``secretsboot`` command line.

Each command module parses its flags, calls the library and lets errors
propagate; :func:`main` maps every error to one line on stderr and the exit
code of :mod:`secretsboot.errors`. Command modules import their library lazily,
inside the command, so ``secretsboot fetch`` in an init container loads only
what the fetch needs.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer

from secretsboot import __version__
from secretsboot.errors import ExitCode, SecretsbootError, exit_code_for

log = logging.getLogger("secretsboot")


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


@dataclass
class GlobalOptions:
    verbose: bool = False
    quiet: bool = False


OutputOption = Annotated[
    OutputFormat,
    typer.Option("--output", "-o", help="Output format: a table for people, JSON for machines."),
]

HELP_OPTIONS = ["-h", "--help"]

app = typer.Typer(
    name="secretsboot",
    help="Secrets-and-identity bootstrap for microservices on Kubernetes (AKS first).\n\n"
    "Provision identities and grants from one spec, fetch a pod's secrets at start-up, "
    "and audit how every service gets its secrets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_OPTIONS},
)

_options = GlobalOptions()


def options() -> GlobalOptions:
    """The global flags of this invocation."""
    return _options


def _version(value: bool) -> None:
    if value:
        typer.echo(f"secretsboot {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log detail and show tracebacks.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    _options.verbose = verbose
    _options.quiet = quiet
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def _register() -> None:
    # Imported here, not at module top, so each module can import `app` helpers from us.
    from secretsboot.cli import audit, demo, fetch, inject, provision, sandbox, spec

    for module in (spec, provision, fetch, audit, inject, sandbox, demo):
        module.register(app)


_register()


def command() -> Any:
    """The whole command tree as Click sees it, in the house's one CLI language.

    Typer shows a ``<bool>`` metavar beside plain flags; a flag takes no value, so it
    shows none. The cross-command rules (``-f/--file`` is the spec, ``-o/--output`` the
    format, one meaning per short flag) are checked by tests/test_cli_language.py.
    """
    from typer._click import Context  # Typer's vendored Click: no public alternative

    cmd = typer.main.get_command(app)
    for sub in _walk(cmd):
        # -h/--help is made (and cached) per command on first use: make it now, to fix it too
        help_option = sub.get_help_option(Context(sub, help_option_names=HELP_OPTIONS))
        for param in [*sub.params, help_option]:
            if getattr(param, "is_flag", False):
                param.metavar = ""
    return cmd


def _walk(cmd: Any) -> Iterator[Any]:
    """A command and every subcommand (Click's tree, as Typer builds it)."""
    yield cmd
    for sub in (getattr(cmd, "commands", None) or {}).values():
        yield from _walk(sub)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (see README "Exit codes").

    Usage errors are Typer's own (exit 2, with the usage line); our errors print
    one line, ``error: ...``, and their documented code.
    """
    args = sys.argv[1:] if argv is None else argv
    try:
        command().main(args=args, prog_name="secretsboot", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except SecretsbootError as exc:
        if _options.verbose:
            log.exception("failed")
        typer.echo(f"error: {exc}", err=True)
        return exit_code_for(exc)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so, with the traceback only when asked
        if _options.verbose:
            log.exception("internal error")
        typer.echo(
            f"internal error: {type(exc).__name__} (run with --verbose for details and report it)",
            err=True,
        )
        return int(ExitCode.INTERNAL)
    return 0
