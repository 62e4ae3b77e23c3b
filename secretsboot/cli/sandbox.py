"""``secretsboot sandbox up|status|env|down``: the local stack in a background process.

``up`` returns once every component is healthy; ``env`` prints ``export`` lines
for ``eval "$(secretsboot sandbox env)"``; ``down`` stops exactly what ``up``
started.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from secretsboot.cli import OutputFormat, OutputOption, options

DEFAULT_DIR = Path(".secretsboot-sandbox")

DirOption = Annotated[
    Path,
    typer.Option("--dir", "-d", help="The sandbox's state directory (CA, kubeconfig, state.json)."),
]

sandbox_app = typer.Typer(
    help="Run a local stack: HTTPS fakes of Kubernetes and Azure plus a real OpenBao.",
    no_args_is_help=True,
)


@sandbox_app.command("up")
def up(
    state_dir: DirOption = DEFAULT_DIR,
    components: Annotated[
        str,
        typer.Option(
            "--components", "-c", help="Comma-separated: kubernetes, azure, openbao (default all)."
        ),
    ] = "kubernetes,azure,openbao",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for every component.")
    ] = 30.0,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Start the sandbox in the background and wait until it is healthy (exit 5 if not)."""
    from secretsboot.sandbox import background
    from secretsboot.sandbox.stack import check_components

    chosen = check_components(c.strip() for c in components.split(",") if c.strip())
    state, already = background.up(state_dir, chosen, timeout=timeout)
    if output is OutputFormat.JSON:
        typer.echo(
            json.dumps(
                {
                    "already_running": already,
                    "pid": state.get("pid"),
                    "state_dir": state.get("state_dir"),
                    "endpoints": state.get("endpoints"),
                    "startup_seconds": state.get("up_seconds"),
                },
                indent=2,
            )
        )
        return
    if options().quiet:
        return
    if already:
        typer.echo(f"sandbox already running (pid {state.get('pid')}) in {state.get('state_dir')}")
    else:
        typer.echo(
            f"sandbox up in {state.get('up_seconds', 0):.2f} s (pid {state.get('pid')}) "
            f"in {state.get('state_dir')}"
        )
    for name, url in (state.get("endpoints") or {}).items():
        typer.echo(f"  {name:<11} {url}")
    typer.echo(f'use it: eval "$(secretsboot sandbox env --dir {state_dir})"')


@sandbox_app.command("status")
def status(state_dir: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.TABLE) -> None:
    """Show whether the sandbox runs, and each component's endpoint and health."""
    from secretsboot.sandbox import background

    info = background.status(state_dir)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(info, indent=2))
        return
    if not info["running"]:
        typer.echo(f"no sandbox running in {info['state_dir']}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sandbox (pid {info['pid']}) in {info['state_dir']}")
    table.add_column("component")
    table.add_column("endpoint")
    table.add_column("health")
    for row in info["components"]:
        table.add_row(row["name"], row["endpoint"], "healthy" if row["healthy"] else "DOWN")
    Console(width=120).print(table)


@sandbox_app.command("env")
def env(state_dir: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.TABLE) -> None:
    """Print the sandbox's environment as ``export NAME='value'`` lines (or JSON)."""
    from secretsboot.sandbox import background

    if output is OutputFormat.JSON:
        typer.echo(json.dumps(background.environment(state_dir), indent=2))
    else:
        typer.echo(background.env_script(state_dir), nl=False)


@sandbox_app.command("down")
def down(state_dir: DirOption = DEFAULT_DIR, output: OutputOption = OutputFormat.TABLE) -> None:
    """Stop the background sandbox (its serve process and OpenBao) and remove its state."""
    from secretsboot.sandbox import background

    result = background.down(state_dir)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(result))
    elif not options().quiet:
        if result["stopped"]:
            pids = ", ".join(str(p) for p in result["stopped"])
            typer.echo(f"sandbox stopped (pids {pids})")
        else:
            typer.echo(f"no sandbox running in {state_dir.resolve()}")


@sandbox_app.command("fault")
def fault(
    component: Annotated[
        str, typer.Argument(help="kubernetes, entra, imds, arm or keyvault (every vault).")
    ],
    throttle: Annotated[
        float | None, typer.Option("--throttle", help="429 above this many requests/s.")
    ] = None,
    retry_after: Annotated[
        int, typer.Option("--retry-after", help="Retry-After seconds with --throttle.")
    ] = 1,
    fail_next: Annotated[
        int | None, typer.Option("--fail-next", help="Fail the next N requests.")
    ] = None,
    status: Annotated[int, typer.Option("--status", help="HTTP status for --fail-next.")] = 503,
    latency: Annotated[
        float | None, typer.Option("--latency", help="Delay every request (seconds).")
    ] = None,
    stop: Annotated[bool, typer.Option("--stop", help="Refuse connections.")] = False,
    start: Annotated[bool, typer.Option("--start", help="Accept connections again.")] = False,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove throttle/failures/latency.")
    ] = False,
    state_dir: DirOption = DEFAULT_DIR,
) -> None:
    """Inject a fault into a running sandbox component (for failure drills)."""
    from secretsboot.errors import BadInputError
    from secretsboot.sandbox import background

    commands: list[dict[str, object]] = []
    if clear:
        commands.append({"action": "clear"})
    if throttle is not None:
        commands.append({"action": "throttle", "rate": throttle, "retry_after": retry_after})
    if fail_next is not None:
        commands.append({"action": "fail_next", "count": fail_next, "status": status})
    if latency is not None:
        commands.append({"action": "latency", "seconds": latency})
    if stop:
        commands.append({"action": "stop"})
    if start:
        commands.append({"action": "start"})
    if not commands:
        raise BadInputError(
            "no fault given",
            hint="use --throttle, --fail-next, --latency, --stop, --start or --clear",
        )
    for command in commands:
        background.send_fault(state_dir, {"component": component, **command})
        if not options().quiet:
            typer.echo(f"{component}: {command['action']} applied")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
