"""``secretsboot demo [--dir DIR] [--keep] [-f/--file FILE]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        workdir: Annotated[
            Path,
            typer.Option(
                "--dir", help="Where the demo writes everything (and the sandbox's state)."
            ),
        ] = Path(".secretsboot-demo"),
        keep: Annotated[
            bool,
            typer.Option("--keep", help="Keep the sandbox running after the demo, until Ctrl-C."),
        ] = False,
        spec: Annotated[
            Path | None,
            typer.Option(
                "--file",
                "-f",
                "--spec",
                help="The spec (default: the Drone Delivery example); outputs are named after it.",
            ),
        ] = None,
    ) -> None:
        """Sandbox up, provision the Drone Delivery example, fetch as each pod, show a denial,
        inject and audit; then stop. Exits non-zero naming the step that failed."""
        from secretsboot.sandbox.demo import Demo

        Demo(workdir, spec_path=spec, keep=keep, echo=typer.echo).run()
