"""``secretsboot audit``: how every workload gets its secrets, and what is wrong.

Exit codes: 0 below the severity threshold, 11 at or over it, 2 for bad input
(missing path, bad flag, unreadable policy, and input that cannot be read: a
document that does not parse, empty input, input with no object, unless
``--allow-parse-errors``), 1 for an internal error; ``--report-only`` exits 0
whatever the findings (but not when the tool fails or the input is unreadable).

``secretsboot audit merge REPORT.json...`` makes one fleet report of many
clusters' JSON reports (:mod:`secretsboot.audit.merge`).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from secretsboot.errors import BadInputError, FindingsOverThreshold, WriteError

if TYPE_CHECKING:
    from collections.abc import Callable

    from secretsboot.audit.loader import LoadResult
    from secretsboot.audit.model import AuditResult


class ReportFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    MARKDOWN = "markdown"
    HTML = "html"
    SARIF = "sarif"


class Threshold(StrEnum):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


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


def terminal_width(stream: TextIO) -> int:
    """``COLUMNS`` when set, else the terminal's width, else 120 (a file or a pipe)."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) >= 40:
        return int(columns)
    if stream.isatty():
        return max(40, shutil.get_terminal_size((120, 24)).columns)
    return 120


def _atomic_report(path: Path, write: Callable[[TextIO], None]) -> None:
    """Write a report as it is built to a temp file beside ``path``, then rename it."""
    import tempfile

    try:
        directory = path.parent if str(path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                write(fh)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise WriteError(f"cannot write {path}: {exc.strerror}", hint="check the path") from None


class _Say:
    """Messages on stderr: ``-q`` keeps errors only; progress only on a terminal."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.progress = not quiet and sys.stderr.isatty()
        self.start = time.perf_counter()

    def info(self, text: str) -> None:
        if not self.quiet:
            typer.echo(text, err=True)

    def step(self, text: str) -> None:
        if self.progress:
            typer.echo(f"[{time.perf_counter() - self.start:6.1f} s] {text}", err=True)


def _quiet(local: bool) -> bool:
    from secretsboot.cli import options

    return local or options().quiet


def fail_closed(loaded: LoadResult) -> None:
    """Exit 2 (BadInputError) when the input could not be read as a whole."""
    from secretsboot.audit.engine import unreadable

    problem = unreadable(loaded)
    if problem:
        raise BadInputError(
            problem,
            hint="fix the input (render Helm charts with `helm template` first), or pass "
            "--allow-parse-errors to audit what could be read",
        )


def _merge(reports: list[str], output: ReportFormat, out: Path | None, say: _Say) -> None:
    from secretsboot.audit import merge

    if not reports:
        raise BadInputError(
            "audit merge: no report given",
            hint="give JSON reports to merge (to audit a folder named merge: ./merge)",
        )
    if output is ReportFormat.JSON:
        raise BadInputError(
            "audit merge: -o json is not a fleet format",
            hint=f"use one of {', '.join(merge.FORMATS)}",
        )
    paths = [Path(p) for p in reports]
    for p in paths:
        if not p.is_file():
            raise BadInputError(f"{p}: no such report", hint="give JSON reports to merge")
    if out is not None and output is ReportFormat.SARIF:  # one read of each report, atomic
        fleets: list[merge.Fleet] = []
        _atomic_report(out, lambda fh: fleets.append(merge.merge_sarif(paths, fh)))
        say.step(f"merged {len(fleets[0].clusters)} report(s)")
        say.info(f"wrote the fleet sarif report of {len(fleets[0].clusters)} cluster(s) to {out}")
        return
    fleet = merge.merge(paths)
    say.step(f"merged {len(fleet.clusters)} report(s)")
    if out is not None:
        _atomic_report(out, lambda fh: merge.write(fleet, output.value, fh))
        say.info(
            f"wrote the fleet {output.value} report of {len(fleet.clusters)} cluster(s) to {out}"
        )
    else:
        merge.write(fleet, output.value, sys.stdout, width=terminal_width(sys.stdout))


def _load(
    paths: list[str] | None,
    *,
    cluster: bool,
    context: str | None,
    namespace: str | None,
    kubeconfig: Path | None,
    kustomize: bool,
) -> tuple[LoadResult, str]:
    """What to audit, and the name of its source (the cluster, or the input)."""
    if cluster:
        if paths:
            raise BadInputError("give manifest paths or --cluster, not both")
        from secretsboot.audit.cluster import current_context, load_cluster

        loaded = load_cluster(context=context, namespace=namespace, kubeconfig=kubeconfig)
        return loaded, context or current_context(kubeconfig) or "cluster"
    if not paths:
        raise BadInputError(
            "nothing to audit", hint="give manifest files or folders, '-', or --cluster"
        )
    if context or namespace or kubeconfig:
        raise BadInputError("--context/--namespace/--kubeconfig need --cluster")
    from secretsboot.audit.engine import load_input

    loaded = load_input(paths, stdin=sys.stdin, kustomize=kustomize)
    return loaded, ", ".join("stdin" if p == "-" else p for p in paths)


def register(app: typer.Typer) -> None:
    @app.command("audit")
    def _audit(
        paths: Annotated[
            list[str] | None,
            typer.Argument(
                help="Manifest files or folders (recursive); '-' reads stdin. "
                "`audit merge REPORT.json...` merges JSON reports into a fleet report "
                "(a folder named merge: ./merge).",
                show_default=False,
            ),
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
        cluster_name: Annotated[
            str | None,
            typer.Option(
                "--cluster-name",
                help="Name of the source in the JSON report (default: the kube context, "
                "or the input paths); `audit merge` shows it as the cluster.",
            ),
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
            Threshold | None,
            typer.Option(
                "--severity-threshold", help="Exit 11 at or over this level (default high)."
            ),
        ] = None,
        report_only: Annotated[
            bool, typer.Option("--report-only", help="Always exit 0 unless the tool fails.")
        ] = False,
        trusted_registry: Annotated[
            list[str] | None,
            typer.Option("--trusted-registry", help="A registry images may come from (repeat)."),
        ] = None,
        allow_parse_errors: Annotated[
            bool,
            typer.Option(
                "--allow-parse-errors",
                help="Audit what could be read even if some input could not (default: exit 2).",
            ),
        ] = False,
        kustomize: Annotated[
            bool,
            typer.Option(
                "--kustomize",
                help="Render folders with a kustomization file with `kubectl kustomize` "
                "(without it they are reported as skipped).",
            ),
        ] = False,
        quiet: Annotated[
            bool, typer.Option("--quiet", "-q", help="Print errors only (and the report).")
        ] = False,
    ) -> None:
        """Classify how each workload gets its secrets and report what is wrong.

        Examples: `secretsboot audit k8s/`, `helm template chart | secretsboot audit -`,
        `secretsboot audit --cluster -n shipping -o sarif --out audit.sarif`,
        `secretsboot audit merge west.json east.json -o html --out fleet.html`.
        """
        say = _Say(_quiet(quiet))
        if paths and paths[0] == "merge":  # the subcommand; a folder so named: ./merge
            _merge(paths[1:], output, out, say)
            return
        from secretsboot.audit import engine
        from secretsboot.audit.model import Severity

        for name, given in (
            ("--policy", policy),
            ("--suppressions", suppressions),
            ("--baseline", baseline),
        ):
            if given is not None and not given.is_file():
                raise BadInputError(f"{name} {given}: no such file", hint="check the path")
        options = engine.AuditOptions(
            threshold=Severity.parse(severity_threshold.value)
            if severity_threshold
            else Severity.HIGH,
            threshold_from_flag=severity_threshold is not None,
            trusted_registries=tuple(trusted_registry or ()),
            keep_manifests=False,
            rows_for=output.value if write_baseline is None else None,
            policy=policy,
            suppressions=suppressions,
            baseline=baseline,
        )
        say.step("reading the input")
        loaded, source = _load(
            paths,
            cluster=cluster,
            context=context,
            namespace=namespace,
            kubeconfig=kubeconfig,
            kustomize=kustomize,
        )
        say.step(f"read {loaded.coverage.objects:,} objects; classifying and detecting")
        if not allow_parse_errors:
            fail_closed(loaded)
        result = engine.run(loaded, options)
        result.source = cluster_name or source
        del loaded  # the parsed objects are not needed to render
        say.step(f"{result.coverage.workloads:,} workloads audited; writing the report")
        _report(result, output, out, say)
        if write_baseline is not None:
            from secretsboot.audit import policy as governance

            n = governance.write_baseline(result, write_baseline)
            say.info(f"wrote a baseline of {n} finding(s) to {write_baseline}")
        if engine.exit_status(result, report_only=report_only):
            raise FindingsOverThreshold(
                f"{result.over_threshold_count()} findings at or over {result.threshold.label}",
                hint="fix them, suppress them with a reason, or record a baseline",
            )


def _report(result: AuditResult, output: ReportFormat, out: Path | None, say: _Say) -> None:
    from secretsboot.audit.report import RenderOptions, render_to

    if out is not None:
        opts = RenderOptions(width=120)
        _atomic_report(out, lambda fh: render_to(result, output.value, fh, options=opts))
        say.info(f"wrote the {output.value} report to {out}")
    else:
        opts = RenderOptions(width=terminal_width(sys.stdout))
        render_to(result, output.value, sys.stdout, options=opts)
        sys.stdout.flush()
    if output is ReportFormat.TABLE:
        say.info(coverage_line(result))
