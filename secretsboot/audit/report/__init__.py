"""Report formatters, one per module, all ``render(result, *, options=None) -> str``.

:func:`render_to` writes a report to a stream: json and sarif are written as they
are built (``write(result, stream, *, options=None)``), so a 100,000-workload
report never exists whole in memory; the other formats are rendered, then written.

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
>>> import io
>>> out = io.StringIO()
>>> render_to(AuditResult([], [], [], Coverage()), "json", out)
>>> out.getvalue() == render(AuditResult([], [], [], Coverage()), "json")
True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TextIO

from secretsboot.audit.model import AuditResult
from secretsboot.audit.report import html_report, json_report, markdown, sarif
from secretsboot.audit.report._common import RenderOptions

__all__ = ["FORMATS", "STREAMING", "RenderOptions", "render", "render_to"]

Formatter = Callable[..., str]
Writer = Callable[..., None]


def _table(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    """The table format, loaded when asked for: it draws with rich, whose import
    costs a run that writes JSON for CI a sixth of its start-up."""
    from secretsboot.audit.report import table

    return table.render(result, options=options)


FORMATS: dict[str, Formatter] = {
    "table": _table,
    "json": json_report.render,
    "markdown": markdown.render,
    "html": html_report.render,
    "sarif": sarif.render,
}
# formats written to a stream as they are built
STREAMING: dict[str, Writer] = {
    "json": json_report.write,
    "sarif": sarif.write,
}


def _formatter(fmt: str) -> Formatter:
    try:
        return FORMATS[fmt]
    except KeyError:
        from secretsboot.errors import BadInputError

        raise BadInputError(
            f"unknown report format '{fmt}'", hint=f"use one of {', '.join(FORMATS)}"
        ) from None


def render(result: AuditResult, fmt: str, *, options: RenderOptions | None = None) -> str:
    """The report in format ``fmt`` (table, json, markdown, html or sarif)."""
    return _formatter(fmt)(result, options=options)


def render_to(
    result: AuditResult, fmt: str, stream: TextIO, *, options: RenderOptions | None = None
) -> None:
    """Write the report in format ``fmt`` to ``stream``, ending with a newline.

    json and sarif are streamed (documents built and written a few hundred at a time);
    the same text as :func:`render`.
    """
    formatter = _formatter(fmt)
    writer = STREAMING.get(fmt)
    if writer is not None:
        writer(result, stream, options=options)
        return
    text = formatter(result, options=options)
    stream.write(text if text.endswith("\n") else text + "\n")
