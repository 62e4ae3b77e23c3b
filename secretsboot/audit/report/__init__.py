"""Report formatters, one per module, all ``render(result, *, options=None) -> str``.

==========  ==========================================================
table       terminal tables (rich): workloads, findings, comparison, coverage
json        the versioned machine format (schema/audit-report-v1.json)
markdown    a pull-request comment
html        one self-contained page with the workload x approach matrix
sarif       SARIF 2.1.0 for code scanning
==========  ==========================================================

>>> from secretsboot.audit.model import AuditResult, Coverage
>>> render(AuditResult([], [], [], Coverage()), "json").startswith("{")
True
"""

from __future__ import annotations

from collections.abc import Callable

from secretsboot.audit.model import AuditResult
from secretsboot.audit.report import html_report, json_report, markdown, sarif, table
from secretsboot.audit.report._common import RenderOptions

__all__ = ["FORMATS", "RenderOptions", "render"]

Formatter = Callable[..., str]

FORMATS: dict[str, Formatter] = {
    "table": table.render,
    "json": json_report.render,
    "markdown": markdown.render,
    "html": html_report.render,
    "sarif": sarif.render,
}


def render(result: AuditResult, fmt: str, *, options: RenderOptions | None = None) -> str:
    """The report in format ``fmt`` (table, json, markdown, html or sarif)."""
    try:
        formatter = FORMATS[fmt]
    except KeyError:
        from secretsboot.errors import BadInputError

        raise BadInputError(
            f"unknown report format '{fmt}'", hint=f"use one of {', '.join(FORMATS)}"
        ) from None
    return formatter(result, options=options)
