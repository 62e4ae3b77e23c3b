"""``--format sarif``: SARIF 2.1.0 for code scanning (GitHub, Azure DevOps).

``tool.driver.rules`` carries every rule's metadata (id, name, short and full
description, help, default level, ``security-severity``); each result has
``ruleId``/``ruleIndex``, ``level``, ``message``, an ``artifactLocation``
relative to ``SRCROOT`` (``originalUriBaseIds``: the folder the audit ran in; an
absolute ``file:///`` URI for a file outside it) with ``region.startLine``, the
workload as a logical location,
``partialFingerprints`` (our line-independent fingerprint) and, for suppressed
findings, ``suppressions`` (``inSource`` for a manifest annotation, ``external``
for a suppressions file). Baselined findings carry ``baselineState: unchanged``.
"""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

from secretsboot.audit.findings import RULES, Rule
from secretsboot.audit.model import AuditResult, Finding, Severity
from secretsboot.audit.report._common import (
    TOOL_NAME,
    RenderOptions,
    artifact_location,
    ordered,
    original_uri_base_ids,
)
from secretsboot.audit.report._rows import SpooledResult
from secretsboot.audit.report._stream import Stream, write_json

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "secretsboot/v1"

LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning buckets: >= 9.0 critical, 7.0-8.9 high, 4.0-6.9 medium, 0.1-3.9 low
SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.0",
}


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    help_text = f"{rule.fix}\n\n{rule.help}".strip() if rule.help else rule.fix
    return {
        "id": rule.id,
        "name": rule.name,
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.description},
        "help": {"text": help_text, "markdown": f"**Fix:** {help_text}"},
        "defaultConfiguration": {"level": LEVEL[rule.severity]},
        "properties": {
            "security-severity": SECURITY_SEVERITY[rule.severity],
            "precision": "high",
            "tags": ["security", "secrets", "kubernetes"],
        },
    }


def result_doc(
    f: Finding, index: dict[str, int], uris: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """One SARIF result (``uris``: artifact locations made so far, by file)."""
    location = uris.get(f.evidence.file)
    if location is None:  # one relpath per file, not per result
        location = uris[f.evidence.file] = artifact_location(f.evidence.file)
    physical: dict[str, Any] = {"artifactLocation": location}
    if f.evidence.line > 0:
        physical["region"] = {"startLine": f.evidence.line}
    text = f.message
    if f.evidence.detail:
        text += f" [{f.evidence.detail}]"
    out: dict[str, Any] = {
        "ruleId": f.rule_id,
        "level": LEVEL[f.severity],
        "message": {"text": f"{text}. Fix: {f.fix}"},
        "locations": [
            {
                "physicalLocation": physical,
                "logicalLocations": [
                    {
                        "fullyQualifiedName": f"{f.evidence.object}:{f.evidence.path}",
                        "kind": "object",
                    }
                ],
            }
        ],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "properties": {
            "severity": f.severity.label,
            "security-severity": SECURITY_SEVERITY[f.severity],
            "workload": f.workload,
            "workload_id": f.workload_id,
        },
    }
    if f.rule_id in index:
        out["ruleIndex"] = index[f.rule_id]
    if f.suppressed:
        out["suppressions"] = [
            {
                "kind": "inSource" if f.suppression_kind == "inSource" else "external",
                "status": "accepted",
                "justification": f.suppression_reason or "suppressed",
            }
        ]
    if f.baseline:
        out["baselineState"] = "unchanged"
    return out


def rule_indexes() -> dict[str, int]:
    """Each rule id's index in the driver's ``rules`` (every rule, sorted by id)."""
    return {rid: i for i, rid in enumerate(sorted(RULES))}


def streamed(result: AuditResult) -> dict[str, Any]:
    """The SARIF log as plain data, its ``results`` a :class:`Stream` built as it is written."""
    rule_ids = sorted(RULES)
    index = rule_indexes()
    uris: dict[str, dict[str, str]] = {}
    if isinstance(result, SpooledResult):
        results = Stream(result.take("findings", fmt="sarif"), encoded=True)
    else:
        results = Stream(result_doc(f, index, uris) for f in ordered(list(result.findings)))
    return {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": result.tool_version or "0.0.0",
                        "semanticVersion": result.tool_version or "0.0.0",
                        "rules": [rule_descriptor(RULES[rid]) for rid in rule_ids],
                    }
                },
                "originalUriBaseIds": original_uri_base_ids(),
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def document(result: AuditResult) -> dict[str, Any]:
    """The SARIF log as plain data, whole in memory (what :func:`render` writes)."""
    doc: dict[str, Any] = json.loads(render(result))
    return doc


def write(result: AuditResult, stream: TextIO, *, options: RenderOptions | None = None) -> None:
    """Write the SARIF log to ``stream`` as it is built: one result per line, compact."""
    write_json(streamed(result), stream)


def render(result: AuditResult, *, options: RenderOptions | None = None) -> str:
    buf = io.StringIO()
    write(result, buf, options=options)
    return buf.getvalue()
