"""``secretsboot audit``: how every workload gets its secrets, and what is wrong.

Exit codes: 0 below the severity threshold, 11 at or over it, 2 for bad input
(missing path, bad flag, unreadable policy), 1 for an internal error;
``--report-only`` exits 0 whatever the findings (but not when the tool fails).
"""

from __future__ import annotations

import os
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from secretsboot.audit.model import Severity
from secretsboot.errors import BadInputError, FindingsOverThreshold, WriteError

if TYPE_CHECKING:
    from secretsboot.audit.model import AuditResult


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"
    SARIF = "sarif"


def coverage_line(result: AuditResult) -> str:
    """One line for stderr: what was read, what was skipped and why, what failed."""
    cov = result.coverage
    source = f"{cov.files} files" if cov.files else "the cluster"
    text = (
        f"audited {cov.workloads} workloads from {source} "
        f"({cov.documents} documents, {cov.objects} objects)"
    )
    if cov.skipped:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(cov.skipped.items()))
        text += f"; skipped: {reasons}"
    if result.errors:
        text += f"; {len(result.errors)} documents not read (see the report)"
    return text


def _write(path: Path, result: AuditResult, fmt: str) -> None:
    """Write the report atomically, as it is built: a temp file beside the target, then rename."""
    from secretsboot.audit.report import render_to

    try:
        directory = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                render_to(result, fmt, fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}", hint="check the path") from None


def _threshold(text: str | None) -> tuple[Severity, bool]:
    if text is None:
        return Severity.HIGH, False
    try:
        return Severity.parse(text), True
    except ValueError as exc:
        raise BadInputError(f"--severity-threshold: {exc}") from None


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def _audit(
        paths: Annotated[
            list[str] | None,
            typer.Argument(help="Manifest files or folders (recursive); '-' reads stdin."),
        ] = None,
        cluster: Annotated[
            bool, typer.Option("--cluster", help="Audit a live cluster instead of files.")
        ] = False,
        context: Annotated[
            str | None, typer.Option("--context", help="kubeconfig context (--cluster).")
        ] = None,
        namespace: Annotated[
            str | None,
            typer.Option("--namespace", "-n", help="Only this namespace (--cluster)."),
        ] = None,
        kubeconfig: Annotated[
            Path | None, typer.Option("--kubeconfig", help="kubeconfig file (--cluster).")
        ] = None,
        output: Annotated[
            ReportFormat, typer.Option("--output", "-o", help="Report format.")
        ] = ReportFormat.TABLE,
        out: Annotated[
            Path | None, typer.Option("--out", help="Write the report to FILE, not stdout.")
        ] = None,
        policy: Annotated[
            Path | None, typer.Option("--policy", help="Policy file (threshold, rules).")
        ] = None,
        suppressions: Annotated[
            Path | None, typer.Option("--suppressions", help="Suppressions file.")
        ] = None,
        baseline: Annotated[
            Path | None,
            typer.Option("--baseline", help="Baseline: its findings are reported, not counted."),
        ] = None,
        write_baseline: Annotated[
            Path | None,
            typer.Option("--write-baseline", help="Write the current findings as a baseline."),
        ] = None,
        severity_threshold: Annotated[
            str | None,
            typer.Option(
                "--severity-threshold",
                help="Exit 11 at or over this level: info|low|medium|high|critical (default high).",
            ),
        ] = None,
        report_only: Annotated[
            bool, typer.Option("--report-only", help="Always exit 0 unless the tool fails.")
        ] = False,
        trusted_registry: Annotated[
            list[str] | None,
            typer.Option("--trusted-registry", help="A registry images may come from (repeat)."),
        ] = None,
    ) -> None:
        """Classify how each workload gets its secrets and report what is wrong.

        Examples: `secretsboot audit k8s/`, `helm template chart | secretsboot audit -`,
        `secretsboot audit --cluster -n shipping -o sarif --out audit.sarif`.
        """
        from secretsboot.audit import engine

        threshold, from_flag = _threshold(severity_threshold)
        given_files = (
            ("--policy", policy),
            ("--suppressions", suppressions),
            ("--baseline", baseline),
        )
        for name, given in given_files:
            if given is not None and not given.is_file():
                raise BadInputError(f"{name} {given}: no such file", hint="check the path")
        options = engine.AuditOptions(
            threshold=threshold,
            threshold_from_flag=from_flag,
            trusted_registries=tuple(trusted_registry or ()),
            keep_manifests=False,
            policy=policy,
            suppressions=suppressions,
            baseline=baseline,
        )
        if cluster:
            if paths:
                raise BadInputError("give manifest paths or --cluster, not both")
            from secretsboot.audit.cluster import load_cluster

            loaded = load_cluster(context=context, namespace=namespace, kubeconfig=kubeconfig)
        else:
            if not paths:
                raise BadInputError(
                    "nothing to audit", hint="give manifest files or folders, '-', or --cluster"
                )
            if context or namespace or kubeconfig:
                raise BadInputError("--context/--namespace/--kubeconfig need --cluster")
            from secretsboot.audit.loader import load

            loaded = load(paths, stdin=sys.stdin)
        result = engine.run(loaded, options)
        del loaded  # the parsed objects are not needed to render

        if out is not None:
            _write(out, result, output.value)
        else:
            from secretsboot.audit.report import render_to

            render_to(result, output.value, sys.stdout)
            sys.stdout.flush()
        if output is ReportFormat.TABLE:
            typer.echo(coverage_line(result), err=True)
        if write_baseline is not None:
            from secretsboot.audit import policy as governance

            governance.write_baseline(result, write_baseline)
        if engine.exit_status(result, report_only=report_only):
            over = result.over_threshold()
            raise FindingsOverThreshold(
                f"{len(over)} findings at or over {result.threshold.label}",
                hint="fix them, suppress them with a reason, or record a baseline",
            )
