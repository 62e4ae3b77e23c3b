"""``--format json``: the documented, versioned machine format (``secretsboot.audit/v1``).

The JSON Schema is shipped as ``secretsboot/audit/schema/audit-report-v1.json``;
the shape::

    {"schema": "secretsboot.audit/v1",
     "tool": {"name": "secretsboot", "version": "0.1.0"},
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
a golden file.
"""

from __future__ import annotations

import json
from typing import Any

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
)


def document(result: AuditResult) -> dict[str, Any]:
    """The report as plain data (what :func:`render` serialises)."""
    c = result.coverage
    workloads = sorted(result.workloads, key=lambda w: (w.file, w.line, w.ref))
    by_ref = _comparison.findings_by_workload(result)
    return {
        "schema": SCHEMA_VERSION,
        "tool": {"name": TOOL_NAME, "version": result.tool_version},
        "threshold": result.threshold.label,
        "summary": summary(result).doc(),
        "workloads": [workload_doc(w, by_ref.get(w.ref, [])) for w in workloads],
        "findings": [finding_doc(f) for f in ordered(list(result.findings))],
        "errors": [
            error_doc(e) for e in sorted(result.errors, key=lambda e: (e.file, e.doc_index))
        ],
        "coverage": {
            "files": c.files,
            "documents": c.documents,
            "objects": c.objects,
            "workloads": c.workloads,
            "skipped": dict(sorted(c.skipped.items())),
        },
        "comparison": _comparison.comparison_document(result),
    }


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    """The JSON report, indented, keys in a fixed order, ending with a newline."""
    return json.dumps(document(result), indent=2, ensure_ascii=False) + "\n"
