"""Shared by the formatters: options, plain-data views of the model, summary counts.

Nothing here (or in any formatter) ever sees a secret value: the model carries
only redacted previews and fingerprints (:func:`secretsboot.secret.fingerprint`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from secretsboot.audit.model import (
    SCHEMA_VERSION,
    Approach,
    AuditResult,
    Evidence,
    Finding,
    LoadError,
    Severity,
    Workload,
    display_path,
)
from secretsboot.audit.report import _comparison

TOOL_NAME = "secretsboot"


@dataclass(frozen=True, slots=True)
class RenderOptions:
    """Every formatter takes the same options; each uses the ones that concern it."""

    width: int = 120  # table: terminal width
    color: bool = False  # table: ANSI colours
    details: bool = True  # markdown/html: per-finding details
    max_rows: int = 300  # table: rows per table (0 = all); a terminal cannot show more


def severity_label(severity: Severity | None) -> str:
    return severity.label if severity is not None else "none"


def status(f: Finding) -> str:
    if f.suppressed:
        return "suppressed"
    if f.baseline:
        return "baseline"
    return "open"


def order_key(f: Finding) -> tuple[bool, int, str, int, str, str, str, str]:
    """Worst first, then file, line, rule: the order people read findings in."""
    e = f.evidence
    return (
        f.suppressed or f.baseline,
        -int(f.severity),
        e.file,
        e.line,
        f.rule_id,
        e.object,
        e.path,
        f.workload,
    )


def ordered(findings: list[Finding]) -> list[Finding]:
    """``findings`` in :func:`order_key` order (stable)."""
    return sorted(findings, key=order_key)


def workload_key(w: Workload) -> tuple[str, int, str]:
    """The order of workloads in a report: file, line, ref."""
    return (w.file, w.line, w.ref)


def evidence_doc(e: Evidence) -> dict[str, Any]:
    return {
        "object": e.object,
        "path": e.path,
        "file": display_path(e.file),
        "doc_index": e.doc,
        "line": e.line,
        "detail": e.detail,
    }


def finding_doc(f: Finding) -> dict[str, Any]:
    return {
        "rule_id": f.rule_id,
        "title": f.title,
        "severity": f.severity.label,
        "message": f.message,
        "fix": f.fix,
        "workload": f.workload or None,
        "workload_id": f.workload_id or None,
        "evidence": evidence_doc(f.evidence),
        "fingerprint": f.fingerprint,
        "suppressed": f.suppressed,
        "suppression_reason": f.suppression_reason or None,
        "suppression_kind": f.suppression_kind or None,
        "baseline": f.baseline,
    }


def approach_doc(a: Approach) -> dict[str, Any]:
    return {"id": a.id, "mode": a.mode or None, "evidence": [evidence_doc(e) for e in a.evidence]}


def workload_doc(w: Workload, found: list[Finding]) -> dict[str, Any]:
    """A workload and (by fingerprint) its findings ``found``."""
    worst = _comparison.worst(found)
    return {
        "ref": w.ref,
        "id": w.uid,
        "kind": w.kind,
        "namespace": w.namespace,
        "name": w.name,
        "file": display_path(w.file),
        "doc_index": w.doc_index,
        "line": w.line,
        "service_account": w.service_account,
        "approaches": [approach_doc(a) for a in sorted(w.approaches, key=lambda a: (a.id, a.mode))],
        "worst": worst.label if worst is not None else None,
        "findings": [
            {"rule_id": f.rule_id, "severity": f.severity.label, "fingerprint": f.fingerprint}
            for f in ordered(found)
        ],
    }


def error_doc(e: LoadError) -> dict[str, Any]:
    return {"file": e.file, "doc_index": e.doc_index, "line": e.line, "reason": e.reason}


@dataclass(frozen=True, slots=True)
class Summary:
    workloads: int
    findings: int
    counted: int
    suppressed: int
    baseline: int
    over_threshold: int
    by_severity: dict[str, int]  # counted findings per severity, worst first
    errors: int

    def doc(self) -> dict[str, Any]:
        return {
            "workloads": self.workloads,
            "findings": self.findings,
            "counted": self.counted,
            "suppressed": self.suppressed,
            "baseline": self.baseline,
            "over_threshold": self.over_threshold,
            "by_severity": dict(self.by_severity),
            "errors": self.errors,
        }


def summary(result: AuditResult) -> Summary:
    t = result.tally()
    return Summary(
        workloads=t.workloads,
        findings=t.findings,
        counted=t.counted,
        suppressed=t.suppressed,
        baseline=t.baseline,
        over_threshold=t.over_threshold,
        by_severity={s.label: t.by_severity.get(s, 0) for s in sorted(Severity, reverse=True)},
        errors=len(result.errors),
    )


def coverage_line(result: AuditResult) -> str:
    c = result.coverage
    text = (
        f"coverage: {c.files} file(s), {c.documents} document(s), {c.objects} object(s), "
        f"{c.workloads} workload(s)"
    )
    skipped = sum(c.skipped.values())
    if skipped:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(c.skipped.items()))
        text += f"; skipped {skipped} ({reasons})"
    if result.errors:
        text += f"; {len(result.errors)} document(s) could not be read"
    return text


SRCROOT = "SRCROOT"


def artifact_location(file: str) -> dict[str, str]:
    """A SARIF ``artifactLocation``: relative to ``SRCROOT`` (the current folder, see
    :func:`original_uri_base_ids`) when the file is under it, else an absolute ``file:``
    URI (the leading slash kept), ``stdin`` for standard input.

    >>> artifact_location("k8s/app.yaml")
    {'uri': 'k8s/app.yaml', 'uriBaseId': 'SRCROOT'}
    >>> artifact_location("/no/such/root/app.yaml")["uri"]
    'file:///no/such/root/app.yaml'
    """
    if not file or file in ("-", "<stdin>"):
        return {"uri": "stdin"}
    if file.startswith("<"):
        return {"uri": quote(file.strip("<>"), safe="")}
    shown = display_path(file)
    if "\\" in shown or PureWindowsPath(shown).drive:
        return {"uri": PureWindowsPath(shown).as_uri() if PureWindowsPath(shown).drive else shown}
    if PurePosixPath(shown).is_absolute():
        return {"uri": PurePosixPath(shown).as_uri()}
    return {"uri": quote(shown, safe="/-._~"), "uriBaseId": SRCROOT}


def original_uri_base_ids() -> dict[str, dict[str, dict[str, str]]]:
    """SARIF ``originalUriBaseIds``: what ``SRCROOT`` is. Its absolute location is left
    out on purpose (a report stays the same on every machine; code scanning resolves
    ``SRCROOT`` to the checkout)."""
    return {SRCROOT: {"description": {"text": "the folder the audit ran in (the checkout)"}}}


@dataclass(frozen=True, slots=True)
class RuleRow:
    """One rule of the report: its worst open severity, counts and fix (said once)."""

    rule_id: str
    title: str
    worst: Severity
    open: int
    quiet: int  # suppressed or in the baseline
    fix: str


def rule_summary(result: AuditResult) -> list[RuleRow]:
    """Per rule, worst first: what the reader takes in before the findings."""
    rows = [
        RuleRow(rule_id, s.title, s.worst, s.open, s.quiet, s.fix)
        for rule_id, s in result.tally().rules.items()
    ]
    return sorted(rows, key=lambda r: (-(r.open > 0), -int(r.worst), r.rule_id))


def where(e: Evidence) -> str:
    """``file:line`` as people read it (relative path)."""
    return f"{display_path(e.file)}:{e.line}"


def schema_version() -> str:
    return SCHEMA_VERSION
