"""``secretsboot sandbox up|status|env|down|secret|token|fault``: the local stack by hand.

``up`` returns once every component is healthy (with ``--spec FILE``, holding what
that spec expects to exist already); ``env`` prints ``export`` lines for
``eval "$(secretsboot sandbox env)"``; ``secret set`` and ``token`` are what an
operator does by hand; ``down`` stops exactly what ``up`` started and removes what
it created.
"""

from __future__ import annotations

import json
import shlex
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from secretsboot.cli import OutputFormat, OutputOption, options


class ShellFormat(StrEnum):
    SHELL = "shell"
    TABLE = "table"
    JSON = "json"


ShellOutputOption = Annotated[
    ShellFormat,
    typer.Option("--output", "-o", help="shell: export lines for eval (default); table; json."),
]
SECRET_NAMES = frozenset({"AZURE_CLIENT_SECRET", "VAULT_TOKEN"})

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
    spec_file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            "-f",
            "--spec",
            help="A spec: also create what it expects to exist already (resource group, "
            "Key Vaults, Vault mounts, namespaces, its kube context and OIDC issuer).",
        ),
    ] = None,
    components: Annotated[
        str,
        typer.Option(
            "--components", help="Comma-separated: kubernetes, azure, openbao (default all)."
        ),
    ] = "kubernetes,azure,openbao",
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for every component.")
    ] = 30.0,
    propagation: Annotated[
        str,
        typer.Option(
            "--propagation",
            metavar="LOW-HIGH",
            help="Each role assignment, access policy and federated credential takes effect "
            "after a random delay in this range of seconds, as in Azure; 0 turns it off.",
        ),
    ] = "1-8",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Start the sandbox in the background and wait until it is healthy (exit 5 if not)."""
    from secretsboot.sandbox import background
    from secretsboot.sandbox.stack import check_components, parse_propagation

    chosen = check_components(c.strip() for c in components.split(",") if c.strip())
    if spec_file is not None:
        from secretsboot.spec import load_spec

        load_spec(spec_file)  # a bad spec fails here, naming file and field
    parse_propagation(propagation)  # a bad range fails here, before anything starts
    state, already = background.up(
        state_dir, chosen, spec=spec_file, timeout=timeout, propagation=propagation
    )
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
    from secretsboot.errors import ExitCode
    from secretsboot.sandbox import background

    info = background.status(state_dir)
    if output is OutputFormat.JSON:
        typer.echo(json.dumps(info, indent=2))
        if not info["running"]:
            raise typer.Exit(int(ExitCode.UNAVAILABLE))
        return
    if not info["running"]:
        typer.echo(f"no sandbox running in {info['state_dir']}", err=True)
        raise typer.Exit(int(ExitCode.UNAVAILABLE))
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sandbox (pid {info['pid']}) in {info['state_dir']}")
    table.add_column("component")
    table.add_column("endpoint")
    table.add_column("health")
    for row in info["components"]:
        table.add_row(row["name"], row["endpoint"], "healthy" if row["healthy"] else "DOWN")
    Console(width=120).print(table)


def _print_env(values: dict[str, str], output: ShellFormat, unset: tuple[str, ...] = ()) -> None:
    if output is ShellFormat.JSON:
        typer.echo(json.dumps(values, indent=2))
    elif output is ShellFormat.TABLE:
        from rich.console import Console
        from rich.table import Table

        table = Table()
        table.add_column("variable")
        table.add_column("value")
        for name, value in values.items():
            shown = "(hidden: use -o shell or -o json)" if name in SECRET_NAMES else value
            table.add_row(name, shown)
        Console(width=160).print(table)
    else:
        if unset:
            typer.echo("unset " + " ".join(unset))
        typer.echo("".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items()), nl=False)


@sandbox_app.command("env")
def env(state_dir: DirOption = DEFAULT_DIR, output: ShellOutputOption = ShellFormat.SHELL) -> None:
    """Print what an operator needs: an Azure login (client id and secret) that ARM, Key
    Vault and Entra accept, Vault's address, CA and token, the kubeconfig, and the
    endpoint overrides (ARM, authority host, one URL per Key Vault)."""
    from secretsboot.sandbox import background

    _print_env(background.environment(state_dir), output)


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
        if result["removed"]:
            typer.echo(f"removed {', '.join(result['removed'])}")
        if result["kept"]:
            typer.echo(f"kept (not created by the sandbox): {', '.join(result['kept'])}")


@sandbox_app.command("fault")
def fault(
    component: Annotated[
        str,
        typer.Argument(help="kubernetes, entra, imds, arm, keyvault (every vault) or openbao."),
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
    firewall: Annotated[
        str | None,
        typer.Option(
            "--firewall",
            metavar="closed|open",
            help="keyvault only: closed answers every caller 403 ForbiddenByFirewall.",
        ),
    ] = None,
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
    if firewall is not None:
        commands.append({"action": "firewall", "closed": firewall == "closed"})
    if not commands:
        raise BadInputError(
            "no fault given",
            hint="use --throttle, --fail-next, --latency, --stop, --start, --firewall or --clear",
        )
    for command in commands:
        background.send_fault(state_dir, {"component": component, **command})
        if not options().quiet:
            typer.echo(f"{component}: {command['action']} applied")


secret_app = typer.Typer(help="Write secrets into the sandbox's stores.", no_args_is_help=True)
sandbox_app.add_typer(secret_app, name="secret")


@secret_app.command("set")
def secret_set(
    source: Annotated[
        str,
        typer.Argument(
            metavar="SOURCE-URI",
            help="keyvault://V/NAME, vault://MOUNT/PATH#KEY or k8s://SECRET#KEY.",
        ),
    ],
    value: Annotated[
        str | None, typer.Argument(help="The value (read from stdin when omitted; never echoed).")
    ] = None,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="k8s:// only (default: the context's).")
    ] = None,
    state_dir: DirOption = DEFAULT_DIR,
) -> None:
    """Set a secret through the store's own API, as an operator would (the value never printed)."""
    from secretsboot.errors import BadInputError
    from secretsboot.sandbox import background, operate
    from secretsboot.secret import SecretValue

    if value is None:
        raw = sys.stdin.read()
        value = raw[:-1] if raw.endswith("\n") else raw
    if not value:
        raise BadInputError("the value is empty", hint="pass VALUE or pipe it on stdin")
    where = operate.set_secret(
        background.environment(state_dir), source, SecretValue(value), namespace=namespace
    )
    if not options().quiet:
        typer.echo(f"set {where}")


@sandbox_app.command("token")
def token(
    namespace: Annotated[str, typer.Argument(help="The pod's namespace.")],
    service_account: Annotated[str, typer.Argument(help="The pod's service account.")],
    audience: Annotated[
        list[str] | None,
        typer.Option(
            "--audience", help="An extra projected token with this audience (e.g. vault)."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Where the tokens go (default: in the state dir).")
    ] = None,
    state_dir: DirOption = DEFAULT_DIR,
    output: ShellOutputOption = ShellFormat.SHELL,
) -> None:
    """Mint a pod's projected tokens and print the environment that pod would have
    (as the workload-identity webhook sets it), so `secretsboot fetch` runs as that pod:
    ( eval "$(secretsboot sandbox token NS SA)"; secretsboot fetch -c fetch.yaml --out out )."""
    from secretsboot.sandbox import background, operate

    folder = out or state_dir / background.PODS_DIR / namespace / service_account
    pod_env = operate.pod_token(
        background.environment(state_dir),
        namespace,
        service_account,
        audiences=audience or (),
        out=folder,
    )
    _print_env(pod_env, output, unset=operate.OPERATOR_ONLY)


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
