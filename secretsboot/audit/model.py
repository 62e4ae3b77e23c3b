"""The audit's data model, shared by the loader, classifier, detectors and formatters.

A :class:`Manifest` is one Kubernetes object as read (file, document index,
line). A :class:`Workload` is a pod-bearing object with the approaches it uses
(each with :class:`Evidence`). A :class:`Finding` is something wrong, with a
stable rule id, a severity, evidence and the fix. An :class:`AuditResult` holds
everything a formatter needs. No field ever holds a secret value: literals are
carried as :func:`secretsboot.secret.fingerprint` and a redacted preview.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

SCHEMA_VERSION = "secretsboot.audit/v1"

FieldPath = tuple[str | int, ...]


def format_path(path: FieldPath) -> str:
    """``("spec", "containers", 0, "env")`` -> ``spec.containers[0].env``.

    >>> format_path(("spec", "containers", 0, "env", 2, "valueFrom"))
    'spec.containers[0].env[2].valueFrom'
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


@functools.lru_cache(maxsize=4096)
def display_path(file: str) -> str:
    """A file as people read it: relative to the current folder when under it, with ``/``.

    >>> display_path("<stdin>"), display_path("k8s/app.yaml")
    ('<stdin>', 'k8s/app.yaml')
    """
    if not file or file.startswith("<") or file == "-":
        return file
    try:
        rel = os.path.relpath(file)
    except ValueError:  # another drive
        return file
    if rel.startswith(".."):
        return os.path.abspath(file).replace(os.sep, "/")
    return rel.replace(os.sep, "/")


def workload_id(file: str, doc: int, ref: str) -> str:
    """The identity of an object everywhere (findings, matrix, JSON, SARIF, baselines):
    ``file#document:Kind/namespace/name``, the file as :func:`display_path` shows it.

    >>> workload_id("base/app.yaml", 0, "Deployment/shop/api")
    'base/app.yaml#0:Deployment/shop/api'
    """
    return f"{display_path(file)}#{doc}:{ref}"


