"""``--format table``: what a person reads in a terminal (rich).

Five parts: a per-rule summary (worst first, each rule's fix said once), workloads
(file:line, approaches and worst finding), findings (worst first, where and what;
the fix is in the rule summary), the comparison matrix of the approaches found,
and a coverage line. The tables fit ``RenderOptions.width`` (the CLI passes
``COLUMNS`` or the terminal's width); paths are relative to the current folder and
a ``file:line`` is never split over two rows (a long one is shortened on its left).
Each table shows at most ``RenderOptions.max_rows`` rows (default 300, the worst
first) and says how many it left out: rich lays out ~25k rows in about a minute,
and nobody reads them in a terminal.
Colour only when asked (``RenderOptions(color=True)``); the text is the same.
"""

from __future__ import annotations

import io
import itertools
from typing import Any, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from secretsboot.audit.model import AuditResult, Severity, display_path
from secretsboot.audit.report import _comparison
from secretsboot.audit.report._common import (
    RenderOptions,
    coverage_line,
    ordered,
    rule_summary,
    status,
    summary,
    where,
)
from secretsboot.audit.report._rows import TABLE_ROWS, SpooledResult

_T = TypeVar("_T")

SEVERITY_STYLE = {
    Severity.CRITICAL: "bold white on red",
    Severity.HIGH: "bold red",
    Severity.MEDIUM: "yellow",
    Severity.LOW: "cyan",
    Severity.INFO: "dim",
}
VALUE_STYLE = {"yes": "green", "partial": "yellow", "no": "red", "unknown": "dim"}


def _sev(severity: Severity | None) -> Text:
    if severity is None:
        return Text("-", style="green")
    return Text(severity.label, style=SEVERITY_STYLE[severity])


def _cap(rows: list[_T], limit: int) -> tuple[list[_T], int]:
    if limit <= 0 or len(rows) <= limit:
        return rows, 0
    return rows[:limit], len(rows) - limit


def _fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, shortened on its left (the line stays)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


def _rules(result: AuditResult) -> Table:
    table = Table(title="Rules", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("worst", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("open", no_wrap=True, justify="right")
    table.add_column("what", overflow="fold", ratio=2, min_width=16)
    table.add_column("fix", overflow="fold", ratio=3, min_width=20)
    for row in rule_summary(result):
        quiet = f" (+{row.quiet})" if row.quiet else ""
        table.add_row(_sev(row.worst), row.rule_id, f"{row.open}{quiet}", row.title, row.fix)
    return table


def _first(result: AuditResult, name: str, limit: int) -> tuple[list[Any], int] | None:
    """The first ``limit`` rows of a sharded audit's ``name`` list and how many are not
    shown, or None when the result holds its lists whole."""
    if not isinstance(result, SpooledResult):
        return None
    total = result.counts.workloads if name == "services" else result.counts.findings
    if limit <= 0 or limit > TABLE_ROWS:
        raise ValueError(f"a sharded audit's table shows at most {TABLE_ROWS} rows a list")
    rows = list(itertools.islice(result.take(name, fmt="table"), limit))
    return rows, total - len(rows)


def _workloads(result: AuditResult, limit: int, width: int) -> tuple[Table, int]:
    table = Table(title="Workloads", box=box.SIMPLE_HEAD, title_justify="left")
    rows, hidden = _first(result, "services", limit) or _cap(_comparison.services(result), limit)
    cap = max(20, width // 4)
    places = [_fit(f"{display_path(r.workload.file)}:{r.workload.line}", cap) for r in rows]
    table.add_column("workload", overflow="fold", ratio=3, min_width=10)
    table.add_column(
        "file:line", no_wrap=True, min_width=min(cap, max(map(len, places), default=9))
    )
    table.add_column("service account", overflow="fold", max_width=24)
    table.add_column("approaches", overflow="fold", ratio=3, min_width=10)
    table.add_column("worst", no_wrap=True, min_width=8)
    for row, place in zip(rows, places, strict=True):
        w = row.workload
        table.add_row(
            w.ref,
            place,
            w.service_account,
            ", ".join(row.approaches) or "none",
            _sev(row.worst),
        )
    return table, hidden


def _findings(result: AuditResult, limit: int, width: int) -> tuple[Table, int]:
    table = Table(title="Findings", box=box.SIMPLE_HEAD, title_justify="left")
    rows, hidden = _first(result, "findings", limit) or _cap(ordered(list(result.findings)), limit)
    cap = max(20, width // 4)
    places = [_fit(where(f.evidence), cap) for f in rows]
    table.add_column("severity", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column(
        "file:line", no_wrap=True, min_width=min(cap, max(map(len, places), default=9))
    )
    table.add_column("object and field", overflow="fold", ratio=3, min_width=10)
    table.add_column("finding", overflow="fold", ratio=4, min_width=12)
    for f, place in zip(rows, places, strict=True):
        text = f.message
        if f.evidence.detail:
            text += f"\n[{f.evidence.detail}]"
        state = status(f)
        if state != "open":
            text += f"\n({state}{': ' + f.suppression_reason if f.suppression_reason else ''})"
        sev = _sev(f.severity)
        if state != "open":
            sev.stylize("strike")
        obj = f"{f.evidence.object}\n{f.evidence.path}"
        table.add_row(sev, f.rule_id, place, Text(obj), Text(text))
    return table, hidden


def _matrix(result: AuditResult) -> Table:
    table = Table(title="Comparison", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("approach", no_wrap=True)
    for _, label in _comparison.PROPERTIES:
        table.add_column(label, overflow="fold", ratio=1)
    for approach in _comparison.approaches_in(result):
        cells = [
            Text(cell.text, style=VALUE_STYLE.get(cell.value, ""))
            for cell in _comparison.cells(approach)
        ]
        table.add_row(approach, *cells)
    return table


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    opts = options or RenderOptions()
    out = io.StringIO()
    console = Console(
        file=out,
        width=opts.width,
        color_system="standard" if opts.color else None,
        force_terminal=opts.color,
        no_color=not opts.color,
        highlight=False,
        emoji=False,
        legacy_windows=False,
        soft_wrap=False,
    )
    s = summary(result)
    counts = ", ".join(f"{n} {label}" for label, n in s.by_severity.items() if n)
    console.print(
        Text(
            f"secretsboot audit: {s.workloads} workload(s), {s.counted} finding(s)"
            + (f" ({counts})" if counts else "")
            + f"; {s.suppressed} suppressed, {s.baseline} in baseline; "
            f"{s.over_threshold} at or over threshold '{result.threshold.label}'"
        )
    )
    more = "not shown here; --output json, sarif, markdown or html lists them all"
    if s.findings:
        console.print(_rules(result))
    if s.workloads:
        table, hidden = _workloads(result, opts.max_rows, opts.width)
        console.print(table)
        if hidden:
            console.print(Text(f"... {hidden} more workload(s) {more}"))
    if s.findings:
        table, hidden = _findings(result, opts.max_rows, opts.width)
        console.print(table)
        if hidden:
            console.print(Text(f"... {hidden} more finding(s), the least severe, {more}"))
    if _comparison.approaches_in(result):
        console.print(_matrix(result))
    for e in sorted(result.errors, key=lambda e: (e.file, e.doc_index)):
        console.print(
            Text(f"error: {display_path(e.file)}:{e.line} (document {e.doc_index}): {e.reason}")
        )
    console.print(Text(coverage_line(result)))
    return out.getvalue()
