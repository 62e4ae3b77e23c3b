"""``secretsboot audit merge``: one fleet report from many clusters' JSON reports, streamed.

>>> import io, json
>>> fleet = Fleet()
>>> fleet.add(io.StringIO(json.dumps({"schema": "secretsboot.audit/v1",
...     "source": {"name": "west"}, "workloads": [{"approaches": [{"id": "keyvault-csi"}]}],
...     "findings": []})), "west.json").name
'west'
>>> fleet.clusters["west"].workloads, dict(fleet.approaches)
(1, {'keyvault-csi': 1})

Each input is a JSON report of ``secretsboot audit -o json`` (``secretsboot.audit/v1``);
its ``source.name`` (``--cluster-name``, by default the kube context or the input)
names the cluster, else the file's name. Reports are read line by line in the
layout the audit writes (one workload or finding per line), so 100 reports of
10,000 workloads each merge holding only the totals, the worst findings shown
(:data:`TOP_FINDINGS`) and one line at a time; a report in any other JSON layout
is read whole.

What the fleet report holds: per cluster (workloads, open findings by severity,
unreadable documents), totals per approach (workloads using it, per cluster) and
per rule (open findings by severity, per cluster), and the worst open findings
with their cluster. SARIF writes one run per cluster with every finding, streamed
in a second pass.
"""

from __future__ import annotations

import heapq
import html
import io
import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from secretsboot.audit.model import SCHEMA_VERSION, Severity
from secretsboot.errors import BadInputError

TOP_FINDINGS = 100
SEVERITIES = [s.label for s in sorted(Severity, reverse=True)]
_RANK = {s.label: int(s) for s in Severity}
# the audit writes each workload and finding on one line, keys in a fixed order
_APPROACH = re.compile(r'\{"id":"([^"\\]*)","mode":')
_FINDING = re.compile(r'\{"rule_id":"([^"\\]*)","title":"((?:[^"\\]|\\.)*)","severity":"(\w+)"')


def _events(stream: TextIO, name: str) -> Iterator[tuple[str, Any]]:
    """(member, value) for each top-level member, and (member, item) for each item of the
    ``workloads`` and ``findings`` arrays, in the layout the audit writes."""
    first = stream.readline()
    if first.strip() != "{":
        yield from _whole(first + stream.read(), name)
        return
    array: str | None = None
    for raw in stream:
        line = raw.strip().rstrip(",")
        if not line or line in ("}", "{"):
            continue
        if array is not None:
            if line == "]":
                array = None
            elif line[:1] != "{":
                raise BadInputError(f"{name}: not a secretsboot JSON report (a broken array)")
            else:
                yield array, line  # read lazily: most lines need only a few fields
            continue
        key, sep, value = line.partition(":")
        if not sep:
            _loads(line, name)  # raises on anything that is not JSON
            continue
        member = _loads(key, name)
        if value == "[":
            array = member
        elif value != "{":
            yield member, _loads(value, name)


def _whole(text: str, name: str) -> Iterator[tuple[str, Any]]:
    doc = _loads(text, name)
    if not isinstance(doc, dict):
        raise BadInputError(f"{name}: not a secretsboot JSON report", hint="use -o json reports")
    for key, value in doc.items():
        if key in ("workloads", "findings") and isinstance(value, list):
            for item in value:
                yield key, item
        else:
            yield key, value


