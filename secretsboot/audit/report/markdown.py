"""``--format markdown``: a pull-request comment.

Summary counts, a per-rule table (worst first, each rule's fix said once), a
per-service table (file, approaches, worst finding), the findings (worst first;
suppressed and baselined ones collapsed), and the
comparison table and coverage in collapsed ``<details>`` blocks. At most
:data:`PR_FINDINGS` findings and :data:`PR_SERVICES` services are written out (the
worst); the rest are counted. Every text from
the input is escaped (HTML and table pipes), so a manifest cannot inject markup.
"""

from __future__ import annotations

import html

from secretsboot.audit.model import AuditResult, Finding, Severity, display_path
from secretsboot.audit.report import _comparison
from secretsboot.audit.report._common import (
    RenderOptions,
    coverage_line,
    ordered,
    rule_summary,
    status,
    summary,
)

# a pull-request comment holds ~65,000 characters: about 100 findings with their fixes
PR_FINDINGS = 100
PR_SERVICES = 100  # rows of the services table (the worst), likewise

ICON = {
    Severity.CRITICAL: "🟥",
    Severity.HIGH: "🟧",
    Severity.MEDIUM: "🟨",
    Severity.LOW: "🟦",
    Severity.INFO: "⬜",
}


def esc(text: object) -> str:
    """Escape for a Markdown table cell or paragraph (HTML, pipes, backticks, newlines)."""
    out = html.escape(str(text), quote=False).replace("|", "\\|").replace("`", "\\`")
    return out.replace("\r", " ").replace("\n", "<br>")


def _code(text: str) -> str:
    return f"<code>{html.escape(text, quote=False)}</code>" if text else ""


def _sev(severity: Severity | None) -> str:
    if severity is None:
        return "✅ none"
    return f"{ICON[severity]} {severity.label}"


def _finding_block(f: Finding) -> list[str]:
    e = f.evidence
    lines = [
        f"- {_sev(f.severity)} **{esc(f.rule_id)}** {esc(f.title)}: {esc(f.message)}  ",
        f"  {_code(f'{display_path(e.file)}:{e.line}')} {esc(e.object)} {_code(e.path)}"
        + (f" ({esc(e.detail)})" if e.detail else "")
        + "  ",
    ]
    if f.suppressed or f.baseline:
        reason = f": {esc(f.suppression_reason)}" if f.suppression_reason else ""
        lines.append(f"  _{status(f)}{reason}_")
    return lines


def _services(result: AuditResult, opts: RenderOptions) -> list[str]:
    rows = _comparison.services(result)
    if not rows:
        return []
    hidden = 0
    if opts.max_rows > 0 and len(rows) > PR_SERVICES:
        # a comment holds about 65,000 characters: the worst, in their usual order
        worst = sorted(rows, key=lambda r: -1 if r.worst is None else -int(r.worst))
        keep = {id(r) for r in worst[:PR_SERVICES]}
        rows, hidden = [r for r in rows if id(r) in keep], len(rows) - PR_SERVICES
    out = ["", "### Services", "", "| workload | file:line | approaches | worst | findings |"]
    out.append("|---|---|---|---|---:|")
    for row in rows:
        w = row.workload
        active = [f for f in row.findings if status(f) == "open"]
        out.append(
            f"| {esc(w.ref)} | {_code(f'{display_path(w.file)}:{w.line}')} | "
            f"{esc(', '.join(row.approaches) or 'none')} | {_sev(row.worst)} | {len(active)} |"
        )
    if hidden:
        out.append(f"- … and {hidden} more with milder findings (see the JSON or SARIF report)")
    return out


def _rules(result: AuditResult) -> list[str]:
    rows = rule_summary(result)
    if not rows:
        return []
    out = ["", "### Rules", "", "| worst | rule | open | what | fix |", "|---|---|---:|---|---|"]
    for r in rows:
        quiet = f" (+{r.quiet})" if r.quiet else ""
        out.append(
            f"| {_sev(r.worst)} | **{esc(r.rule_id)}** | {r.open}{quiet} | {esc(r.title)} | "
            f"{esc(r.fix)} |"
        )
    return out


def _findings(result: AuditResult, opts: RenderOptions) -> list[str]:
    findings = ordered(list(result.findings))
    open_ = [f for f in findings if status(f) == "open"]
    quiet = [f for f in findings if status(f) != "open"]
    out: list[str] = []
    if open_:
        out += ["", "### Findings", ""]
        limit = len(open_) if opts.max_rows <= 0 else min(len(open_), PR_FINDINGS, opts.max_rows)
        for f in open_[:limit]:
            out += _finding_block(f)
        if limit < len(open_):
            out.append(f"- … and {len(open_) - limit} more (see the JSON or SARIF report)")
    if quiet and opts.details:
        out += ["", f"<details><summary>{len(quiet)} suppressed or baselined</summary>", ""]
        for f in quiet[: PR_FINDINGS if opts.max_rows > 0 else len(quiet)]:
            out += _finding_block(f)
        out += ["", "</details>"]
    return out


def _comparison_block(result: AuditResult) -> list[str]:
    approaches = _comparison.approaches_in(result)
    if not approaches:
        return []
    out = ["", "<details><summary>Comparison of the approaches found</summary>", ""]
    out.append("| approach | " + " | ".join(label for _, label in _comparison.PROPERTIES) + " |")
    out.append("|---" * (len(_comparison.PROPERTIES) + 1) + "|")
    for a in approaches:
        cells = " | ".join(esc(c.text) for c in _comparison.cells(a))
        out.append(f"| {esc(a)} | {cells} |")
    return [*out, "", "</details>"]


def _errors(result: AuditResult) -> list[str]:
    if not result.errors:
        return []
    out = ["", f"<details><summary>{len(result.errors)} unreadable document(s)</summary>", ""]
    for e in sorted(result.errors, key=lambda e: (e.file, e.doc_index)):
        place = f"{display_path(e.file)}:{e.line}"
        out.append(f"- {_code(place)} document {e.doc_index}: {esc(e.reason)}")
    return [*out, "", "</details>"]


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    s = summary(result)
    out: list[str] = ["## secretsboot audit", ""]
    verdict = (
        f"**{s.over_threshold} finding(s) at or over `{result.threshold.label}`**"
        if s.over_threshold
        else f"No finding at or over `{result.threshold.label}`"
    )
    out.append(
        f"{verdict} · {s.workloads} workload(s) · {s.counted} open finding(s) · "
        f"{s.suppressed} suppressed · {s.baseline} in baseline · {s.errors} unreadable document(s)"
    )
    out += ["", "| " + " | ".join(f"{_sev(Severity.parse(k))}" for k in s.by_severity) + " |"]
    out.append("|" + "---:|" * len(s.by_severity))
    out.append("| " + " | ".join(str(n) for n in s.by_severity.values()) + " |")
    out += _rules(result)
    out += _services(result, opts)
    out += _findings(result, opts)
    out += _comparison_block(result)
    out += _errors(result)
    out += ["", f"<sub>{esc(coverage_line(result))}</sub>"]
    return "\n".join(out) + "\n"
