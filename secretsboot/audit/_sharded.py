"""A large folder audited in shards, so memory stays flat and both cores classify.

A whole-input audit holds every parsed object at once (about five times the YAML:
570 MB for 100,000 workloads). Here the folder's files are cut into batches and
read twice over, never whole:

1. **Scan** (worker processes, a batch each): parse the batch, keep its
   *supporting* objects (everything that is not a workload kind: ServiceAccounts,
   SecretProviderClasses, Secrets, RBAC, ...), and from each workload manifest only
   what another workload's audit may ask of it: its owners (is it controlled by a
   workload in the input?), its :class:`~secretsboot.audit.findings._base.PodFact`
   (who shares its ServiceAccount) and its inline suppressions. The workload
   manifests themselves go back pickled, one blob per batch, which is a tenth of
   their parsed size and reloads twenty times faster than YAML parses.
2. **Audit** (worker processes started once the scan is done, so they hold the
   supporting objects): a batch's workloads are unpickled, classified and run
   through every detector against the whole input's supporting objects; what comes
   back is the workloads (without their manifests) and their findings.

The parent meanwhile reports on the supporting objects (committed Secrets, RBAC,
webhooks...), then governs and renders as a whole audit does. Every cross-object
question a detector asks is answered from the whole input, so the report is the
same, byte for byte, as one process would write (``tests/audit/test_sharded.py``).
"""

from __future__ import annotations

import collections
import pickle
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from secretsboot.audit import _parallel, fingerprint
from secretsboot.audit.classify import classify, controlled, owners
from secretsboot.audit.findings import attach, run_detectors
from secretsboot.audit.findings._base import PodFact, PodFacts, pod_fact
from secretsboot.audit.findings._suppress import Inlines, read_inlines
from secretsboot.audit.kustomize import folders as kustomize_folders
from secretsboot.audit.loader import Loader, LoadResult, _load_batch, discover
from secretsboot.audit.model import Coverage, Finding, LoadError, Manifest, Severity, Workload
from secretsboot.audit.policy import Policy, Suppression, judge
from secretsboot.audit.report._rows import Rows, rows_of
from secretsboot.audit.resolve import WORKLOAD_KINDS, Index, ns_compatible

Stub = tuple[str, str, str, tuple[tuple[str, str], ...]]  # kind, namespace, name, owners


@dataclass(slots=True)
class Scan:
    """What the scan of one batch of files sends back."""

    coverage: Coverage
    errors: list[LoadError]
    support: list[Manifest]
    stubs: list[Stub]  # one per workload manifest, in input order
    facts: list[PodFact]  # likewise
    inlines: Inlines  # the workload manifests' suppress annotations
    blob: bytes  # the workload manifests, pickled and compressed


@dataclass(slots=True)
class ShardedLoad(LoadResult):
    """A :class:`LoadResult` whose workload manifests are still in their batches:
    ``manifests`` holds the supporting objects only; :func:`run` audits the rest."""

    batches: list[tuple[bytes, list[str | None]]] = field(default_factory=list)
    facts: list[PodFact] = field(default_factory=list)
    inlines: Inlines = field(default_factory=Inlines)


@dataclass(frozen=True, slots=True)
class Judging:
    """Governance, for shards that govern their own findings and send back report rows
    (:mod:`secretsboot.audit.report._rows`): what :func:`~secretsboot.audit.policy.govern`
    would apply, read once by the parent."""

    format: str  # the report the rows are for (json, sarif)
    policy: Policy
    active: list[Suppression]  # the unexpired file suppressions
    baseline: frozenset[str]
    threshold: Severity
    expired: list[Finding]  # SB902, raised once, by the parent


@dataclass(slots=True)
class _Shared:
    """What every audit worker reads: set once, before the pool starts."""

    index: Index
    facts: PodFacts
    inlines: Inlines
    key: bytes
    judging: Judging | None


@dataclass(slots=True)
class Shards:
    """What the shards found: objects, or (with :class:`Judging`) report rows."""

    workloads: list[Workload] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    parts: list[Rows] = field(default_factory=list)


_shared: _Shared | None = None


def _scan(paths: list[str]) -> Scan:
    loaded = _load_batch(paths)
    support: list[Manifest] = []
    work: list[Manifest] = []
    for m in loaded.manifests:
        (work if m.kind in WORKLOAD_KINDS else support).append(m)
    inlines = read_inlines(work)
    inlines.unreadable = []  # reported by the shard that owns the manifest
    return Scan(
        coverage=loaded.coverage,
        errors=loaded.errors,
        support=support,
        stubs=[(m.kind, m.namespace, m.name, owners(m)) for m in work],
        facts=[pod_fact(m) for m in work],
        inlines=inlines,
        # compressed (a quarter of the size): forked audit workers inherit the parent's
        # memory, blobs included, for as long as they live
        blob=zlib.compress(pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL), 1),
    )


