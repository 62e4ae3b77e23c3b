"""``secretsboot spec validate|schema``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from secretsboot.cli import OutputFormat, OutputOption, options

spec_app = typer.Typer(help="Validate the spec and print its JSON Schema.", no_args_is_help=True)

DEFAULT_SPEC = Path("secretsboot.yaml")


@spec_app.command("validate")
def validate(
    path: Annotated[
        Path | None,
        typer.Argument(
            help="The spec file (default secretsboot.yaml; or -f/--file).", metavar="FILE"
        ),
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="The spec file (secretsboot.yaml).")
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Validate a spec: every problem at once, each with file, line, field and the fix.

    Exit 0 when valid, 2 when not (with -o json the problems are printed as JSON).
    """
    from secretsboot.errors import BadInputError, SpecError, SpecErrors
    from secretsboot.spec import load_spec

    if path is not None and file is not None and path != file:
        raise BadInputError(f"two spec files given ({path} and {file})", hint="pass one")
    chosen = path or file or DEFAULT_SPEC
    try:
        spec = load_spec(chosen)
    except SpecError as exc:
        if output is not OutputFormat.JSON:
            raise
        errors = exc.errors if isinstance(exc, SpecErrors) else [exc]
        doc: dict[str, Any] = {
            "file": str(chosen),
            "valid": False,
            "errors": [
                {
                    "file": e.file,
                    "line": e.line,
                    "field": e.field,
                    "problem": e.message,
                    "fix": e.hint,
                }
                for e in errors
            ],
        }
        typer.echo(json.dumps(doc, indent=2))
        raise typer.Exit(int(exc.exit_code)) from None
    if output is OutputFormat.JSON:
        typer.echo(json.dumps({"file": str(chosen), "valid": True, "services": len(spec.services)}))
    elif not options().quiet:
        typer.echo(f"{chosen}: valid ({len(spec.services)} services)")


@spec_app.command("schema")
def schema() -> None:
    """Print the spec's JSON Schema, for editors (yaml-language-server)."""
    from secretsboot.spec import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, sort_keys=True))


def register(app: typer.Typer) -> None:
    app.add_typer(spec_app, name="spec")
