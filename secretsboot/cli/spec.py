"""``secretsboot spec validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from secretsboot.cli import OutputFormat, OutputOption, options

spec_app = typer.Typer(help="Validate the spec and print its JSON Schema.", no_args_is_help=True)


@spec_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="The spec file (secretsboot.yaml).")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Validate a spec: every problem with file, line, field and the fix. Exit 2 if invalid."""
    from secretsboot.spec import load_spec

    spec = load_spec(file)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({"file": str(file), "valid": True, "services": len(spec.services)}))
    elif not options().quiet:
        typer.echo(f"{file}: valid ({len(spec.services)} services)")


@spec_app.command("schema")
def schema() -> None:
    """Print the spec's JSON Schema, for editors (yaml-language-server)."""
    from secretsboot.spec import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def register(app: typer.Typer) -> None:
    app.add_typer(spec_app, name="spec")