def load(paths: list[Path], *, kustomize: bool = False) -> ShardedLoad | None:
    """Scan these folders and files in batches, or None when a whole audit is better
    (little input, one core, kustomize folders to render, or no pool wanted)."""
    loader = Loader()
    files: list[Path] = []
    for p in paths:
        if not p.is_dir():
            files.append(p)
            continue
        found = discover(p)
        if kustomize and kustomize_folders(found):
            return None  # rendered text joins the input: audited whole
        files.extend(loader.unrendered(found))
    if not _parallel.worth_it(files):
        return None
    out = ShardedLoad(coverage=loader.result.coverage)
    stubs: list[list[Stub]] = []
    for scan in _parallel.map_files(_scan, files):
        out.coverage.add(scan.coverage)
        out.errors.extend(scan.errors)
        out.manifests.extend(scan.support)
        out.facts.extend(scan.facts)
        out.inlines.add(scan.inlines)
        stubs.append(scan.stubs)
        out.batches.append((scan.blob, []))
    _decide_workloads(out, stubs)
    return out


def _decide_workloads(out: ShardedLoad, stubs: list[list[Stub]]) -> None:
    """Which workload manifests are workloads of their own (not controlled by another
    in the input), as :func:`~secretsboot.audit.classify.not_a_workload` decides."""
    present: dict[tuple[str, str], list[str]] = collections.defaultdict(list)
    for batch in stubs:
        for kind, namespace, name, _ in batch:
            present[(kind, name)].append(namespace)

    def get(kind: str, namespace: str, name: str) -> bool:
        return any(ns_compatible(n, namespace) for n in present.get((kind, name), ()))

    kept: list[PodFact] = []
    facts = out.facts
    at = 0
    for (_, skips), batch in zip(out.batches, stubs, strict=True):
        for _, namespace, _, owned_by in batch:
            reason = controlled(namespace, owned_by, get) if owned_by else None
            skips.append(reason)
            if reason is None:
                kept.append(facts[at])
            else:
                out.skip(reason)
            at += 1
    out.facts = kept
    out.coverage.workloads = len(kept)


def _install(shared: _Shared) -> None:
    global _shared
    _shared = shared
    fingerprint.pin_key(shared.key)


Result = tuple[list[Workload], list[Finding]] | Rows


def _audit_batch(task: tuple[bytes, list[str | None]]) -> Result:
    blob, skips = task
    shared = _shared
    if shared is None:  # pragma: no cover - the pool's initializer installs it
        raise RuntimeError("an audit worker started without the input's supporting objects")
    with _parallel.no_gc():
        # our own scan wrote this blob moments ago, in a worker of this same audit
        manifests: list[Manifest] = pickle.loads(zlib.decompress(blob))  # noqa: S301
        workloads = [
            classify(m, shared.index) for m, skip in zip(manifests, skips, strict=True) if not skip
        ]
        findings = run_detectors(
            shared.index,
            workloads,
            reported=manifests,
            facts=shared.facts,
            inlines=shared.inlines,
        )
        del manifests
        for w in workloads:
            w.manifest = None
        if shared.judging is not None:
            return _rows(workloads, findings, shared.judging)
        for f in findings:
            _ = f.fingerprint  # made here, in parallel, not in the parent's report
        return workloads, findings


def _rows(workloads: list[Workload], findings: list[Finding], judging: Judging) -> Rows:
    judged = judge(
        findings,
        workloads,
        policy=judging.policy,
        active=judging.active,
        baseline=judging.baseline,
    )
    attach(workloads, judged)
    return rows_of(workloads, judged, judging.threshold, judging.format)


def run(loaded: ShardedLoad, index: Index, judging: Judging | None = None) -> Shards:
    """Audit every batch's workloads against ``index`` (the supporting objects), and the
    supporting objects themselves: workloads in input order, findings unsorted and
    ungoverned; with ``judging``, governed and encoded as report rows instead."""
    facts = PodFacts(loaded.facts).warm()  # built once, before the workers fork
    index.warm()
    shared = _Shared(index, facts, loaded.inlines, fingerprint.audit_key(), judging)
    out = Shards()
    # the parent's share, first: the supporting objects' own findings (which also builds
    # the lookups detectors derive from the index, so the workers inherit them built)
    own = run_detectors(index, [], facts=facts, inlines=loaded.inlines)
    if judging is not None:
        out.parts.append(_rows([], [*own, *judging.expired], judging))
    else:
        out.findings += own
    del own
    pending = collections.deque(loaded.batches)
    loaded.batches = []  # each blob leaves the parent with its batch
    window: collections.deque[Future[Result]] = collections.deque()
    with _parallel.pool(_install, (shared,)) as pool:
        while pending and len(window) < 2 * _parallel.workers():
            window.append(pool.submit(_audit_batch, pending.popleft()))
        while window:  # results in batch order; a new batch goes out as one comes back
            result = window.popleft().result()
            if pending:
                window.append(pool.submit(_audit_batch, pending.popleft()))
            if isinstance(result, Rows):
                out.parts.append(result)
            else:
                out.workloads += result[0]
                out.findings += result[1]
    return out