class Severity(IntEnum):
    """Ordered so that ``max()`` gives the worst."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.label for s in cls)
            raise ValueError(f"unknown severity '{text}'; expected one of {names}") from None


_LABELS = {s: s.name.lower() for s in Severity}


@dataclass(frozen=True, slots=True)
class Manifest:
    """One object as read: where it came from and its parsed body."""

    file: str
    doc_index: int
    line: int
    body: dict[str, Any]
    # line of each key path inside the document (from secretsboot._yaml), when the loader has it
    lines: Mapping[FieldPath, int] = field(default_factory=dict, compare=False, repr=False)
    # keys written twice in one mapping: (dotted field path, line); YAML keeps the last
    duplicates: tuple[tuple[str, int], ...] = field(default=(), compare=False, repr=False)

    def line_of(self, path: FieldPath) -> int:
        """The line of ``path`` in the file, or of its nearest known parent, or the object's."""
        nearest = getattr(self.lines, "nearest", None)  # the loader's line index: one walk
        if nearest is not None:
            return nearest(path) or self.line
        for end in range(len(path), 0, -1):
            found = self.lines.get(path[:end])
            if found:
                return found
        return self.line

    @property
    def kind(self) -> str:
        return str(self.body.get("kind") or "")

    @property
    def api_version(self) -> str:
        return str(self.body.get("apiVersion") or "")

    @property
    def name(self) -> str:
        meta = self.body.get("metadata")
        return str(meta.get("name") or "") if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str:
        """The object's namespace as written ('' when the manifest leaves it out)."""
        meta = self.body.get("metadata")
        return str(meta.get("namespace") or "") if isinstance(meta, dict) else ""

    @property
    def ref(self) -> str:
        """``Kind/namespace/name`` (namespace omitted when empty)."""
        ns = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{ns}{self.name}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where an approach or finding shows: the object and the field path in it."""

    object: str  # Kind/namespace/name
    path: str  # e.g. spec.template.spec.containers[0].env[2].valueFrom.secretKeyRef
    file: str = ""
    line: int = 0
    detail: str = ""  # never a secret value; a keyed fingerprint at most
    doc: int = 0  # index of the document in its file (with file + object: the object's identity)


@dataclass(frozen=True, slots=True)
class Approach:
    """One secret-delivery approach a workload uses (ids of REFERENCE.md section 3)."""

    id: str  # workload-identity, keyvault-csi, k8s-secret-env, secretsboot-init, ...
    evidence: tuple[Evidence, ...]
    mode: str = ""  # identity sub-mode where known, e.g. "workload-identity", "service-principal"


@dataclass(slots=True)
class Finding:
    """Something wrong, with a stable rule id (``SB1xx``), severity, evidence and the fix."""

    rule_id: str
    title: str
    severity: Severity
    message: str
    fix: str
    evidence: Evidence
    workload: str = ""  # Kind/namespace/name of the workload, '' for object-level findings
    # the workload's identity (file#document:Kind/namespace/name, see workload_id), '' for
    # object-level findings: two same-named workloads in two files never share findings
    workload_id: str = ""
    suppressed: bool = False
    suppression_reason: str = ""
    suppression_kind: str = ""  # "inSource" (annotation) or "external" (suppressions file)
    baseline: bool = False  # present in the baseline: reported, not counted
    # the fingerprint once made: what it is made of never changes after the detector
    _fingerprint: str = field(default="", init=False, compare=False, repr=False)

    def sort_key(self) -> tuple[str, int, str, str, str, str, str]:
        """The order of findings in a result: file, line, rule, object, path, detail, workload."""
        e = self.evidence
        return (e.file, e.line, self.rule_id, e.object, e.path, e.detail, self.workload_id)

    @property
    def fingerprint(self) -> str:
        """Stable across runs and line moves: rule, the identity of the workload (or of the
        object: file, document, Kind/namespace/name), field path and detail."""
        if not self._fingerprint:
            e = self.evidence
            owner = self.workload_id or workload_id(e.file, e.doc, e.object)
            key = "|".join((self.rule_id, owner, e.object, e.path, e.detail))
            self._fingerprint = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self._fingerprint


@dataclass(slots=True)
class Workload:
    """A pod-bearing object and how it gets its secrets."""

    kind: str
    namespace: str
    name: str
    file: str
    line: int
    service_account: str
    approaches: list[Approach] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    # the object it was classified from (None when built by hand); not part of equality
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    doc_index: int = 0  # the document of its file it was read from
    # (kind, namespace, name, ref) the ref was last built from: reports ask for it per finding
    _ref: tuple[str, str, str, str] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    @property
    def ref(self) -> str:
        """``Kind/namespace/name``, built once (and again only if one of them changes)."""
        cached = self._ref
        if (
            cached is not None
            and cached[0] is self.kind
            and cached[1] is self.namespace
            and cached[2] is self.name
        ):
            return cached[3]
        ns = f"{self.namespace}/" if self.namespace else ""
        ref = f"{self.kind}/{ns}{self.name}"
        self._ref = (self.kind, self.namespace, self.name, ref)
        return ref

    @property
    def uid(self) -> str:
        """Its identity: file, document and Kind/namespace/name (:func:`workload_id`)."""
        return workload_id(self.file, self.doc_index, self.ref)

    @property
    def approach_ids(self) -> list[str]:
        return sorted({a.id for a in self.approaches})

    @property
    def worst(self) -> Severity | None:
        active = [f.severity for f in self.findings if not f.suppressed and not f.baseline]
        return max(active) if active else None


@dataclass(frozen=True, slots=True)
class LoadError:
    """A document that could not be read; the rest of the input is still audited."""

    file: str
    doc_index: int
    line: int
    reason: str  # e.g. "invalid YAML: ...", "unrendered Helm template"


@dataclass(slots=True)
class Coverage:
    files: int = 0
    documents: int = 0
    objects: int = 0
    workloads: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def add(self, other: Coverage) -> None:
        """Count what ``other`` (a batch read elsewhere) covered too."""
        self.files += other.files
        self.documents += other.documents
        self.objects += other.objects
        self.workloads += other.workloads
        for reason, n in other.skipped.items():
            self.skipped[reason] = self.skipped.get(reason, 0) + n


@dataclass(slots=True)
class RuleStat:
    """One rule's findings, counted: what a report's per-rule summary shows."""

    title: str
    fix: str  # of the rule's first finding (in :meth:`Finding.sort_key` order)
    first: tuple[str, int, str, str, str, str, str]
    open: int = 0
    quiet: int = 0  # suppressed or in the baseline
    worst_open: Severity = Severity.INFO
    worst_any: Severity = Severity.INFO

    @property
    def worst(self) -> Severity:
        """The worst open finding's severity, else the worst of all."""
        return self.worst_open if self.open else self.worst_any

    def count(self, f: Finding, key: tuple[str, int, str, str, str, str, str]) -> None:
        if key < self.first:
            self.title, self.fix, self.first = f.title, f.fix, key
        if f.suppressed or f.baseline:
            self.quiet += 1
        else:
            self.open += 1
            self.worst_open = max(self.worst_open, f.severity)
        self.worst_any = max(self.worst_any, f.severity)

    def add(self, other: RuleStat) -> None:
        if other.first < self.first:
            self.title, self.fix, self.first = other.title, other.fix, other.first
        self.open += other.open
        self.quiet += other.quiet
        self.worst_open = max(self.worst_open, other.worst_open)
        self.worst_any = max(self.worst_any, other.worst_any)


