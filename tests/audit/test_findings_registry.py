"""The detector registry: rule metadata, documentation, determinism, and the real corpus."""

from __future__ import annotations

import csv
import inspect
import re
from pathlib import Path

import pytest
from _audit_case import manifests, workloads
from test_corpus import TIERS, corpus_roots
from test_corpus import _root as tier_root

from secretsboot.audit import findings
from secretsboot.audit.findings import FAMILIES, RULES, governance, run_detectors
from secretsboot.audit.model import Manifest


def test_rule_ids_are_unique_stable_and_complete() -> None:
    ids = [r.id for m in (*FAMILIES, governance) for r in m.RULES]
    assert len(ids) == len(set(ids)) == len(RULES)
    for rule in RULES.values():
        assert re.fullmatch(r"SB\d{3}", rule.id)
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", rule.name)
        assert rule.title and rule.description and rule.fix
        assert "http" not in rule.fix + rule.help + rule.description


@pytest.mark.parametrize(
    "module", [*FAMILIES, governance], ids=lambda m: m.__name__.rsplit(".", 1)[1]
)
def test_each_family_documents_its_rules(module: object) -> None:
    doc = inspect.getdoc(module) or ""
    for rule in module.RULES:  # type: ignore[attr-defined]
        assert rule.id in doc, f"{rule.id} is not documented in {module}"
    assert "::" in doc or "Flagged" in doc or "flagged" in doc  # an example of what is flagged


def _corpus(root: Path) -> list[Manifest]:
    out: list[Manifest] = []
    for path in sorted(root.glob("*/*.yaml")):
        out += manifests(path.read_text(), file=str(path.relative_to(root)))
    return out


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_corpus_runs_deterministically_and_every_rule_is_registered(tier: str) -> None:
    items = _corpus(tier_root(tier))
    first = run_detectors(items, workloads(items))
    second = run_detectors(list(reversed(items)), workloads(items))
    assert [f.fingerprint for f in first] == [f.fingerprint for f in second]
    assert {f.rule_id for f in first} <= set(RULES)
    assert len({(f.fingerprint, f.workload, f.evidence.file) for f in first}) == len(first)


@pytest.mark.parametrize("tier", sorted(TIERS))
def test_corpus_literal_credentials_match_the_index(tier: str) -> None:
    """Every workload labelled literal-credential gets SB102/SB103, and no other workload does."""
    root = tier_root(tier)
    items = _corpus(root)
    found = {
        f.evidence.file
        for f in run_detectors(items, workloads(items))
        if f.rule_id in ("SB102", "SB103")
    }
    with (root / "INDEX.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    labelled = {r["file"] for r in rows if "literal-credential" in r["expected_labels"].split(",")}
    assert labelled, "the corpus index lists literal credentials"
    assert found == labelled


def test_detectors_do_no_io(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a detector tried to do I/O")

    import builtins
    import socket

    items = [m for root in corpus_roots() for m in _corpus(root)]
    monkeypatch.setattr(builtins, "open", refuse)
    monkeypatch.setattr(socket, "socket", refuse)
    assert isinstance(findings.run_detectors(items, workloads(items)), list)


def test_docstring_examples_hold() -> None:
    import doctest
    import importlib

    names = [
        "secretsboot.audit.findings",
        "secretsboot.audit.fingerprint",
        "secretsboot.audit.merge",
        "secretsboot.audit._yamlfast",
        "secretsboot.audit._lines",
        "secretsboot.audit.findings._credential",
        "secretsboot.audit.findings._suppress",
        "secretsboot.audit.findings.images",
        "secretsboot.audit.report",
        "secretsboot.audit.policy",
    ]
    for name in names:
        outcome = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
        assert outcome.failed == 0, name
        assert outcome.attempted > 0, name
