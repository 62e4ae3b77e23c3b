"""``secretsboot sandbox``: not built yet (exits 7, never a fake success)."""

from __future__ import annotations

from typing import Annotated

import typer

from secretsboot.cli._stub import not_built


def register(app: typer.Typer) -> None:
    @app.command(
        "sandbox", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )
    def _cmd(args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None) -> None:
        """Not built yet."""
        raise not_built("sandbox")