def _loads(text: str, name: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInputError(
            f"{name}: not a secretsboot JSON report ({exc.msg})",
            hint="merge the reports of `secretsboot audit -o json`",
        ) from None


@dataclass(slots=True)
class Cluster:
    name: str
    file: str
    workloads: int = 0
    errors: int = 0
    open: Counter[str] = field(default_factory=Counter)  # open findings by severity

    @property
    def worst(self) -> str:
        return next((s for s in SEVERITIES if self.open.get(s)), "none")


@dataclass(slots=True)
class Part:
    """One report condensed to what the fleet report needs of it (:func:`condense`): its
    cluster, its totals, and its worst findings with their order in the report."""

    cluster: Cluster
    approaches: Counter[str] = field(default_factory=Counter)
    rules: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> severity -> n
    rule_titles: dict[str, str] = field(default_factory=dict)  # first title seen per rule
    top: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # a min-heap
    seen: int = 0  # open findings read: the order of the next one in the report

    def workload(self, doc: dict[str, Any] | str) -> None:
        self.cluster.workloads += 1
        if isinstance(doc, str):  # a line of the audit's own layout: approaches by pattern
            ids = set(_APPROACH.findall(doc))
        else:
            ids = {str(a.get("id")) for a in doc.get("approaches") or ()}
        for approach in ids:
            self.approaches[approach] += 1

    def finding(self, doc: dict[str, Any] | str) -> None:
        if isinstance(doc, str):
            fields = _FINDING.match(doc)
            if fields is None:
                self.finding(_loads(doc, self.cluster.file))
                return
            if '"suppressed":true' in doc or '"baseline":true' in doc:
                return
            rule, title, severity = fields.groups()
            self._count(rule, severity, json.loads(f'"{title}"'))
            rank = _RANK.get(severity, 0)
            if len(self.top) < TOP_FINDINGS or (rank, -self.seen - 1) > self.top[0][:2]:
                self._keep(rank, _loads(doc, self.cluster.file))
            else:
                self.seen += 1
            return
        if doc.get("suppressed") or doc.get("baseline"):
            return
        rule, severity = str(doc.get("rule_id")), str(doc.get("severity"))
        self._count(rule, severity, str(doc.get("title") or ""))
        self._keep(_RANK.get(severity, 0), doc)

    def _count(self, rule: str, severity: str, title: str) -> None:
        self.cluster.open[severity] += 1
        self.rules.setdefault(rule, Counter())[severity] += 1
        self.rule_titles.setdefault(rule, title)

    def _keep(self, rank: int, doc: dict[str, Any]) -> None:
        """Keep ``doc`` if it is among the worst :data:`TOP_FINDINGS` of the report so far."""
        self.seen += 1
        entry = (rank, -self.seen, {**doc, "cluster": self.cluster.file})
        if len(self.top) < TOP_FINDINGS:
            heapq.heappush(self.top, entry)
        elif entry[:2] > self.top[0][:2]:
            heapq.heapreplace(self.top, entry)


FindingHook = Callable[[dict[str, Any], str], None]  # (finding, cluster name so far)


def condense(stream: TextIO, file: str, on_finding: FindingHook | None = None) -> Part:
    """Read one JSON report into a :class:`Part`; ``on_finding`` sees every finding."""
    part = Part(Cluster(Path(file).stem, file))
    schema = None
    for member, value in _events(stream, file):
        if member == "schema":
            schema = value
        if member == "schema" and value != SCHEMA_VERSION:
            raise BadInputError(f"{file}: schema {value!r}, expected {SCHEMA_VERSION}")
        elif member == "source" and isinstance(value, dict) and value.get("name"):
            part.cluster.name = str(value["name"])
        elif member == "workloads":
            part.workload(value)
        elif member == "findings" and on_finding is not None:
            doc = _loads(value, file) if isinstance(value, str) else value
            on_finding(doc, part.cluster.name)
            part.finding(doc)
        elif member == "findings":
            part.finding(value)
        elif member == "summary" and isinstance(value, dict):
            part.cluster.errors = int(value.get("errors") or 0)
    if schema is None:
        raise BadInputError(
            f"{file}: not a secretsboot JSON report (no schema)",
            hint="merge the reports of `secretsboot audit -o json`",
        )
    return part


def condense_file(path: str, on_finding: FindingHook | None = None) -> Part:
    """:func:`condense` of the report at ``path`` (what a worker process runs)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return condense(fh, path, on_finding)
    except OSError as exc:
        raise BadInputError(
            f"{path}: cannot read ({exc.strerror})", hint="check the path"
        ) from None


@dataclass(slots=True)
class Fleet:
    """The totals of every report added (:meth:`add`, :meth:`absorb`), and the worst findings."""

    clusters: dict[str, Cluster] = field(default_factory=dict)
    approaches: Counter[str] = field(default_factory=Counter)
    approach_clusters: dict[str, Counter[str]] = field(default_factory=dict)
    rules: dict[str, Counter[str]] = field(default_factory=dict)  # rule -> severity -> n
    rule_titles: dict[str, str] = field(default_factory=dict)
    rule_clusters: dict[str, Counter[str]] = field(default_factory=dict)
    top: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)  # a min-heap
    _seq: int = 0

    def add(self, stream: TextIO, file: str) -> Cluster:
        return self.absorb(condense(stream, file))

    def absorb(self, part: Part) -> Cluster:
        """Add one condensed report; reports absorbed in input order give the same fleet
        whether they were condensed here or in worker processes."""
        cluster = part.cluster
        if cluster.name in self.clusters:
            cluster.name = f"{cluster.name} ({cluster.file})"
        self.clusters[cluster.name] = cluster
        for approach, n in part.approaches.items():
            self.approaches[approach] += n
            self.approach_clusters.setdefault(approach, Counter())[cluster.name] += n
        for rule, counts in part.rules.items():
            self.rules.setdefault(rule, Counter()).update(counts)
            self.rule_clusters.setdefault(rule, Counter())[cluster.name] += sum(counts.values())
        for rule, title in part.rule_titles.items():
            self.rule_titles.setdefault(rule, title)
        # the worst of the fleet are among the worst of each report: the same heap entries
        # (severity, order of reading) as if every finding had been read here
        for rank, order, doc in part.top:
            entry = (rank, order - self._seq, doc)
            if len(self.top) < TOP_FINDINGS:
                heapq.heappush(self.top, entry)
            elif entry[:2] > self.top[0][:2]:
                heapq.heapreplace(self.top, entry)
        self._seq += part.seen
        return cluster

    def worst_findings(self) -> list[dict[str, Any]]:
        """The worst open findings kept, worst first, each with its cluster's name."""
        names = {c.file: c.name for c in self.clusters.values()}
        out = []
        for _, _, doc in sorted(self.top, key=lambda e: (-e[0], -e[1])):
            out.append({**doc, "cluster": names.get(doc["cluster"], doc["cluster"])})
        return out

    def totals(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for c in self.clusters.values():
            out.update(c.open)
        return out


PARALLEL_MIN_BYTES = 8 * 1024 * 1024  # below this, starting worker processes costs more


def _worth_a_pool(paths: list[Path]) -> bool:
    from secretsboot.audit import _parallel

    if not _parallel.enabled() or len(paths) < 2:
        return False
    return _parallel.total_size(paths, PARALLEL_MIN_BYTES) >= PARALLEL_MIN_BYTES


def _condensed(paths: list[Path], parallel: bool | None) -> Iterator[Part]:
    """Each report condensed, in input order; large inputs by worker processes."""
    from secretsboot.audit import _parallel

    if parallel is None:
        parallel = _worth_a_pool(paths)
    if not parallel:
        yield from (condense_file(str(p)) for p in paths)
        return
    yield from _parallel.map_ordered(condense_file, [str(p) for p in paths])


def merge(paths: list[Path], *, parallel: bool | None = None) -> Fleet:
    """The fleet of these reports. ``parallel``: read them in worker processes (None: when
    there are several reports and enough bytes to be worth it; the result is the same)."""
    fleet = Fleet()
    for part in _condensed(paths, parallel):
        fleet.absorb(part)
    return fleet


# --- formats ------------------------------------------------------------------------------------


def _where(doc: dict[str, Any]) -> str:
    ev = doc.get("evidence") or {}
    return f"{ev.get('file', '')}:{ev.get('line', 0)}"


def _rows(fleet: Fleet) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Every table of the fleet report as (header, rows)."""
    names = list(fleet.clusters)
    totals = fleet.totals()
    clusters = [
        [c.name, str(c.workloads), *(str(c.open.get(s, 0)) for s in SEVERITIES), c.worst]
        for c in fleet.clusters.values()
    ]
    clusters.append(
        [
            "total",
            str(sum(c.workloads for c in fleet.clusters.values())),
            *(str(totals.get(s, 0)) for s in SEVERITIES),
            next((s for s in SEVERITIES if totals.get(s)), "none"),
        ]
    )
    approaches = [
        [a, str(n), *(str(fleet.approach_clusters[a].get(c, 0)) for c in names)]
        for a, n in sorted(fleet.approaches.items(), key=lambda x: (-x[1], x[0]))
    ]
    rules = [
        [r, fleet.rule_titles.get(r, ""), *(str(fleet.rules[r].get(s, 0)) for s in SEVERITIES)]
        for r in sorted(fleet.rules)
    ]
    findings = [
        [str(d.get("severity")), str(d.get("rule_id")), d["cluster"], _where(d), str(d["message"])]
        for d in fleet.worst_findings()
    ]
    return {
        "Clusters": (["cluster", "workloads", *SEVERITIES, "worst"], clusters),
        "Approaches": (["approach", "workloads", *names], approaches),
        "Rules": (["rule", "title", *SEVERITIES], rules),
        f"Worst findings (up to {TOP_FINDINGS})": (
            ["severity", "rule", "cluster", "file:line", "finding"],
            findings,
        ),
    }


def render_table(fleet: Fleet, width: int = 120) -> str:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    out = io.StringIO()
    console = Console(file=out, width=width, no_color=True, highlight=False, emoji=False)
    for title, (header, rows) in _rows(fleet).items():
        table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
        for i, name in enumerate(header):
            table.add_column(name, overflow="fold", no_wrap=name == "file:line" or i == 0)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    return out.getvalue()


def render_markdown(fleet: Fleet) -> str:
    def cell(text: str) -> str:
        return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")

    out = [f"## secretsboot fleet audit: {len(fleet.clusters)} cluster(s)"]
    for title, (header, rows) in _rows(fleet).items():
        out += ["", f"### {title}", "", "| " + " | ".join(header) + " |"]
        out.append("|" + "---|" * len(header))
        out += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


def render_html(fleet: Fleet) -> str:
    from secretsboot.audit.report.html_report import CSS

    e = html.escape
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>secretsboot fleet audit</title>',
        f"<style>{CSS}</style></head><body>",
        f"<h1>secretsboot fleet audit: {len(fleet.clusters)} cluster(s)</h1>",
    ]
    for title, (header, rows) in _rows(fleet).items():
        out += [f"<h2>{e(title)}</h2>", "<table><tr>"]
        out += [f"<th>{e(h)}</th>" for h in header]
        out.append("</tr>")
        for row in rows:
            out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
        out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _sarif_head() -> str:
    from secretsboot.audit.report._stream import encode
    from secretsboot.audit.report.sarif import SARIF_SCHEMA

    return f'{{"$schema":{encode(SARIF_SCHEMA)},"version":"2.1.0","runs":[\n'


def write_sarif(fleet: Fleet, stream: TextIO, *, parallel: bool | None = None) -> None:
    """One SARIF run per cluster (``automationDetails.id`` = the cluster), every finding,
    read again from each report as it is written (by worker processes for large inputs,
    written in cluster order: the same text either way)."""
    stream.write(_sarif_head())
    jobs = [(c.file, c.name) for c in fleet.clusters.values()]
    if parallel is None:
        parallel = _worth_a_pool([Path(file) for file, _ in jobs])
    if parallel:
        from secretsboot.audit import _parallel

        runs: Iterator[str] = _parallel.map_ordered(sarif_run, jobs)
    else:
        runs = map(sarif_run, jobs)
    for n, run in enumerate(runs):
        stream.write(("," if n else "") + run)
    stream.write("]}\n")


def merge_sarif(paths: list[Path], stream: TextIO, *, parallel: bool | None = None) -> Fleet:
    """:func:`merge` and :func:`write_sarif` in one read of each report: the totals and the
    cluster's SARIF run come from the same pass (in worker processes for large inputs).
    The same text as the two passes; a cluster renamed by the fleet (a name given twice)
    has its run written again under its new name. ``stream`` gets a partial log if a
    report turns out bad: give it a temporary file."""
    if parallel is None:
        parallel = _worth_a_pool(paths)
    files = [str(p) for p in paths]
    if parallel:
        from secretsboot.audit import _parallel

        parts: Iterator[tuple[Part, str, str]] = _parallel.map_ordered(condense_sarif, files)
    else:
        parts = map(condense_sarif, files)
    fleet = Fleet()
    stream.write(_sarif_head())
    for n, (part, name, run) in enumerate(parts):
        cluster = fleet.absorb(part)
        if cluster.name != name:
            run = sarif_run((cluster.file, cluster.name))
        stream.write(("," if n else "") + run)
    stream.write("]}\n")
    return fleet


class _SarifResults:
    """The SARIF results of one report's findings, under the cluster name first seen."""

    def __init__(self) -> None:
        from secretsboot.audit.findings import RULES
        from secretsboot.audit.report._stream import encode
        from secretsboot.audit.report.sarif import LEVEL

        self.index = {rid: f',"ruleIndex":{i}' for i, rid in enumerate(sorted(RULES))}
        self.levels = LEVEL
        self.level_of: dict[str, str] = {}  # severity as written -> the encoded SARIF level
        self.encode = encode
        self.name: str | None = None
        self.results: list[str] = []

    def add(self, doc: dict[str, Any], name: str) -> None:
        if self.name is None:
            self.name = name
        self.results.append(self.text(doc, self.name))

    def text(self, doc: dict[str, Any], cluster: str) -> str:
        """The SARIF result of one finding, as :func:`encode` writes the object
        ``ruleId, level, message, locations, partialFingerprints, properties[, ruleIndex]
        [, suppressions][, baselineState]``, put together from its encoded values."""
        enc = self.encode
        ev = doc.get("evidence") or {}
        rule = str(doc.get("rule_id"))
        severity = str(doc.get("severity", "info"))
        level = self.level_of.get(severity)
        if level is None:
            level = self.level_of[severity] = enc(self.levels[Severity.parse(severity)])
        message = enc(f"[{cluster}] {doc.get('message', '')}")
        where = enc(f"{cluster}/{ev.get('object', '')}")
        fingerprint = enc(str(doc.get("fingerprint", "")))
        out = (
            f'{{"ruleId":{enc(rule)},"level":{level},"message":{{"text":{message}}},'
            f'"locations":[{{"logicalLocations":[{{"fullyQualifiedName":{where},'
            f'"kind":"object"}}]}}],"partialFingerprints":{{"secretsboot/v1":{fingerprint}}},'
            f'"properties":{{"cluster":{enc(cluster)},"severity":{enc(doc.get("severity"))}}}'
            + self.index.get(rule, "")
        )
        if doc.get("suppressed"):
            out += ',"suppressions":[{"kind":"external","status":"accepted"}]'
        if doc.get("baseline"):
            out += ',"baselineState":"unchanged"'
        return out + "}"


def condense_sarif(path: str) -> tuple[Part, str, str]:
    """One report read once: its :class:`Part`, the cluster name its SARIF run was written
    under, and that run's text (what a worker process runs for :func:`merge_sarif`)."""
    results = _SarifResults()
    part = condense_file(path, results.add)
    name = results.name if results.name is not None else part.cluster.name
    return part, name, _run_text(name, results.results)


def _run_text(name: str, results: list[str]) -> str:
    from secretsboot.audit.findings import RULES
    from secretsboot.audit.report._stream import encode
    from secretsboot.audit.report.sarif import rule_descriptor

    rule_ids = sorted(RULES)
    driver = {"name": "secretsboot", "rules": [rule_descriptor(RULES[r]) for r in rule_ids]}
    head = {"tool": {"driver": driver}, "automationDetails": {"id": f"{name}/"}}
    return encode(head)[:-1] + ',"results":[\n' + ",\n".join(results) + "\n]}\n"


def sarif_run(job: tuple[str, str]) -> str:
    """The SARIF run of one cluster's report: (report file, cluster name) -> its text."""
    file, name = job
    results = _SarifResults()
    results.name = name
    with open(file, encoding="utf-8") as fh:
        for member, item in _events(fh, file):
            if member == "findings":
                results.add(_loads(item, file) if isinstance(item, str) else item, name)
    return _run_text(name, results.results)


RENDERERS: dict[str, Callable[[Fleet], str]] = {
    "markdown": render_markdown,
    "html": render_html,
}
FORMATS = ("table", "markdown", "html", "sarif")


def write(fleet: Fleet, fmt: str, stream: TextIO, *, width: int = 120) -> None:
    if fmt == "sarif":
        write_sarif(fleet, stream)
    elif fmt == "table":
        stream.write(render_table(fleet, width))
    elif fmt in RENDERERS:
        stream.write(RENDERERS[fmt](fleet))
    else:
        raise BadInputError(f"unknown fleet format '{fmt}'", hint=f"use one of {FORMATS}")
