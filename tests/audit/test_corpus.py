"""Every labelled workload of the real-world corpus gets exactly its expected approaches.

The corpus (``shared/corpus`` beside the repository, or ``$SECRETSBOOT_CORPUS``)
holds manifests nobody here wrote; ``INDEX.tsv`` is the test set and the labeling
rules of its README are the specification. Each top-level folder is one source
repository and is audited on its own, as the user of that repository would
(a SecretProviderClass or binding is looked up within the same repository).
"""

from __future__ import annotations

import csv
import os
from functools import cache
from pathlib import Path

import pytest

from secretsboot.audit.engine import AuditOptions, run
from secretsboot.audit.loader import load
from secretsboot.audit.model import AuditResult


def corpus_root() -> Path:
    env = os.environ.get("SECRETSBOOT_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def _rows() -> list[dict[str, str]]:
    index = corpus_root() / "INDEX.tsv"
    if not index.is_file():
        return []
    with index.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = _rows()
WORKLOAD_ROWS = [r for r in ROWS if r["workload_kind"] != "-"]


@cache
def audit_repo(repo: str) -> AuditResult:
    return run(load([corpus_root() / repo]), AuditOptions())


def _key(row: dict[str, str]) -> tuple[str, str, str, str]:
    return (row["file"], row["workload_kind"], row["workload_namespace"], row["workload_name"])


def test_corpus_is_present() -> None:
    root = corpus_root()
    assert (root / "INDEX.tsv").is_file(), (
        f"the manifest corpus is missing at {root}: put shared/corpus beside the repository "
        "or set SECRETSBOOT_CORPUS to its folder (CI has it; this test must not be skipped)"
    )
    assert len(WORKLOAD_ROWS) >= 40


@pytest.mark.parametrize("row", WORKLOAD_ROWS, ids=lambda r: f"{r['file']}:{r['workload_name']}")
def test_labelled_workload(row: dict[str, str]) -> None:
    repo = row["file"].split("/", 1)[0]
    result = audit_repo(repo)
    root = corpus_root()
    found = {
        (str(Path(w.file).relative_to(root)), w.kind, w.namespace, w.name): w
        for w in result.workloads
    }
    workload = found.get(_key(row))
    assert workload is not None, f"workload not found; have {sorted(found)}"
    expected = [] if row["expected_labels"] == "none" else sorted(row["expected_labels"].split(","))
    assert workload.approach_ids == expected, row["note"]
    for approach in workload.approaches:
        assert approach.evidence, f"{approach.id} has no evidence"


def test_no_unlabelled_workloads_and_no_load_errors() -> None:
    """Every workload the audit finds is in INDEX.tsv, and the corpus reads cleanly."""
    root = corpus_root()
    labelled = {_key(r) for r in WORKLOAD_ROWS}
    repos = sorted({r["file"].split("/", 1)[0] for r in ROWS})
    assert repos, "empty corpus index"
    seen = set()
    for repo in repos:
        result = audit_repo(repo)
        assert result.errors == []
        for w in result.workloads:
            seen.add((str(Path(w.file).relative_to(root)), w.kind, w.namespace, w.name))
    assert seen == labelled


def test_supporting_files_hold_no_workloads() -> None:
    root = corpus_root()
    for row in ROWS:
        if row["workload_kind"] != "-":
            continue
        result = run(load([root / row["file"]]))
        assert result.workloads == [], row["file"]
        assert result.coverage.objects >= 1
