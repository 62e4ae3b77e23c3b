"""``--format markdown``: a pull-request comment.

Summary counts, a per-service table (approaches, worst finding), the findings with
their fixes (worst first; suppressed and baselined ones collapsed), and the
comparison table and coverage in collapsed ``<details>`` blocks. At most
:data:`PR_FINDINGS` findings are written out (the worst); the rest are counted. Every text from
the input is escaped (HTML and table pipes), so a manifest cannot inject markup.
"""

from __future__ import annotations

import html

from secretsboot.audit.model import AuditResult, Finding, Severity
from secretsboot.audit.report import _comparison
from secretsboot.audit.report._common import (
    RenderOptions,
    coverage_line,
    ordered,
    status,
    summary,
)

# a pull-request comment holds ~65,000 characters: about 100 findings with their fixes
PR_FINDINGS = 100

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
        f"  {_code(f'{e.file}:{e.line}')} {esc(e.object)} {_code(e.path)}"
        + (f" ({esc(e.detail)})" if e.detail else "")
        + "  ",
        f"  **Fix:** {esc(f.fix)}",
    ]
    if f.suppressed or f.baseline:
        reason = f": {esc(f.suppression_reason)}" if f.suppression_reason else ""
        lines[-1] += f"  \n  _{status(f)}{reason}_"
    return lines


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

    rows = _comparison.services(result)
    if rows:
        out += ["", "### Services", "", "| workload | approaches | worst | findings |"]
        out.append("|---|---|---|---:|")
        for row in rows:
            active = [f for f in row.findings if status(f) == "open"]
            out.append(
                f"| {esc(row.workload.ref)} | {esc(', '.join(row.approaches) or 'none')} | "
                f"{_sev(row.worst)} | {len(active)} |"
            )

    findings = ordered(list(result.findings))
    open_ = [f for f in findings if status(f) == "open"]
    quiet = [f for f in findings if status(f) != "open"]
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

    approaches = _comparison.approaches_in(result)
    if approaches:
        out += ["", "<details><summary>Comparison of the approaches found</summary>", ""]
        out.append(
            "| approach | " + " | ".join(label for _, label in _comparison.PROPERTIES) + " |"
        )
        out.append("|---" * (len(_comparison.PROPERTIES) + 1) + "|")
        for a in approaches:
            cells = " | ".join(esc(c.text) for c in _comparison.cells(a))
            out.append(f"| {esc(a)} | {cells} |")
        out += ["", "</details>"]
    if result.errors:
        out += ["", f"<details><summary>{len(result.errors)} unreadable document(s)</summary>", ""]
        for e in sorted(result.errors, key=lambda e: (e.file, e.doc_index)):
            out.append(f"- {_code(f'{e.file}:{e.line}')} document {e.doc_index}: {esc(e.reason)}")
        out += ["", "</details>"]
    out += ["", f"<sub>{esc(coverage_line(result))}</sub>"]
    return "\n".join(out) + "\n"
