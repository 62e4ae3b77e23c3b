"""Read Kubernetes manifests from files, folders and stdin, one document at a time.

>>> result = load_text("kind: Pod\\nmetadata: {name: web}\\n---\\n42\\n", "demo.yaml")
>>> [m.ref for m in result.manifests], result.coverage.skipped
(['Pod/web'], {'not an object (a scalar)': 1})

The pieces, each in its own module:

- :mod:`._lines`: a file is cut into documents at ``---``/``...`` lines, and
  :class:`~._lines.LazyLines` finds a field's line when a detector asks;
- :mod:`._yamlfast`: each document is parsed on its own into plain dicts and lists,
  so a broken document costs only itself: it becomes a :class:`LoadError` (file,
  document index, line) and the next one is read. A document whose failure shows
  Helm syntax (``{{ .Values... }}``) is reported as an unrendered Helm template;
- :mod:`._parallel`: large inputs are parsed by worker processes, in input order.

This module turns parsed documents into :class:`Manifest` s: ``kind: List`` (and
``*List`` with ``items``, as ``kubectl get -o yaml`` prints) is flattened, items
without ``kind`` take it from the list kind; documents that are not objects
(empty, scalars, lists, mappings without ``kind``) are counted as skipped, with
the reason, in :class:`Coverage`. Keys written twice in one mapping are kept on
the manifest (:attr:`Manifest.duplicates`) for the detectors to report.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from secretsboot.audit import _parallel, kustomize
from secretsboot.audit._lines import LazyLines, chunks, entry_count, entry_of
from secretsboot.audit._parallel import HELM_HINT, Failure, no_gc
from secretsboot.audit._yamlfast import MAX_DEPTH, DuplicateKey, parse_documents
from secretsboot.audit.model import Coverage, LoadError, Manifest
from secretsboot.errors import BadInputError

__all__ = [
    "HELM_HINT",
    "LoadResult",
    "Loader",
    "discover",
    "load",
    "load_text",
    "no_gc",
    "parse_documents",
]

EXTENSIONS = (".yaml", ".yml", ".json", ".yam")
STDIN_LINES_CAP = 64 * 1024 * 1024  # keep stdin documents for field lines up to this many chars

_HELM = re.compile(
    r"\{\{-?\s*(?:[^}]*?[\s(])?\.(?:Values|Release|Chart|Capabilities|Files)\b"
    r"|\{\{-?\s*(?:include|template)\s+\""
)


@dataclass(slots=True)
class LoadResult:
    """The objects read, the documents that could not be, and what was covered."""

    manifests: list[Manifest] = field(default_factory=list)
    errors: list[LoadError] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)

    def skip(self, reason: str) -> None:
        self.coverage.skipped[reason] = self.coverage.skipped.get(reason, 0) + 1


def _kind_of(data: dict[Any, Any]) -> str | None:
    kind = data.get("kind")
    return kind if isinstance(kind, str) and kind else None


class Loader:
    """Accumulates a :class:`LoadResult` over files, folders and streams."""

    def __init__(self, *, pool: bool = True, kustomize: bool = False) -> None:
        self.result = LoadResult()
        self.kustomize = kustomize  # render kustomize folders with kubectl?
        self._stdin_kept = 0
        self._pool = pool  # may a large stream be parsed by worker processes?

    # --- inputs -----------------------------------------------------------------------------

    def add_path(self, path: str | Path) -> None:
        """A file, or a folder read recursively (``.yaml .yml .json .yam``, hidden ones skipped).

        A large folder is parsed by a pool of processes (one batch of files each);
        the objects come back in file order, exactly as one process would read them.
        Kustomize folders: see :mod:`secretsboot.audit.kustomize`.
        """
        p = Path(path)
        if p.is_dir():
            files = self._kustomize(discover(p))
            if not _parallel.worth_it(files):
                for f in files:
                    self.add_file(f)
                return
            for part in _parallel.map_files(_load_batch, files):
                self.merge(part)
        elif p.exists():
            self.add_file(p)
        else:
            raise BadInputError(f"{path}: no such file or folder", hint="check the path")

    def _kustomize(self, files: list[Path]) -> list[Path]:
        """Render kustomize folders (when asked) and return the files left to read."""
        return self.unrendered(files) if not self.kustomize else self._render(files)

    def unrendered(self, files: list[Path]) -> list[Path]:
        """``files`` as read without kustomize: its folders counted as skipped, still read."""
        found = kustomize.folders(files)
        if found:
            self.result.skip(kustomize.NOT_RENDERED)
            self.result.coverage.skipped[kustomize.NOT_RENDERED] += len(found) - 1
        return files

    def _render(self, files: list[Path]) -> list[Path]:
        found = kustomize.folders(files)
        for folder in sorted(found):
            name = f"{folder} (kubectl kustomize)"
            text, error = kustomize.render(folder)
            if error:
                self.result.coverage.files += 1
                self.result.errors.append(LoadError(name, 0, 0, error))
            else:
                self.add_text(text, name)
        return [f for f in files if f.parent not in found]

    def add_file(self, path: Path) -> None:
        name = str(path)
        self.result.coverage.files += 1
        try:
            with open(path, encoding="utf-8-sig", errors="replace") as fh:
                if path.suffix.lower() == ".json":
                    self._add_json(name, fh.read())
                else:
                    self.add_stream(name, fh)
        except OSError as exc:
            self.result.errors.append(LoadError(name, 0, 0, f"cannot read: {exc.strerror}"))

    def merge(self, other: LoadResult) -> None:
        """Add what another loader read (a worker's batch of files)."""
        self.result.manifests.extend(other.manifests)
        self.result.errors.extend(other.errors)
        self.result.coverage.add(other.coverage)

    def add_stdin(self, stream: TextIO, name: str = "<stdin>") -> None:
        self.result.coverage.files += 1
        head: list[str] = []
        line = stream.readline()
        while line and not line.strip():
            head.append(line)
            line = stream.readline()
        if line.lstrip()[:1] in ("{", "["):
            self._add_json(name, "".join(head) + line + stream.read(), yaml_fallback=True)
        else:
            self.add_stream(name, itertools.chain(head, [line], stream), keep_text=True)

    def add_text(self, text: str, name: str) -> None:
        self.result.coverage.files += 1
        if name.lower().endswith(".json"):
            self._add_json(name, text)
        else:
            self.add_stream(name, text.splitlines(keepends=True), keep_text=True)

    # --- documents --------------------------------------------------------------------------

    def _add_json(self, name: str, text: str, *, yaml_fallback: bool = False) -> None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            if yaml_fallback or text.lstrip()[:1] not in ("{", "["):  # YAML flow style, or YAML
                self.add_stream(name, text.splitlines(keepends=True), keep_text=True)
                return
            self.result.coverage.documents += 1
            self.result.errors.append(LoadError(name, 0, exc.lineno, f"invalid JSON: {exc.msg}"))
            return
        except RecursionError:
            self.result.coverage.documents += 1
            self.result.errors.append(LoadError(name, 0, 1, "invalid JSON: nests too deeply"))
            return
        self.result.coverage.documents += 1
        if _depth_exceeds(data, MAX_DEPTH):
            self.result.errors.append(LoadError(name, 0, 1, "document nests too deeply"))
            return
        self._add_document(name, 0, data, 0, [], LazyLines(name, 0, 0), json_source=True)

    def add_stream(self, name: str, lines: Iterable[str], *, keep_text: bool = False) -> None:
        """Every document of a stream (a file's lines, stdin); a large one in parallel."""
        doc_index = 0
        docs_text = chunks(lines)
        parsed = (
            _parallel.parse_stream(docs_text)
            if self._pool
            else map(_parallel.parse_chunk, docs_text)
        )
        for start, count, text, docs in parsed:
            if isinstance(docs, Failure):
                self.result.coverage.documents += 1
                self.result.errors.append(
                    LoadError(name, doc_index, start + docs.line, docs.reason)
                )
                doc_index += 1
                continue
            helm = "{{" in text and _HELM.search(text) is not None
            kept: str | None = None
            if keep_text and self._stdin_kept + len(text) <= STDIN_LINES_CAP:
                kept = text
                self._stdin_kept += len(text)
            for data, root_line, item_lines, entries, dups in docs:
                self.result.coverage.documents += 1
                line = start + root_line + 1
                if helm:
                    self.result.errors.append(
                        LoadError(name, doc_index, line, f"{HELM_HINT} (audited as written)")
                    )
                lines_map = LazyLines(name, start, count, text=kept, entries=entries, body=data)
                self._add_document(
                    name, doc_index, data, line, item_lines, lines_map, duplicates=dups
                )
                doc_index += 1

    def _add_document(
        self,
        name: str,
        doc_index: int,
        data: Any,
        line: int,
        item_lines: list[int],
        lines_map: LazyLines,
        *,
        json_source: bool = False,
        duplicates: tuple[DuplicateKey, ...] = (),
    ) -> None:
        result = self.result
        if data is None:
            result.skip("empty document")
            return
        if not isinstance(data, dict):
            result.skip(
                "not an object (a list)" if isinstance(data, list) else "not an object (a scalar)"
            )
            return
        kind = _kind_of(data)
        if kind is None:
            result.skip("no kind (not a Kubernetes object)")
            return
        dups = tuple((path, lines_map.start + at + 1) for path, at in duplicates)
        items = data.get("items")
        if kind.endswith("List") and isinstance(items, list):
            self._add_list(name, doc_index, data, line, item_lines, lines_map, json_source, dups)
            return
        result.manifests.append(Manifest(name, doc_index, line or 1, data, lines_map, dups))
        result.coverage.objects += 1

    def _add_list(
        self,
        name: str,
        doc_index: int,
        data: dict[str, Any],
        line: int,
        item_lines: list[int],
        lines_map: LazyLines,
        json_source: bool,
        dups: tuple[DuplicateKey, ...],
    ) -> None:
        """The items of a ``kind: List`` (or ``*List``), each its own object."""
        result = self.result
        item_kind = str(data["kind"])[: -len("List")]
        api_version = data.get("apiVersion")
        entries = lines_map.entries
        item_base = entry_of(data, ("items",), 0) if entries is not None else None
        next_base = item_base + 1 if item_base is not None else 0
        for i, item in enumerate(data["items"]):
            base = next_base
            next_base = base + 1 + entry_count(item)
            if not isinstance(item, dict):
                result.skip("List item is not an object")
                continue
            exact = item_base is not None
            if _kind_of(item) is None:
                if not item_kind:
                    result.skip("no kind (not a Kubernetes object)")
                    continue
                exact = False  # the added keys are not in the text
                item["kind"] = item_kind
                if api_version and "apiVersion" not in item:
                    item["apiVersion"] = api_version
            item_line = (
                lines_map.start + item_lines[i] + 1
                if i < len(item_lines) and not json_source
                else line
            )
            item_map = lines_map.item(i, entries if exact else None, item, base + 1)
            prefix = f"items[{i}]."
            mine = tuple((p[len(prefix) :], at) for p, at in dups if p.startswith(prefix))
            result.manifests.append(Manifest(name, doc_index, item_line or 1, item, item_map, mine))
            result.coverage.objects += 1


def _depth_exceeds(data: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return False


def _load_batch(paths: list[str]) -> LoadResult:
    """A worker's share: read these files as one process would."""
    with no_gc():
        loader = Loader(pool=False)
        for path in paths:
            loader.add_file(Path(path))
        return loader.result


def discover(folder: Path) -> list[Path]:
    """Manifest files under ``folder``, sorted; hidden files and folders are skipped."""
    found: list[Path] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(root, f)
            for f in sorted(files)
            if not f.startswith(".") and f.lower().endswith(EXTENSIONS)
        )
    return found


def load(
    paths: Sequence[str | Path], *, stdin: TextIO | None = None, kustomize: bool = False
) -> LoadResult:
    """Read every path (``-`` is stdin). A missing path is a :class:`BadInputError`.

    >>> load(["/no/such/dir"])
    Traceback (most recent call last):
    ...
    secretsboot.errors.BadInputError: /no/such/dir: no such file or folder: check the path
    """
    for p in paths:
        if str(p) != "-" and not Path(p).exists():
            raise BadInputError(f"{p}: no such file or folder", hint="check the path")
    loader = Loader(kustomize=kustomize)
    with no_gc():
        for p in paths:
            if str(p) == "-":
                loader.add_stdin(stdin if stdin is not None else sys.stdin)
            else:
                loader.add_path(p)
    return loader.result


def load_text(text: str, name: str = "<text>") -> LoadResult:
    """Read manifests from a string (tests, and callers that already hold the text)."""
    loader = Loader()
    loader.add_text(text, name)
    return loader.result
