"""``--format html``: one self-contained page a reviewer takes in at a glance.

No external assets and no JavaScript: inline CSS only. First a matrix (rows =
workloads, columns = the approaches found; a cell is coloured by the worst open
finding about that approach for that workload, a plain tick when the workload
uses it with no such finding; the last column is the workload's worst finding
overall; each workload with its file:line), then the comparison table, the rules
(each fix said once), the findings, and coverage.
Every string from the input goes through :func:`html.escape`.
"""

from __future__ import annotations

import html

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

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#1b1f23}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.matrix td.cell{text-align:center;min-width:90px}
.sev-critical{background:#8b0000;color:#fff}.sev-high{background:#e5534b;color:#fff}
.sev-medium{background:#f2cc60}.sev-low{background:#9ecbff}.sev-info{background:#e1e4e8}
.sev-none{background:#acf2bd}.uses{background:#dafbe1}.absent{background:#fff;color:#bbb}
.v-yes{background:#dafbe1}.v-partial{background:#fff8c5}.v-no{background:#ffebe9}
.v-unknown{color:#888}
.quiet{opacity:.55}.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.legend span{display:inline-block;padding:2px 8px;margin-right:4px}
.where{white-space:nowrap;color:#57606a}
""".strip()


def e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _sev_class(severity: Severity | None) -> str:
    return f"sev-{severity.label}" if severity is not None else "sev-none"


def _sev_text(severity: Severity | None) -> str:
    return severity.label if severity is not None else "none"


def _matrix(result: AuditResult) -> list[str]:
    approaches = _comparison.approaches_in(result)
    rows = _comparison.services(result)
    out = ['<table class="matrix"><tr><th>workload</th>']
    out += [f"<th>{e(a)}</th>" for a in approaches]
    out.append("<th>worst</th></tr>")
    for row in rows:
        w = row.workload
        place = f"{display_path(w.file)}:{w.line}"
        out.append(f'<tr><td class="mono">{e(w.ref)}<br><span class="where">{e(place)}</span></td>')
        for a in approaches:
            if a not in row.approaches:
                out.append('<td class="cell absent">·</td>')
                continue
            sev = _comparison.approach_worst(row.findings, a)
            if sev is None:
                out.append(f'<td class="cell uses" title="{e(a)}">✓</td>')
            else:
                out.append(f'<td class="cell {_sev_class(sev)}">{e(sev.label)}</td>')
        out.append(f'<td class="cell {_sev_class(row.worst)}">{e(_sev_text(row.worst))}</td></tr>')
    out.append("</table>")
    legend = "".join(
        f'<span class="{_sev_class(s)}">{e(_sev_text(s))}</span>'
        for s in (*sorted(Severity, reverse=True), None)
    )
    out.append(f'<p class="legend">{legend}<span class="uses">✓ used, no finding</span></p>')
    return out


def _comparison_table(result: AuditResult) -> list[str]:
    out = ["<table><tr><th>approach</th>"]
    out += [f"<th>{e(label)}</th>" for _, label in _comparison.PROPERTIES]
    out.append("</tr>")
    for a in _comparison.approaches_in(result):
        out.append(f"<tr><td>{e(a)}</td>")
        out += [f'<td class="v-{e(c.value)}">{e(c.text)}</td>' for c in _comparison.cells(a)]
        out.append("</tr>")
    out.append("</table>")
    return out


def _rules(result: AuditResult) -> list[str]:
    out = ["<table><tr><th>worst</th><th>rule</th><th>open</th><th>what</th><th>fix</th></tr>"]
    for r in rule_summary(result):
        quiet = f" (+{r.quiet})" if r.quiet else ""
        out.append(
            f'<tr><td class="{_sev_class(r.worst)}">{e(r.worst.label)}</td>'
            f"<td>{e(r.rule_id)}</td><td>{r.open}{quiet}</td><td>{e(r.title)}</td>"
            f"<td>{e(r.fix)}</td></tr>"
        )
    out.append("</table>")
    return out


def _findings(result: AuditResult) -> list[str]:
    out = [
        "<table><tr><th>severity</th><th>rule</th><th>where</th><th>finding</th>"
        "<th>status</th></tr>"
    ]
    for f in ordered(list(result.findings)):
        state = status(f)
        reason = f": {f.suppression_reason}" if f.suppression_reason else ""
        ev = f.evidence
        detail = f"<br><span class=mono>{e(ev.detail)}</span>" if ev.detail else ""
        out.append(
            f'<tr class="{"quiet" if state != "open" else ""}">'
            f'<td class="{_sev_class(f.severity)}">{e(f.severity.label)}</td>'
            f'<td title="{e(f.title)}">{e(f.rule_id)}</td>'
            f'<td class="mono"><span class="where">{e(where(ev))}</span><br>{e(ev.object)}'
            f"<br>{e(ev.path)}</td>"
            f"<td>{e(f.message)}{detail}</td>"
            f"<td>{e(state + reason)}</td></tr>"
        )
    out.append("</table>")
    return out


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    s = summary(result)
    counts = ", ".join(f"{n} {label}" for label, n in s.by_severity.items() if n) or "none"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>secretsboot audit</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>secretsboot audit</h1>",
        f"<p>{s.workloads} workload(s) · {s.counted} open finding(s) ({e(counts)}) · "
        f"{s.suppressed} suppressed · {s.baseline} in baseline · "
        f"<strong>{s.over_threshold} at or over {e(result.threshold.label)}</strong></p>",
    ]
    if result.findings:
        parts += ["<h2>Rules</h2>", *_rules(result)]
    if result.workloads:
        parts += ["<h2>Workloads by approach</h2>", *_matrix(result)]
    if _comparison.approaches_in(result):
        parts += ["<h2>Comparison</h2>", *_comparison_table(result)]
    if result.findings:
        parts += ["<h2>Findings</h2>", *_findings(result)]
    if result.errors:
        parts.append("<h2>Unreadable documents</h2><ul>")
        for err in sorted(result.errors, key=lambda x: (x.file, x.doc_index)):
            parts.append(
                f"<li class=mono>{e(display_path(err.file))}:{err.line} "
                f"(document {err.doc_index}): "
                f"{e(err.reason)}</li>"
            )
        parts.append("</ul>")
    version = e(result.tool_version or "unknown")
    parts.append(f"<p class=mono>{e(coverage_line(result))} · secretsboot {version}</p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
