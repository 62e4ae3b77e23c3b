"""``secretsboot fetch`` and ``secretsboot run`` as seen from the Typer app.

Their command lines are defined once, with argparse, in ``secretsboot.fetch._cli``
(the init container never imports Typer). Here they are listed in ``secretsboot
--help`` and hand every argument, ``--help`` included, to that one definition.
"""

from __future__ import annotations

from collections.abc import Callable

import typer

from secretsboot.fetch._cli import SUMMARY
from secretsboot.fetch._cli import main as fetch_main

_PASS_THROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],  # --help goes to argparse too
}


def register(app: typer.Typer) -> None:
    for command in ("fetch", "run"):
        app.command(
            command,
            help=f"{SUMMARY[command]} See: secretsboot {command} --help.",
            short_help=SUMMARY[command],
            context_settings=_PASS_THROUGH,
            add_help_option=False,
        )(_forward(command))


def _forward(command: str) -> Callable[[typer.Context], None]:
    def forward(ctx: typer.Context) -> None:
        code = fetch_main([command, *ctx.args])
        if code:
            raise typer.Exit(code)

    forward.__name__ = f"_{command}"
    return forward
