"""``secretsboot plan`` and ``secretsboot provision``.

``plan`` exits 0 when every system matches the spec, 10 when there are changes
(a summary line, not an error), another code when a check failed. ``provision``
checks every reference and permission first and writes nothing if one fails;
``--dry-run`` is ``plan``; ``--verify`` then fetches as each service (the two
faces are composed here: provision acts as the service, fetch fetches).

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

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secretsboot.cli import OutputFormat, OutputOption, options

if TYPE_CHECKING:
    from secretsboot.provision.apply import ApplyResult, Provisioner
    from secretsboot.provision.model import Plan

SpecOption = Annotated[Path, typer.Option("--file", "-f", help="The spec file (secretsboot.yaml).")]
OnlyOption = Annotated[
    str | None, typer.Option("--only", help="Plan or provision one service only.")
]
PruneOption = Annotated[
    bool,
    typer.Option(
        "--prune",
        help="Delete what secretsboot created that the spec no longer names; release "
        "(unmark, keep) what it adopted. Never namespaces.",
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
        typer.echo(render_json(plan))  # asked for by name: printed even with -q
    elif not options().quiet:  # -q: errors only (the exit code says whether changes are pending)
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
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="After the apply, fetch every service's secrets as the service would "
            "(tokens from TokenRequest; nothing written) and report which are effective now.",
        ),
    ] = False,
    verify_timeout: Annotated[
        float,
        typer.Option(
            "--verify-timeout",
            help="Seconds --verify waits for new grants to propagate.",
            min=1.0,
        ),
    ] = 120.0,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create or update identities, grants, service accounts, RBAC and Vault roles.

    Every reference is checked first; if one fails nothing is written anywhere.
    """
    with _connect(file, only, prune, sync_fallbacks, configmaps=out is None) as prov:
        plan = prov.plan()
        if dry_run:
            _finish_plan(plan, output)
            return
        _refuse_failed_checks(plan, output)
        if out is not None:
            _write_out(prov, out)
        result = _apply(prov, plan, output, yes)
        checked = _verify(prov, verify_timeout) if verify else None
    _report(result, checked, output)


def _refuse_failed_checks(plan: Plan, output: OutputFormat) -> None:
    from secretsboot.provision.apply import refusal

    refused = refusal(plan)
    if refused is not None:
        _print_plan(plan, output)
        raise refused


def _apply(prov: Provisioner, plan: Plan, output: OutputFormat, yes: bool) -> ApplyResult | None:
    """Apply the plan (after confirmation); None when there was nothing to do."""
    import sys

    if not plan.has_changes:
        _print_plan(plan, output)
        return None
    if output is OutputFormat.TABLE:
        _print_plan(plan, output)
    if not yes:
        if not sys.stdin.isatty():
            from secretsboot.errors import BadInputError

            raise BadInputError(
                "refusing to apply without confirmation", hint="pass --yes (or run plan)"
            )
        typer.confirm("Apply these changes?", abort=True, err=True)
    return prov.apply(plan)


def _report(
    result: ApplyResult | None, checked: list[Verified] | None, output: OutputFormat
) -> None:
    import json

    from secretsboot.errors import UnavailableError

    failed = [v for v in checked or [] if v.effective is False]
    if output is OutputFormat.JSON:
        doc: dict[str, object] = {
            "applied": [c.to_json() for c in result.applied] if result else [],
            "writes": result.writes if result else 0,
            "seconds": round(result.seconds, 3) if result else 0.0,
        }
        if checked is not None:
            doc["verify"] = [v.to_json() for v in checked]
        typer.echo(json.dumps(doc, indent=2))
    elif not options().quiet:
        if result is not None:
            typer.echo(f"Applied {result.writes} change(s) in {result.seconds:.1f}s.")
        for v in checked or []:
            typer.echo(v.line())
    if failed:
        raise UnavailableError(
            f"provision --verify: {len(failed)} service(s) not effective: "
            + ", ".join(v.service for v in failed),
            hint="see each service's line above for the failure and its fix",
        )


@dataclass
class Verified:
    """One service as ``--verify`` found it: effective (True), not (False), or not checked."""

    service: str
    effective: bool | None
    detail: str
    seconds: float = 0.0

    def line(self) -> str:
        word = {True: "effective", False: "NOT effective", None: "not verified"}[self.effective]
        return f"{word:14} {self.service}: {self.detail}"

    def to_json(self) -> dict[str, object]:
        return {
            "service": self.service,
            "effective": self.effective,
            "detail": self.detail,
            "seconds": round(self.seconds, 2),
        }


def _verify(prov: Provisioner, timeout: float) -> list[Verified]:
    """``fetch --check`` for every service, as that service: nothing is written; new
    grants get up to ``timeout`` seconds to propagate (fetch retries fresh-grant denials).

    Composes the two faces here, in the command line: provision acts as the service
    (its tokens), fetch fetches."""
    import tempfile
    import time
    from concurrent.futures import ThreadPoolExecutor

    from secretsboot.fetch import check_secrets
    from secretsboot.provision.actas import Acting, act_as

    def one(acting: Acting) -> Verified:
        if acting.config is None:
            return Verified(acting.service, None, acting.reason)
        start = time.perf_counter()
        results = check_secrets(
            acting.config, timeout=timeout, propagation_window=timeout, env=acting.env
        )
        took = time.perf_counter() - start
        failed = [r for r in results if not r.ok]
        if failed:
            shown = "; ".join(f"{r.name}: {r.error}" for r in failed)
            return Verified(acting.service, False, shown, took)
        shown = ", ".join(f"{r.name} {r.fingerprint}" for r in results)
        return Verified(
            acting.service, True, f"{len(results)} secret(s) in {took:.1f}s: {shown}", took
        )

    with tempfile.TemporaryDirectory(prefix="secretsboot-verify-") as tmp:
        acting = act_as(prov.spec, prov.backends, Path(tmp), prov.options.only)
        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, acting))


def _write_out(prov: Provisioner, out: Path) -> None:
    from secretsboot._fs import atomic_write_text
    from secretsboot.errors import WriteError
    from secretsboot.provision.desired import build

    state = build(prov.spec, identities={}, only=prov.options.only, configmaps=False)
    files: dict[Path, str] = {
        out / service / "fetch.yaml": text for service, text in state.fetch_configs.items()
    }
    for note in state.notes:
        if note.detail and note.detail.lstrip().startswith("{"):
            files[out / note.service / "volumes.json"] = note.detail + "\n"
    try:
        for path, text in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, text)
    except OSError as exc:
        raise WriteError(f"cannot write to {out}: {exc.strerror}", hint="check --out") from None
    if not options().quiet:
        typer.echo(
            f"wrote {len(files)} file(s) to {out}: "
            + ", ".join(str(p.relative_to(out)) for p in files),
            err=True,
        )


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
