"""The audit pipeline: load -> resolve -> classify -> detectors -> governance -> AuditResult.

>>> from secretsboot.audit.loader import load_text
>>> result = run(load_text("kind: Pod\\nmetadata: {name: web}\\nspec: {containers: []}\\n"))
>>> [w.ref for w in result.workloads], result.coverage.workloads
(['Pod/web'], 1)

The same :func:`run` serves files, stdin and a live cluster (:mod:`.cluster`
produces a :class:`~secretsboot.audit.loader.LoadResult` too). The audit writes
nothing: the caller renders the result and decides the exit code
(:func:`exit_status`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from secretsboot import __version__
from secretsboot.audit import _sharded
from secretsboot.audit.classify import classify, not_a_workload
from secretsboot.audit.loader import LoadResult, load, no_gc
from secretsboot.audit.model import AuditResult, Finding, Severity, Workload, display_path
from secretsboot.audit.report._rows import ROW_FORMATS
from secretsboot.audit.resolve import WORKLOAD_KINDS, Index


@dataclass(slots=True)
class AuditOptions:
    """What the command line (or a caller) asks of one audit."""

    threshold: Severity = Severity.HIGH
    trusted_registries: tuple[str, ...] = ()
    policy: Path | None = None
    suppressions: Path | None = None
    baseline: Path | None = None
    threshold_from_flag: bool = False  # a --severity-threshold flag beats the policy file's
    # False: the result drops the parsed objects (Workload.manifest, the loaded list) once the
    # detectors are done, so a large audit renders its report without holding every body
    keep_manifests: bool = True
    # "json" or "sarif": the caller writes that report and nothing else from the result, so
    # a sharded audit may hand it encoded report rows (a SpooledResult), not every finding
    rows_for: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def classify_all(index: Index, loaded: LoadResult) -> list[Workload]:
    """Every workload of the index, classified; controlled objects counted as skipped."""
    workloads: list[Workload] = []
    for manifest in index.manifests:
        if manifest.kind not in WORKLOAD_KINDS:
            continue
        reason = not_a_workload(manifest, index)
        if reason is None:
            workloads.append(classify(manifest, index))
        else:
            loaded.skip(reason)
    loaded.coverage.workloads = len(workloads)
    return workloads


def _detect(index: Index, workloads: list[Workload]) -> list[Finding]:
    from secretsboot.audit.findings import attach, run_detectors

    findings = run_detectors(index, workloads)
    attach(workloads, findings)
    return findings


def _load_governance(options: AuditOptions) -> tuple[Any, list[Any], frozenset[str]]:
    """(policy, suppressions, baseline fingerprints) from the files the options name."""
    from secretsboot.audit import policy as governance

    policy = governance.load_policy(options.policy) if options.policy else governance.Policy()
    suppressions = (
        governance.load_suppressions(options.suppressions) if options.suppressions else []
    )
    baseline = governance.load_baseline(options.baseline) if options.baseline else frozenset()
    return policy, suppressions, baseline


def run(loaded: LoadResult, options: AuditOptions | None = None) -> AuditResult:
    """Audit what was loaded: classify every workload, run the detectors, apply governance.

    Governance always runs (a policy may disallow approaches without any finding);
    a policy file's threshold and trusted registries apply unless the options
    (command-line flags) give their own.
    """
    with no_gc():
        return _run(loaded, options or AuditOptions())


def _run(loaded: LoadResult, options: AuditOptions) -> AuditResult:
    from secretsboot.audit import policy as governance

    policy, suppressions, baseline = _load_governance(options)
    trusted = options.trusted_registries or tuple(policy.trusted_registries)
    index = Index(loaded.manifests, trusted_registries=trusted)
    if isinstance(loaded, _sharded.ShardedLoad):
        if options.rows_for in ROW_FORMATS:
            return _spooled(loaded, index, options, policy, suppressions, baseline)
        shards = _sharded.run(loaded, index)
        workloads, findings = shards.workloads, shards.findings
    else:
        workloads = classify_all(index, loaded)
        findings = _detect(index, workloads)
    result = AuditResult(
        workloads=workloads,
        findings=findings,
        errors=list(loaded.errors),
        coverage=loaded.coverage,
        threshold=options.threshold,
        tool_version=__version__,
    )
    governed = governance.govern(
        result,
        policy=policy,
        suppressions=suppressions,
        baseline=baseline,
        threshold=options.threshold if options.threshold_from_flag else None,
    )
    if not options.keep_manifests:
        loaded.manifests = []
        for w in governed.workloads:
            w.manifest = None
    return governed


def load_input(
    paths: Sequence[str | Path], *, stdin: TextIO | None = None, kustomize: bool = False
) -> LoadResult:
    """Read what :func:`run` audits: a large folder in shards (see :mod:`._sharded`:
    flat memory, both cores), anything else whole (:func:`~.loader.load`)."""
    if "-" not in [str(p) for p in paths] and all(Path(p).exists() for p in paths):
        with no_gc():
            sharded = _sharded.load([Path(p) for p in paths], kustomize=kustomize)
        if sharded is not None:
            return sharded
    return load(paths, stdin=stdin, kustomize=kustomize)


def _spooled(
    loaded: _sharded.ShardedLoad,
    index: Index,
    options: AuditOptions,
    policy: Any,
    suppressions: list[Any],
    baseline: frozenset[str],
) -> AuditResult:
    """A sharded audit whose shards govern their findings and encode the report's rows."""
    import datetime as dt

    from secretsboot.audit import policy as governance
    from secretsboot.audit.report._rows import SpooledResult

    today = dt.date.today()
    flag = options.threshold if options.threshold_from_flag else None
    threshold = governance.effective_threshold(options.threshold, flag, policy)
    judging = _sharded.Judging(
        format=str(options.rows_for),
        policy=policy,
        active=[s for s in suppressions if not s.expired(today)],
        baseline=baseline,
        threshold=threshold,
        expired=governance.expired_findings(suppressions, today),
    )
    parts = _sharded.run(loaded, index, judging).parts
    loaded.manifests = []
    result = SpooledResult(
        workloads=[],
        findings=[],
        errors=list(loaded.errors),
        coverage=loaded.coverage,
        threshold=threshold,
        tool_version=__version__,
        parts=parts,
        format=str(options.rows_for),
    )
    for part in parts:
        result.counts.add(part.tally)
    return result


