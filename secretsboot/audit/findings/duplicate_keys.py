"""SB106: a key written twice in one YAML mapping (the last one silently wins).

Flagged::

    env:
      - name: DB_PASSWORD
        value: "${DB_PASSWORD}"
        value: "Pa55w0rd-literal"      # SB106: the second ``value`` replaces the first

YAML keeps only the last value of a key written twice, so what a reviewer reads
first is not what is applied: a literal credential can hide behind a reference.
High when the key is under ``env``, ``data``/``stringData``, ``args`` or
``command`` (a value is what is hidden), medium elsewhere. Not flagged: the same
key in two different mappings.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule
from secretsboot.audit.model import Evidence, Finding, Severity, workload_id
from secretsboot.audit.resolve import WORKLOAD_KINDS

SB106 = Rule(
    id="SB106",
    name="duplicate-yaml-key",
    title="Key written twice in one mapping",
    severity=Severity.MEDIUM,
    description=(
        "YAML keeps only the last of two equal keys, silently: the manifest says one thing "
        "to a reader and applies another, which can hide a literal credential."
    ),
    fix="Remove one of the two keys so the manifest says once what it applies.",
)

RULES = (SB106,)
_VALUE_PARTS = (".env[", "data.", "stringData.", ".args", ".command")


def detect(ctx: Context) -> Iterator[Finding]:
    for m in ctx.manifests:
        if not m.duplicates:
            continue
        ref = m.ref
        owner = workload_id(m.file, m.doc_index, ref) if m.kind in WORKLOAD_KINDS else ""
        for path, line in m.duplicates:
            hides_value = any(part in f".{path}" for part in _VALUE_PARTS)
            yield SB106.finding(
                evidence=Evidence(ref, path, m.file, line, "", m.doc_index),
                message=f"'{path}' is written twice in {ref}; the last one applies",
                workload=ref if owner else "",
                workload_id=owner,
                severity=Severity.HIGH if hides_value else Severity.MEDIUM,
            )