@dataclass(slots=True)
class Tally:
    """What a report counts of an audit's findings (its summary), made in parts and added
    up when the findings are not held in one place (:mod:`secretsboot.audit._sharded`)."""

    workloads: int = 0
    findings: int = 0
    counted: int = 0  # neither suppressed nor in the baseline
    suppressed: int = 0
    baseline: int = 0  # in the baseline and not suppressed
    over_threshold: int = 0
    by_severity: dict[Severity, int] = field(default_factory=dict)  # of the counted ones
    approaches: set[str] = field(default_factory=set)  # approach ids the workloads use
    rules: dict[str, RuleStat] = field(default_factory=dict)

    @classmethod
    def of(cls, workloads: list[Workload], findings: list[Finding], threshold: Severity) -> Tally:
        t = cls(workloads=len(workloads), findings=len(findings))
        for w in workloads:
            t.approaches.update(a.id for a in w.approaches)
        rules = t.rules
        for f in findings:
            key = f.sort_key()
            stat = rules.get(f.rule_id)
            if stat is None:
                stat = rules[f.rule_id] = RuleStat(f.title, f.fix, key)
            stat.count(f, key)
            if f.suppressed:
                t.suppressed += 1
            elif f.baseline:
                t.baseline += 1
            else:
                t.counted += 1
                t.by_severity[f.severity] = t.by_severity.get(f.severity, 0) + 1
                t.over_threshold += f.severity >= threshold
        return t

    def add(self, other: Tally) -> None:
        self.workloads += other.workloads
        self.findings += other.findings
        self.counted += other.counted
        self.suppressed += other.suppressed
        self.baseline += other.baseline
        self.over_threshold += other.over_threshold
        for severity, n in other.by_severity.items():
            self.by_severity[severity] = self.by_severity.get(severity, 0) + n
        self.approaches |= other.approaches
        for rule_id, stat in other.rules.items():
            mine = self.rules.get(rule_id)
            if mine is None:
                self.rules[rule_id] = stat
            else:
                mine.add(stat)


@dataclass(slots=True)
class AuditResult:
    workloads: list[Workload]
    findings: list[Finding]  # every finding, workload-level and object-level
    errors: list[LoadError]
    coverage: Coverage
    threshold: Severity = Severity.HIGH
    tool_version: str = ""
    source: str = ""  # what was audited: a cluster's name (--cluster-name), or the input

    def counted(self) -> list[Finding]:
        """Findings that count against the threshold: not suppressed, not in the baseline."""
        return [f for f in self.findings if not f.suppressed and not f.baseline]

    def over_threshold(self) -> list[Finding]:
        return [f for f in self.counted() if f.severity >= self.threshold]

    def over_threshold_count(self) -> int:
        return len(self.over_threshold())

    def approach_ids(self) -> set[str]:
        """Every approach id a workload uses."""
        return {a.id for w in self.workloads for a in w.approaches}

    def tally(self) -> Tally:
        """The summary's counts."""
        return Tally.of(self.workloads, self.findings, self.threshold)
