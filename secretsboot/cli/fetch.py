"""``secretsboot fetch`` and ``secretsboot run``: the init-container runtime.

The console script dispatches both to ``secretsboot.fetch._cli`` before Typer loads
(fast start in an init container); these Typer commands are the same commands as
seen from the app (``secretsboot --help``, ``secretsboot.cli.main([...])``) and call
the same functions.
"""

from __future__ import annotations

from typing import Annotated

import typer

from secretsboot.fetch._cli import (
    DEFAULT_PROPAGATION_WINDOW,
    DEFAULT_TIMEOUT,
    do_fetch,
    do_run,
)

ConfigOpt = Annotated[
    str | None,
    typer.Option("--config", "-c", help="FetchConfig file (default $SECRETSBOOT_CONFIG)."),
]
TimeoutOpt = Annotated[float, typer.Option(help="Overall deadline in seconds.")]
WindowOpt = Annotated[
    float,
    typer.Option(
        "--propagation-window",
        help="Seconds to retry denials typical of a fresh grant (AADSTS70021, Key Vault 403).",
    ),
]


def register(app: typer.Typer) -> None:
    @app.command("fetch")
    def _fetch(
        config: ConfigOpt = None,
        out: Annotated[
            str | None,
            typer.Option("--out", "-o", help="Output folder (default $SECRETSBOOT_OUT)."),
        ] = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT,
        propagation_window: WindowOpt = DEFAULT_PROPAGATION_WINDOW,
        dotenv: Annotated[
            str | None, typer.Option(help="Also write a dotenv file of this name in --out.")
        ] = None,
        json_file: Annotated[
            str | None, typer.Option("--json", help="Also write a JSON bundle of this name.")
        ] = None,
        owner: Annotated[int | None, typer.Option(help="uid owning the files.")] = None,
        group: Annotated[int | None, typer.Option(help="gid owning the files.")] = None,
    ) -> None:
        """Fetch a pod's secrets into files, all or nothing (init container)."""
        from secretsboot.cli import options

        do_fetch(
            config_path=config,
            out=out,
            timeout=timeout,
            propagation_window=propagation_window,
            dotenv=dotenv,
            json_file=json_file,
            owner=owner,
            group=group,
            verbose=options().verbose,
            quiet=options().quiet,
        )

    @app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def _run(
        command: Annotated[list[str], typer.Argument(help="-- CMD ARGS...")],
        config: ConfigOpt = None,
        timeout: TimeoutOpt = DEFAULT_TIMEOUT,
        propagation_window: WindowOpt = DEFAULT_PROPAGATION_WINDOW,
    ) -> None:
        """Fetch secrets into the environment and exec CMD in place (nothing on disk)."""
        from secretsboot.cli import options

        do_run(
            command,
            config_path=config,
            timeout=timeout,
            propagation_window=propagation_window,
            verbose=options().verbose,
        )
