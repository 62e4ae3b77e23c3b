"""What every detector shares: :class:`Rule` metadata, the :class:`Context` it reads, pod views.

A detector is a pure function ``detect(ctx) -> Iterable[Finding]``: it reads the
manifests and workloads held by the :class:`Context` and never does I/O. The
context is built once per run (:func:`build_context`); it is the only place that
knows how to get objects out of the resolver's index, so the detectors do not
depend on the index's shape.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from secretsboot.audit.model import (
    Evidence,
    FieldPath,
    Finding,
    Manifest,
    Severity,
    Workload,
    format_path,
)
from secretsboot.audit.resolve import Index
from secretsboot.audit.resolve import pod_paths as _pod_paths

if TYPE_CHECKING:
    from secretsboot.audit.findings._suppress import Inlines

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Rule:
    """Metadata of one rule id: what the SARIF driver, the docs and the reports show."""

    id: str  # SB101
    name: str  # secret-in-env (kebab-case, SARIF reportingDescriptor.name)
    title: str  # one line
    severity: Severity  # default severity; a finding may be raised or lowered by evidence
    description: str  # why it matters
    fix: str  # what to do
    help: str = ""  # longer guidance (no URIs)

    def finding(
        self,
        *,
        evidence: Evidence,
        message: str,
        workload: str = "",
        workload_id: str = "",
        severity: Severity | None = None,
        fix: str | None = None,
    ) -> Finding:
        if workload and evidence.object != workload:
            # evidence on another object (a ServiceAccount, a binding): keep fingerprints
            # distinct per workload
            evidence = replace(evidence, detail=f"{evidence.detail} (for {workload})".strip())
        return Finding(
            rule_id=self.id,
            title=self.title,
            severity=self.severity if severity is None else severity,
            message=message,
            fix=self.fix if fix is None else fix,
            evidence=evidence,
            workload=workload,
            workload_id=workload_id,
        )


def evidence_at(
    manifest: Manifest, path: FieldPath, detail: str = "", *, ref: str | None = None
) -> Evidence:
    """Evidence pointing at ``path`` inside ``manifest`` (file and line of that field);
    ``ref``: ``manifest.ref`` when the caller holds it (one string shared by its findings)."""
    return Evidence(
        object=manifest.ref if ref is None else ref,
        path=sys.intern(format_path(path)),  # a few dozen paths, 100,000s of findings
        file=manifest.file,
        line=manifest.line_of(path),
        detail=detail,
        doc=manifest.doc_index,
    )


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def same_namespace(a: str, b: str) -> bool:
    """Could objects in namespaces ``a`` and ``b`` end up together once applied?

    An omitted namespace (``""``) is "wherever it is applied", so it matches any
    (the rule of :mod:`secretsboot.audit.resolve`); two explicit ones must be equal.
    """
    return a == b or not a or not b


@dataclass(frozen=True, slots=True)
class Container:
    path: FieldPath  # path of the container object inside the manifest
    body: dict[str, Any]
    list_name: str  # containers | initContainers | ephemeralContainers

    @property
    def name(self) -> str:
        return str(self.body.get("name") or "")

    @property
    def security_context(self) -> dict[str, Any]:
        return as_dict(self.body.get("securityContext"))


@dataclass(frozen=True, slots=True)
class PodView:
    """The pod template of a workload manifest, with field paths relative to the manifest."""

    workload: Workload
    manifest: Manifest
    spec_path: FieldPath  # path of the pod spec
    meta_path: FieldPath  # path of the pod (template) metadata
    spec: dict[str, Any]
    meta: dict[str, Any]
    ref: str  # the manifest's Kind/namespace/name, built once: every finding shares it
    uid: str  # the workload's identity (file, document, Kind/namespace/name), likewise

    @property
    def labels(self) -> dict[str, Any]:
        return as_dict(self.meta.get("labels"))

    @property
    def annotations(self) -> dict[str, Any]:
        return as_dict(self.meta.get("annotations"))

    @property
    def namespace(self) -> str:
        return self.workload.namespace or self.manifest.namespace

    @property
    def service_account(self) -> str:
        sa = self.spec.get("serviceAccountName") or self.spec.get("serviceAccount")
        return str(sa) if sa else "default"

    def containers(self) -> Iterator[Container]:
        for list_name in CONTAINER_LISTS:
            for i, body in enumerate(as_list(self.spec.get(list_name))):
                if isinstance(body, dict):
                    yield Container((*self.spec_path, list_name, i), body, list_name)

    def volumes(self) -> Iterator[tuple[FieldPath, dict[str, Any]]]:
        for i, body in enumerate(as_list(self.spec.get("volumes"))):
            if isinstance(body, dict):
                yield (*self.spec_path, "volumes", i), body

    def at(self, path: FieldPath, detail: str = "") -> Evidence:
        return evidence_at(self.manifest, path, detail, ref=self.ref)

    def finding(
        self,
        rule: Rule,
        *,
        evidence: Evidence,
        message: str,
        severity: Severity | None = None,
        fix: str | None = None,
    ) -> Finding:
        """A finding of ``rule`` about this workload (its ref and identity attached)."""
        return rule.finding(
            evidence=evidence,
            message=message,
            workload=self.ref,
            workload_id=self.uid,
            severity=severity,
            fix=fix,
        )


def pod_paths(kind: str) -> tuple[FieldPath, FieldPath]:
    """(pod spec path, pod metadata path) for a workload kind."""
    return _pod_paths(kind) or (("spec", "template", "spec"), ("spec", "template", "metadata"))


def _dig(body: dict[str, Any], path: FieldPath) -> dict[str, Any]:
    node: Any = body
    for part in path:
        node = as_dict(node).get(str(part))
    return as_dict(node)


@dataclass(frozen=True, slots=True)
class PodFact:
    """What detectors of one workload need to know of every other: who runs as which
    ServiceAccount (SB302 names the workloads sharing one, SB220 asks whether an
    account's pods use workload identity). Computed from the manifest alone
    (:func:`pod_fact`), so a sharded audit gathers them before any shard runs."""

    namespace: str
    service_account: str
    ref: str
    uses_workload_identity: bool


USE_LABEL = "azure.workload.identity/use"


def pod_fact(manifest: Manifest) -> PodFact:
    """The :class:`PodFact` of a workload manifest (as its :class:`PodView` would give it)."""
    spec_path, meta_path = pod_paths(manifest.kind)
    spec, meta = _dig(manifest.body, spec_path), _dig(manifest.body, meta_path)
    sa = spec.get("serviceAccountName") or spec.get("serviceAccount")
    return PodFact(
        namespace=manifest.namespace,
        service_account=str(sa) if sa else "default",
        ref=manifest.ref,
        uses_workload_identity=opts_in_to_workload_identity(as_dict(meta.get("labels"))),
    )


class PodFacts:
    """Every workload's :class:`PodFact`, and the two questions detectors ask of them.

    The lookups are built on first use and then only read, so a sharded audit builds
    them once in the parent (:meth:`warm`) and its forked workers share them."""

    __slots__ = ("_by_account", "_by_name", "facts")

    def __init__(self, facts: list[PodFact]) -> None:
        self.facts = facts
        self._by_account: dict[tuple[str, str], list[str]] | None = None
        self._by_name: dict[str, list[PodFact]] | None = None

    def sharing(self, namespace: str, service_account: str) -> list[str]:
        """Refs of the workloads running as this ServiceAccount, sorted."""
        if self._by_account is None:
            by_account: dict[tuple[str, str], list[str]] = {}
            for f in self.facts:
                by_account.setdefault((f.namespace, f.service_account), []).append(f.ref)
            for refs in by_account.values():
                refs.sort()
            self._by_account = by_account
        return self._by_account.get((namespace, service_account), [])

    def named(self, service_account: str) -> list[PodFact]:
        """The workloads running as a ServiceAccount of this name, in any namespace."""
        if self._by_name is None:
            by_name: dict[str, list[PodFact]] = {}
            for f in self.facts:
                by_name.setdefault(f.service_account, []).append(f)
            self._by_name = by_name
        return self._by_name.get(service_account, [])

    def warm(self) -> PodFacts:
        self.sharing("", "")
        self.named("")
        return self


def opts_in_to_workload_identity(pod_labels: dict[str, Any]) -> bool:
    """Does a pod with these labels get workload identity from the webhook?"""
    return str(pod_labels.get(USE_LABEL) or "").strip().lower() == "true"


@dataclass(slots=True)
class Context:
    """Everything a detector may read. Built by :func:`build_context`; never mutated after.

    Two sets of objects: the ones this run *reports on* (:attr:`manifests`,
    :meth:`of_kind`, :attr:`pods`) and the ones it may *look up* (:meth:`named`,
    :meth:`every`). A whole audit reports on what it looks up; one shard of a large
    audit reports on its own files' objects and looks up every supporting object
    of the input, with :attr:`facts` on every workload and the input's inline
    suppressions (:attr:`inlines`) gathered beforehand.
    """

    manifests: list[Manifest]
    workloads: list[Workload]
    trusted_registries: tuple[str, ...] = ()
    pods: list[PodView] = field(default_factory=list)
    _by_kind: dict[str, list[Manifest]] = field(default_factory=dict)
    _by_name: dict[tuple[str, str], list[Manifest]] = field(default_factory=dict)
    _memo: dict[str, Any] = field(default_factory=dict)  # per-run caches of derived indexes
    _all_by_kind: dict[str, list[Manifest]] | None = None  # lookups (None: the reported set)
    _all_by_name: dict[tuple[str, str], list[Manifest]] | None = None
    facts: PodFacts | None = None  # every workload's (None: from the reported pods)
    inlines: Inlines | None = None  # the input's inline suppressions (None: the reported's)

    def of_kind(self, *kinds: str) -> list[Manifest]:
        """The reported objects of these kinds."""
        out: list[Manifest] = []
        for kind in kinds:
            out.extend(self._by_kind.get(kind, ()))
        return out

    def every(self, *kinds: str) -> list[Manifest]:
        """Every object of these kinds in the input (for lookups, not for reporting)."""
        by_kind = self._by_kind if self._all_by_kind is None else self._all_by_kind
        out: list[Manifest] = []
        for kind in kinds:
            out.extend(by_kind.get(kind, ()))
        return out

    def named(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The object of ``kind`` called ``name`` in ``namespace``: exact first, then compatible."""
        by_name = self._by_name if self._all_by_name is None else self._all_by_name
        loose: Manifest | None = None
        for m in by_name.get((kind, name), ()):
            if m.namespace == namespace:
                return m
            if loose is None and same_namespace(m.namespace, namespace):
                loose = m
        return loose

    def service_account(self, pod: PodView) -> Manifest | None:
        return self.named("ServiceAccount", pod.namespace, pod.service_account)

    def pod_facts(self) -> PodFacts:
        """Every workload's :class:`PodFact` (the whole input's, in a shard too)."""
        if self.facts is None:
            self.facts = PodFacts([pod_fact(p.manifest) for p in self.pods])
        return self.facts


def _find_manifest(workload: Workload, manifests: Iterable[Manifest]) -> Manifest | None:
    best: Manifest | None = None
    for m in manifests:
        if m.file == workload.file and m.line == workload.line:
            return m
        if best is None and same_namespace(m.namespace, workload.namespace):
            best = m
    return best


def build_context(
    manifests: Iterable[Manifest] | Index,
    workloads: Iterable[Workload],
    *,
    trusted_registries: Iterable[str] = (),
    lookup: Index | None = None,
    facts: PodFacts | None = None,
    inlines: Inlines | None = None,
) -> Context:
    """Index the objects once for every detector (reusing the resolver's, when given one).

    ``lookup``: the index to look objects up in when it is not the reported set (a
    shard's); ``facts`` and ``inlines``: gathered over the whole input (see
    :class:`Context`).
    """
    if isinstance(manifests, Index):
        ctx = Context(
            manifests=manifests.manifests,
            workloads=list(workloads),
            trusted_registries=tuple(trusted_registries),
            _by_kind=manifests.by_kind(),
            _by_name=manifests.by_name(),
            _memo=manifests.memo,
        )
    else:
        ctx = Context(
            manifests=list(manifests),
            workloads=list(workloads),
            trusted_registries=tuple(trusted_registries),
        )
        for m in ctx.manifests:
            ctx._by_kind.setdefault(m.kind, []).append(m)
            ctx._by_name.setdefault((m.kind, m.name), []).append(m)
    if lookup is not None:
        ctx._all_by_kind, ctx._all_by_name = lookup.by_kind(), lookup.by_name()
        ctx._memo = lookup.memo  # lookup-derived caches live as long as the lookup index
    ctx.facts, ctx.inlines = facts, inlines
    by_name = ctx._by_name
    for w in ctx.workloads:
        found = w.manifest or _find_manifest(w, by_name.get((w.kind, w.name), ()))
        if found is None:
            continue
        spec_path, meta_path = pod_paths(w.kind)
        ctx.pods.append(
            PodView(
                workload=w,
                manifest=found,
                spec_path=spec_path,
                meta_path=meta_path,
                spec=_dig(found.body, spec_path),
                meta=_dig(found.body, meta_path),
                # the workload's own string when it names the same object: its findings
                # share it rather than holding a copy each
                ref=w.ref if found is w.manifest else found.ref,
                uid=w.uid,
            )
        )
    return ctx


Detector = Callable[[Context], Iterable[Finding]]
