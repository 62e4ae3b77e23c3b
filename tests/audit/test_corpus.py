"""Every labelled workload of a corpus gets exactly its expected approaches.

Two tiers, one test body:

- ``synthetic``: ``tests/audit/corpus``, manifests written here, modelled on the
  patterns of real projects (not copies); always present, always run;
- ``real``: ``shared/corpus`` beside the repository (or ``$SECRETSBOOT_CORPUS``),
  manifests nobody here wrote. It runs when present; when it is not, its tests are
  skipped with the reason (a clone of this repository alone has no ``../shared``).

``INDEX.tsv`` is each tier's test set and the labelling rules of the real corpus's
README are the specification. Each top-level folder is one source repository and
is audited on its own, as the user of that repository would.
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

SYNTHETIC = Path(__file__).resolve().parent / "corpus"


def real_root() -> Path:
    env = os.environ.get("SECRETSBOOT_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


TIERS = {"synthetic": SYNTHETIC, "real": real_root()}
MISSING = (
    "real-corpus tier not run: no INDEX.tsv at {root} (put shared/corpus beside the "
    "repository or set SECRETSBOOT_CORPUS); the synthetic tier still runs"
)


def _rows(root: Path) -> list[dict[str, str]]:
    index = root / "INDEX.tsv"
    if not index.is_file():
        return []
    with index.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


ROWS = {tier: _rows(root) for tier, root in TIERS.items()}


def corpus_roots() -> list[Path]:
    """Every tier present: the synthetic one always, the real one when it is there."""
    return [root for tier, root in TIERS.items() if ROWS[tier]]


def _root(tier: str) -> Path:
    root = TIERS[tier]
    if not ROWS[tier]:
        pytest.skip(MISSING.format(root=root))
    return root


def _workload_cases() -> list[object]:
    cases: list[object] = []
    for tier, rows in ROWS.items():
        workloads = [r for r in rows if r["workload_kind"] != "-"]
        if not workloads:
            cases.append(pytest.param(tier, None, id=f"{tier}-absent"))
        cases.extend(
            pytest.param(tier, r, id=f"{tier}:{r['file']}:{r['workload_name']}") for r in workloads
        )
    return cases


@cache
def audit_repo(tier: str, repo: str) -> AuditResult:
    return run(load([TIERS[tier] / repo]), AuditOptions())


def _key(row: dict[str, str]) -> tuple[str, str, str, str]:
    return (row["file"], row["workload_kind"], row["workload_namespace"], row["workload_name"])


def test_synthetic_corpus_is_complete() -> None:
    rows = ROWS["synthetic"]
    assert len([r for r in rows if r["workload_kind"] != "-"]) >= 14
    labels = {label for r in rows for label in r["expected_labels"].split(",") if label}
    assert {"aad-pod-identity", "keyvault-csi", "literal-credential", "none"} <= labels


def test_real_corpus_size_when_present() -> None:
    _root("real")
    assert len([r for r in ROWS["real"] if r["workload_kind"] != "-"]) >= 40


@pytest.mark.parametrize(("tier", "row"), _workload_cases())
def test_labelled_workload(tier: str, row: dict[str, str] | None) -> None:
    root = _root(tier)
    assert row is not None
    repo = row["file"].split("/", 1)[0]
    result = audit_repo(tier, repo)
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


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_no_unlabelled_workloads_and_no_load_errors(tier: str) -> None:
    """Every workload the audit finds is in INDEX.tsv, and the corpus reads cleanly."""
    root = _root(tier)
    rows = ROWS[tier]
    labelled = {_key(r) for r in rows if r["workload_kind"] != "-"}
    repos = sorted({r["file"].split("/", 1)[0] for r in rows})
    seen = set()
    for repo in repos:
        result = audit_repo(tier, repo)
        assert result.errors == []
        for w in result.workloads:
            seen.add((str(Path(w.file).relative_to(root)), w.kind, w.namespace, w.name))
    assert seen == labelled


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_supporting_files_hold_no_workloads(tier: str) -> None:
    root = _root(tier)
    for row in ROWS[tier]:
        if row["workload_kind"] != "-":
            continue
        result = run(load([root / row["file"]]))
        assert result.workloads == [], row["file"]
        assert result.coverage.objects >= 1


def test_synced_secret_credits_only_the_mounted_class() -> None:
    """Two classes sync ``foosecret``; the pod mounts the Azure one: no vault-csi, and the
    other class is named as another possible producer, not as delivery."""
    result = audit_repo("synthetic", "csi-examples")
    (pod,) = [w for w in result.workloads if w.name == "sync-consumer"]
    env = next(a for a in pod.approaches if a.id == "k8s-secret-env")
    (detail,) = [e.detail for e in env.evidence]
    assert "other possible producer" in detail and "SecretProviderClass/vault-sync" in detail
    csi = next(a for a in pod.approaches if a.id == "keyvault-csi")
    assert any("azure-sync" in e.object for e in csi.evidence)


def test_secretsboot_init_says_which_store_it_reads() -> None:
    result = audit_repo("synthetic", "secretsboot-app")
    (w,) = result.workloads
    init = next(a for a in w.approaches if a.id == "secretsboot-init")
    assert "fetch config: reads Key Vault" in [e.detail for e in init.evidence]
