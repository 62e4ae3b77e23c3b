"""Inline suppressions: ``secretsboot.dev/suppress: "SB101,SB203: reason"`` in a manifest.

Applied by :func:`secretsboot.audit.findings.run_detectors` itself (it holds every
object), so an annotation works with or without a policy file. The annotation may
sit on the object a finding points at, on the workload, or on the workload's pod
template; ``*`` stands for every rule; one clause per line. An annotation that
cannot be read suppresses nothing and is reported as SB903 (info).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from secretsboot.audit.findings._base import Context, evidence_at, pod_paths
from secretsboot.audit.findings.governance import SB903
from secretsboot.audit.model import FieldPath, Finding, Manifest

SUPPRESS_ANNOTATION = "secretsboot.dev/suppress"
_INLINE = re.compile(r"^\s*((?:SB\d{3}|\*)(?:\s*,\s*(?:SB\d{3}|\*))*)\s*:\s*(\S.*?)\s*$")


@dataclass(frozen=True, slots=True)
class Inline:
    rules: frozenset[str]
    reason: str


def parse_inline(value: object) -> list[Inline] | None:
    """Clauses of a ``secretsboot.dev/suppress`` annotation, or None when it cannot be read.

    >>> [(sorted(c.rules), c.reason) for c in parse_inline("SB101, SB203: migrating in Q3")]
    [(['SB101', 'SB203'], 'migrating in Q3')]
    >>> parse_inline("ignore this") is None
    True
    """
    if not isinstance(value, str) or not value.strip():
        return None
    out = []
    for clause in value.strip().splitlines():
        if not clause.strip():
            continue
        match = _INLINE.match(clause)
        if not match:
            return None
        ids = frozenset(x.strip() for x in match.group(1).split(","))
        out.append(Inline(ids, match.group(2)))
    return out


def _sources(m: Manifest) -> list[tuple[FieldPath, Any]]:
    """Where a suppress annotation may sit: the object's metadata and its pod template's."""
    metas: list[FieldPath] = [("metadata",)]
    if m.kind != "Pod":
        metas.append(pod_paths(m.kind)[1])
    out: list[tuple[FieldPath, Any]] = []
    for meta_path in metas:
        node: Any = m.body
        for part in meta_path:
            node = node.get(part) if isinstance(node, dict) else None
        annotations = node.get("annotations") if isinstance(node, dict) else None
        if isinstance(annotations, dict) and SUPPRESS_ANNOTATION in annotations:
            path: FieldPath = (*meta_path, "annotations", SUPPRESS_ANNOTATION)
            out.append((path, annotations[SUPPRESS_ANNOTATION]))
    return out


@dataclass(slots=True)
class Inlines:
    by_key: dict[tuple[str, str], list[Inline]] = field(default_factory=dict)  # (ref, file)
    by_ref: dict[str, list[Inline]] = field(default_factory=dict)
    unreadable: list[Finding] = field(default_factory=list)

    def add(self, other: Inlines) -> None:
        """Add the clauses ``other`` read (from later objects of the input)."""
        for key, clauses in other.by_key.items():
            self.by_key.setdefault(key, []).extend(clauses)
        for ref, clauses in other.by_ref.items():
            self.by_ref.setdefault(ref, []).extend(clauses)
        self.unreadable += other.unreadable

    def lookup(self, ref: str, file: str) -> list[Inline]:
        return self.by_key.get((ref, file)) or self.by_ref.get(ref, [])


def read_inlines(manifests: Iterable[Manifest]) -> Inlines:
    out = Inlines()
    for m in manifests:
        for path, value in _sources(m):
            clauses = parse_inline(value)
            if clauses is None:
                out.unreadable.append(
                    SB903.finding(
                        evidence=evidence_at(m, path),
                        message=(
                            f"{SUPPRESS_ANNOTATION} on {m.ref} is not 'SB101,SB203: reason'; "
                            "it suppresses nothing"
                        ),
                    )
                )
                continue
            out.by_key.setdefault((m.ref, m.file), []).extend(clauses)
            out.by_ref.setdefault(m.ref, []).extend(clauses)
    return out


def apply_inline(ctx: Context, findings: list[Finding]) -> list[Finding]:
    """Mark findings their manifests suppress (``inSource``); returns SB903 findings to add."""
    own = read_inlines(ctx.manifests)  # the reported objects' (their SB903s are this run's)
    inlines: Inlines = own if ctx.inlines is None else ctx.inlines  # looked up: the input's
    workload_files = {p.uid: p.manifest.file for p in ctx.pods}
    for f in findings:
        refs = [(f.evidence.object, f.evidence.file)]
        if f.workload:
            refs.append((f.workload, workload_files.get(f.workload_id, f.evidence.file)))
        for ref, file in refs:
            clause = next(
                (c for c in inlines.lookup(ref, file) if "*" in c.rules or f.rule_id in c.rules),
                None,
            )
            if clause is not None:
                f.suppressed, f.suppression_reason = True, clause.reason
                f.suppression_kind = "inSource"
                break
    return own.unreadable
