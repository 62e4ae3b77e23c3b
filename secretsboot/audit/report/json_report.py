"""``--format json``: the documented, versioned machine format (``secretsboot.audit/v1``).

The JSON Schema is shipped as ``secretsboot/audit/schema/audit-report-v1.json``;
the shape::

    {"schema": "secretsboot.audit/v1",
     "tool": {"name": "secretsboot", "version": "0.1.0"},
     "source": {"name": "aks-west"},      # --cluster-name (audit merge's cluster column)
     "threshold": "high",
     "summary": {"workloads": 3, "findings": 9, "counted": 7, "suppressed": 1, ...},
     "workloads": [{"ref": "Deployment/shop/api", "kind": ..., "approaches": [...],
                    "worst": "high", "findings": [{"rule_id", "severity", "fingerprint"}]}],
     "findings": [{"rule_id": "SB101", "severity": "medium", "message": ..., "fix": ...,
                   "evidence": {"object", "path", "file", "line", "detail"},
                   "fingerprint": ..., "suppressed": false, "suppression_reason": null,
                   "baseline": false, ...}],
     "errors": [...], "coverage": {...}, "comparison": {...}}

Output is deterministic (sorted, no timestamps) so it can be diffed and kept as
a golden file. It is written as it is built (:func:`write`, through the C JSON
encoder), compact, one top-level member and one array item per line: at 100,000
workloads the whole text (330 MB) and its dicts were 3 GB of peak memory when built
first and dumped with ``indent=2``.
"""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

from secretsboot.audit.model import SCHEMA_VERSION, AuditResult
from secretsboot.audit.report import _comparison
from secretsboot.audit.report._common import (
    TOOL_NAME,
    RenderOptions,
    error_doc,
    finding_doc,
    ordered,
    summary,
    workload_doc,
    workload_key,
)
from secretsboot.audit.report._rows import SpooledResult
from secretsboot.audit.report._stream import Stream, write_json


def streamed(result: AuditResult) -> dict[str, Any]:
    """The report as plain data whose large arrays (workloads, findings, services) are
    :class:`~secretsboot.audit.report._stream.Stream` s: documents built one at a time
    (or, from a sharded audit, rows its workers encoded, merged in order)."""
    c = result.coverage
    if isinstance(result, SpooledResult):
        workloads = Stream(result.take("workloads", fmt="json"), encoded=True)
        findings = Stream(result.take("findings", fmt="json"), encoded=True)
        services = Stream(result.take("services", fmt="json"), encoded=True)
        comparison = _comparison.comparison_document(result, services=services)
    else:
        by_ref = _comparison.findings_by_workload(result)
        workloads = Stream(
            workload_doc(w, by_ref.get(w.uid, []))
            for w in sorted(result.workloads, key=workload_key)
        )
        findings = Stream(finding_doc(f) for f in ordered(list(result.findings)))
        comparison = _comparison.comparison_document(result, by_ref=by_ref, stream=True)
    return {
        "schema": SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": result.tool_version},
        "source": {"name": result.source or "input"},
        "threshold": result.threshold.label,
        "summary": summary(result).doc(),
        "workloads": workloads,
        "findings": findings,
        "errors": Stream(
            error_doc(e) for e in sorted(result.errors, key=lambda e: (e.file, e.doc_index))
        ),
        "coverage": {
            "files": c.files,
            "documents": c.documents,
            "objects": c.objects,
            "workloads": c.workloads,
            "skipped": dict(sorted(c.skipped.items())),
        },
        "comparison": comparison,
    }


def document(result: AuditResult) -> dict[str, Any]:
    """The report as plain data (what :func:`render` writes), whole in memory."""
    doc: dict[str, Any] = json.loads(render(result))
    return doc


def write(result: AuditResult, stream: TextIO, *, options: RenderOptions | None = None) -> None:
    """Write the JSON report to ``stream`` as it is built (memory stays flat at 100k workloads).

    Layout: one top-level member per line, one workload, finding, error or service per
    line, compact (no spaces); keys in a fixed order; a newline at the end.
    """
    write_json(streamed(result), stream)


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    """The JSON report as text (what :func:`write` writes)."""
    buf = io.StringIO()
    write(result, buf, options=options)
    return buf.getvalue()
