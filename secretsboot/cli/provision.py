"""``secretsboot plan`` and ``secretsboot provision``.

``plan`` exits 0 when every system matches the spec, 10 when there are changes
(``PlanChangesPending``), another code on error. ``provision`` checks every
system first and writes nothing if one check fails; ``--dry-run`` is ``plan``.

Connection settings (the environment overrides the spec):

- Azure: ``SECRETSBOOT_ARM_ENDPOINT``, ``SECRETSBOOT_SUBSCRIPTION_ID``,
  ``AZURE_TENANT_ID``, ``AZURE_AUTHORITY_HOST``, ``AZURE_CLIENT_ID`` +
  ``AZURE_CLIENT_SECRET`` (or ``AZURE_FEDERATED_TOKEN_FILE``; else the default
  credential chain), ``REQUESTS_CA_BUNDLE``.
- Kubernetes: ``KUBECONFIG``, ``SECRETSBOOT_KUBE_CONTEXT`` (else ``kubernetes.context``).
- Vault: ``VAULT_ADDR``, ``VAULT_TOKEN``, ``VAULT_CACERT``, ``VAULT_NAMESPACE``.
- Key Vault data plane (``--sync-fallbacks``): ``SECRETSBOOT_KEYVAULT_<NAME>``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secretsboot.cli import OutputFormat, OutputOption, options

if TYPE_CHECKING:
    from secretsboot.provision.apply import Provisioner
    from secretsboot.provision.model import Plan

SpecOption = Annotated[Path, typer.Option("--file", "-f", help="The spec file (secretsboot.yaml).")]
OnlyOption = Annotated[
    str | None, typer.Option("--only", help="Plan or provision one service only.")
]
PruneOption = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Delete objects this spec manages that are no longer in it (never namespaces).",
    ),
]
SyncOption = Annotated[
    bool,
    typer.Option(
        "--sync-fallbacks",
        help="Refresh fallback Secrets from their primary source (plans show fingerprints).",
    ),
]


def _connect(
    file: Path, only: str | None, prune: bool, sync: bool, configmaps: bool = True
) -> Provisioner:
    from secretsboot.provision.apply import Options, Provisioner
    from secretsboot.spec import load_spec

    spec = load_spec(file)
    if only is not None:
        spec.service(only)  # a SpecError naming the known services
    opts = Options(
        only=only,
        prune=prune,
        sync_fallbacks=sync,
        configmaps=configmaps,
        progress=not options().quiet,
    )
    return Provisioner.connect(spec, opts)


def _print_plan(plan: Plan, output: OutputFormat) -> None:
    from secretsboot.provision.render import render_json, render_text

    if output is OutputFormat.JSON:
        typer.echo(render_json(plan))
    elif not options().quiet or plan.has_changes:
        typer.echo(render_text(plan), nl=False)


def plan_command(
    file: SpecOption = Path("secretsboot.yaml"),
    output: OutputOption = OutputFormat.TABLE,
    prune: PruneOption = False,
    only: OnlyOption = None,
    sync_fallbacks: SyncOption = False,
) -> None:
    """Show what provision would change: add, change (field by field), destroy or release
    (--prune), after checking every reference the spec makes.

    Exit 0: nothing to do; 10: changes pending; another code when a check failed (a
    missing Key Vault, mount or issuer...: the first is named with its fix).
    """
    with _connect(file, only, prune, sync_fallbacks) as prov:
        plan = prov.plan()
    _finish_plan(plan, output)


def _finish_plan(plan: Plan, output: OutputFormat) -> None:
    """Print the plan; a failed check is an error; pending changes are exit 10, quietly."""
    from secretsboot.errors import ExitCode
    from secretsboot.provision.apply import refusal

    _print_plan(plan, output)
    refused = refusal(plan)
    if refused is not None:
        raise refused
    if plan.has_changes:
        raise typer.Exit(int(ExitCode.CHANGES_PENDING))


def provision_command(
    file: SpecOption = Path("secretsboot.yaml"),
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only; write nothing (same as `plan`).")
    ] = False,
    only: OnlyOption = None,
    prune: PruneOption = False,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Apply without asking for confirmation.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Write each service's fetch.yaml (and printed-only snippets) to DIR "
            "instead of creating the secretsboot-<service> ConfigMaps.",
        ),
    ] = None,
    sync_fallbacks: SyncOption = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create or update identities, grants, service accounts, RBAC and Vault roles."""
    import sys

    with _connect(file, only, prune, sync_fallbacks, configmaps=out is None) as prov:
        plan = prov.plan()
        if out is not None and not dry_run:
            _write_out(prov, out)
        if dry_run:
            _finish_plan(plan, output)
            return
        if not plan.has_changes:
            _print_plan(plan, output)
            return
        if output is OutputFormat.TABLE:
            _print_plan(plan, output)
        if not yes:
            if not sys.stdin.isatty():
                from secretsboot.errors import BadInputError

                raise BadInputError(
                    "refusing to apply without confirmation", hint="pass --yes (or run plan)"
                )
            typer.confirm("Apply these changes?", abort=True, err=True)
        result = prov.apply(plan)
    if output is OutputFormat.JSON:
        import json

        typer.echo(
            json.dumps(
                {
                    "applied": [c.to_json() for c in result.applied],
                    "writes": result.writes,
                    "seconds": round(result.seconds, 3),
                },
                indent=2,
            )
        )
    elif not options().quiet:
        typer.echo(f"Applied {result.writes} change(s) in {result.seconds:.1f}s.")


def _write_out(prov: Provisioner, out: Path) -> None:
    from secretsboot.errors import WriteError
    from secretsboot.provision.desired import build

    state = build(prov.spec, identities={}, only=prov.options.only, configmaps=False)
    try:
        for service, text in state.fetch_configs.items():
            d = out / service
            d.mkdir(parents=True, exist_ok=True)
            (d / "fetch.yaml").write_text(text, encoding="utf-8")
        for note in state.notes:
            if note.detail and note.detail.lstrip().startswith("{"):
                d = out / note.service
                d.mkdir(parents=True, exist_ok=True)
                (d / "volumes.json").write_text(note.detail + "\n", encoding="utf-8")
    except OSError as exc:
        raise WriteError(f"cannot write to {out}: {exc.strerror}", hint="check --out") from None


_ENV_HELP = (
    "Connection (the environment overrides the spec): SECRETSBOOT_ARM_ENDPOINT, "
    "SECRETSBOOT_SUBSCRIPTION_ID, AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, AZURE_CLIENT_ID + "
    "AZURE_CLIENT_SECRET (or AZURE_FEDERATED_TOKEN_FILE; else DefaultAzureCredential), "
    "REQUESTS_CA_BUNDLE; KUBECONFIG, SECRETSBOOT_KUBE_CONTEXT; VAULT_ADDR, VAULT_TOKEN, "
    "VAULT_CACERT, VAULT_NAMESPACE; SECRETSBOOT_KEYVAULT_<NAME> (--sync-fallbacks)."
)


def register(app: typer.Typer) -> None:
    app.command("plan", epilog=_ENV_HELP)(plan_command)
    app.command("provision", epilog=_ENV_HELP)(provision_command)