def audit_paths(
    paths: Sequence[str | Path],
    options: AuditOptions | None = None,
    *,
    stdin: TextIO | None = None,
) -> AuditResult:
    """Load ``paths`` (``-`` = stdin) and audit them."""
    return run(load_input(paths, stdin=stdin), options)


AS_WRITTEN = "(audited as written)"


def unreadable(loaded: LoadResult) -> str | None:
    """Why the input cannot be trusted as read, or None: a document that did not parse,
    empty input, or input with no Kubernetes object (a live cluster is never "empty")."""
    fatal = [e for e in loaded.errors if not e.reason.endswith(AS_WRITTEN)]
    if fatal:
        e = fatal[0]
        more = f" (and {len(fatal) - 1} more document(s) not read)" if len(fatal) > 1 else ""
        return f"{display_path(e.file)}:{e.line}: {e.reason}{more}"
    cov = loaded.coverage
    if not cov.files:
        return None
    if not cov.documents:
        return f"the input is empty ({cov.files} input(s), no YAML or JSON document)"
    if not cov.objects:
        return f"the input has no Kubernetes object ({cov.documents} document(s), none with a kind)"
    return None


def exit_status(result: AuditResult, *, report_only: bool = False) -> int:
    """0 below the threshold (or with ``report_only``), 11 at or over it."""
    from secretsboot.errors import ExitCode

    if report_only or not result.over_threshold_count():
        return int(ExitCode.OK)
    return int(ExitCode.FINDINGS)
