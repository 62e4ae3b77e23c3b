"""A sharded audit's report rows: encoded by the workers, merged by the writer.

At 100,000 workloads the JSON report's rows (a workload, a finding or a service
each) are 380 MB of text and, before that, 350,000 finding objects. A shard that
knows the report will be JSON or SARIF (:attr:`~secretsboot.audit.engine.
AuditOptions.rows_for`) governs its own findings (:func:`secretsboot.audit.policy.
judge`), encodes each row as the writer would, and sends back *runs*: the rows
sorted by the report's order, pickled in chunks of :data:`CHUNK` and compressed
(a ninth of the text). The parent holds runs and a :class:`~.model.Tally`, never
the findings; the writer merges the runs (:func:`merged`, stable, so rows come out
in exactly the order one process sorts them) and decompresses a chunk at a time.
A SARIF result depends on its finding alone (rule indexes are fixed), so SARIF
takes its results from the same runs.
"""

from __future__ import annotations

import heapq
import pickle
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from secretsboot.audit.model import AuditResult, Finding, Severity, Tally, Workload
from secretsboot.audit.report import _comparison
from secretsboot.audit.report._common import finding_doc, order_key, workload_doc, workload_key
from secretsboot.audit.report._stream import encode

CHUNK = 512  # rows per compressed chunk: what the merge holds of each run at a time

Row = tuple[tuple[Any, ...], Any]  # (sort key, JSON text; for the table, the object)
Run = list[bytes]  # compressed, pickled chunks of rows, in key order


def encode_run(rows: list[Row]) -> Run:
    """``rows`` sorted by key (stable) and packed."""
    rows.sort(key=itemgetter(0))
    return [
        zlib.compress(pickle.dumps(rows[i : i + CHUNK], protocol=pickle.HIGHEST_PROTOCOL), 1)
        for i in range(0, len(rows), CHUNK)
    ]


def _read(run: Run) -> Iterator[Row]:
    run.reverse()
    while run:
        # a run this audit's own worker packed moments ago
        yield from pickle.loads(zlib.decompress(run.pop()))  # noqa: S301


def merged(runs: list[Run]) -> Iterator[Any]:
    """Every row of ``runs`` (its JSON text, or object), in key order; equal keys keep
    run order."""
    for _, text in heapq.merge(*(_read(r) for r in runs), key=itemgetter(0)):
        yield text


@dataclass(slots=True)
class Rows:
    """One shard's (or the parent's) report rows and counts."""

    workloads: Run
    findings: Run
    services: Run
    tally: Tally


ROW_FORMATS = frozenset({"json", "sarif", "table"})
TABLE_ROWS = 300  # what the table shows of each list (RenderOptions.max_rows)


def rows_of(
    workloads: list[Workload], findings: list[Finding], threshold: Severity, fmt: str = "json"
) -> Rows:
    """Encode governed ``workloads`` (their findings attached) and ``findings`` for the
    report ``fmt`` (SARIF has results only; the table shows the first
    :data:`TABLE_ROWS` of each list, so only those travel, as objects)."""
    w_rows: list[Row] = []
    s_rows: list[Row] = []
    if fmt == "table":
        return _table_rows(workloads, findings, threshold)
    if fmt == "json":
        for w in workloads:
            found = w.findings
            w_rows.append((workload_key(w), encode(workload_doc(w, found))))
            row = _comparison.ServiceRow(w, w.approach_ids, _comparison.worst(found), found)
            s_rows.append((_comparison.service_key(w), encode(_comparison.service_doc(row))))
    doc = finding_doc if fmt == "json" else _sarif_result()
    f_rows: list[Row] = [((*order_key(f), *f.sort_key()), encode(doc(f))) for f in findings]
    return Rows(
        encode_run(w_rows),
        encode_run(f_rows),
        encode_run(s_rows),
        Tally.of(workloads, findings, threshold),
    )


def _table_rows(workloads: list[Workload], findings: list[Finding], threshold: Severity) -> Rows:
    services: list[tuple[Any, Any]] = []
    for w in workloads:
        row = _comparison.ServiceRow(w, w.approach_ids, _comparison.worst(w.findings), [])
        services.append((_comparison.service_key(w), row))
    tally = Tally.of(workloads, findings, threshold)
    for w in workloads:
        w.findings = []  # the table's rows of workloads do not list them
    first: list[tuple[Any, Any]] = [((*order_key(f), *f.sort_key()), f) for f in findings]
    return Rows([], _first(first), _first(services), tally)


def _first(rows: list[tuple[Any, Any]]) -> Run:
    rows.sort(key=itemgetter(0))
    return encode_run(rows[:TABLE_ROWS])


def _sarif_result() -> Callable[[Finding], dict[str, Any]]:
    from secretsboot.audit.report import sarif  # the writer imports this module

    index = sarif.rule_indexes()
    uris: dict[str, dict[str, str]] = {}
    return lambda f: sarif.result_doc(f, index, uris)


@dataclass(slots=True)
class SpooledResult(AuditResult):
    """An audit whose workloads and findings are held as encoded report rows: only the
    report they were encoded for (:attr:`format`) can be written from it, once (its
    runs are read as it is written)."""

    parts: list[Rows] = field(default_factory=list)
    counts: Tally = field(default_factory=Tally)
    format: str = "json"

    def tally(self) -> Tally:
        return self.counts

    def approach_ids(self) -> set[str]:
        return self.counts.approaches

    def over_threshold_count(self) -> int:
        return self.counts.over_threshold

    def take(self, name: str, *, fmt: str) -> Iterator[Any]:
        """The merged rows of ``name`` (workloads, findings or services) of report ``fmt``."""
        if fmt != self.format:
            raise ValueError(f"this audit's rows were encoded for {self.format}, not {fmt}")
        return merged([getattr(p, name) for p in self.parts])
