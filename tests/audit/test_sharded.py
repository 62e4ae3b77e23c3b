"""A large folder is audited in shards; the report is the one a whole audit writes.

Sharding starts at 512 KB of input; these tests lower the bar (and cut one batch
per file) so that every cross-file question a detector asks crosses a shard:
a ServiceAccount, RBAC or SecretProviderClass in another file, a ServiceAccount
shared with a workload in another file (SB302), an owner in another file, an
inline suppression written on a same-named object elsewhere, a base and an
overlay of one Deployment, governance (policy, suppressions, baseline).
"""

from __future__ import annotations

import io
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _report_case import GOLDEN

from secretsboot.audit import _parallel, _sharded, engine
from secretsboot.audit.model import Severity
from secretsboot.audit.policy import BASELINE_SCHEMA
from secretsboot.audit.report import FORMATS, RenderOptions, render
from secretsboot.audit.report._rows import TABLE_ROWS, SpooledResult
from secretsboot.errors import WorkerDiedError

CANARY = "Sh4rd-canary-Passw0rd-93"


def _with_literal(name: str, namespace: str, env: str, value: str) -> str:
    """A Deployment whose container sets ``env`` to a literal ``value``."""
    return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: nginx
          env: [{{name: {env}, value: "{value}"}}]
"""


EXTRA = {
    # a second workload on the orders ServiceAccount, in its own file: SB302 names both
    "team-b/reports.yaml": """
apiVersion: batch/v1
kind: CronJob
metadata: {name: reports, namespace: shop}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          serviceAccountName: orders
          containers: [{name: r, image: myacr.azurecr.io/reports:1}]
""",
    # controlled by the billing Deployment of another file: not a workload of its own
    "live/billing-pod.yaml": """
apiVersion: v1
kind: Pod
metadata:
  name: billing-7d9f-abcde
  namespace: shop
  ownerReferences: [{kind: ReplicaSet, name: billing-7d9f}]
spec: {containers: [{name: app, image: nginx}]}
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: billing-7d9f
  namespace: shop
  ownerReferences: [{kind: Deployment, name: billing}]
spec:
  template:
    spec: {containers: [{name: app, image: nginx}]}
""",
    # an overlay of orders with a literal password: the base stays clean
    "overlays/prod/orders.yaml": f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: orders, namespace: shop}}
spec:
  template:
    metadata:
      annotations:
        secretsboot.dev/suppress: "SB501: reviewed in SEC-12"
    spec:
      serviceAccountName: orders
      containers:
        - name: app
          image: myacr.azurecr.io/orders:2
          env: [{{name: DB_PASSWORD, value: "{CANARY}"}}]
""",
    # the same literal in a far file: equal values, equal fingerprints, one key
    "zz/far.yaml": _with_literal("far", "other", "API_PASSWORD", CANARY),
}


def _tree(root: Path) -> Path:
    """The golden scenario, one object per file, plus :data:`EXTRA`."""
    text = (GOLDEN / "scenario.yaml").read_text(encoding="utf-8")
    for i, doc in enumerate(d for d in text.split("\n---\n") if d.strip()):
        (root / "base").mkdir(parents=True, exist_ok=True)
        (root / "base" / f"{i:02d}.yaml").write_text(doc + "\n", encoding="utf-8")
    for name, doc in EXTRA.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(doc.lstrip(), encoding="utf-8")
    return root


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRETSBOOT_AUDIT_KEY", "k" * 32)
    return _tree(Path("in"))


def _shard_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shard even this small input, one batch per file."""
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(_parallel, "MIN_BATCH_BYTES", 1)
    monkeypatch.setattr(_parallel, "BATCH_BYTES", 1)


def _options(**kw: object) -> engine.AuditOptions:
    return engine.AuditOptions(
        policy=GOLDEN / "policy.yaml",
        suppressions=GOLDEN / "suppressions.yaml",
        keep_manifests=False,
        **kw,  # type: ignore[arg-type]
    )


def _whole(tree: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, **kw: object) -> str:
    with monkeypatch.context() as m:
        m.setenv("SECRETSBOOT_NO_PARALLEL", "1")
        loaded = engine.load_input([tree])
        assert not isinstance(loaded, _sharded.ShardedLoad)
        return render(engine.run(loaded, _options(**kw)), fmt, options=RenderOptions(width=160))


def _sharded_run(tree: Path, monkeypatch: pytest.MonkeyPatch, fmt: str, **kw: object) -> str:
    _shard_everything(monkeypatch)
    loaded = engine.load_input([tree])
    assert isinstance(loaded, _sharded.ShardedLoad)
    assert len(loaded.batches) == len(list(tree.rglob("*.yaml")))
    result = engine.run(loaded, _options(**kw))
    assert isinstance(result, SpooledResult) == bool(kw.get("rows_for"))
    return render(result, fmt, options=RenderOptions(width=160))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_is_the_whole_audits(
    tree: Path, monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    whole = _whole(tree, monkeypatch, fmt)
    assert _sharded_run(tree, monkeypatch, fmt) == whole
    assert CANARY not in whole


@pytest.mark.parametrize("fmt", ["json", "sarif", "table"])
def test_report_rows_are_the_whole_audits_with_a_baseline(
    tree: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fmt: str
) -> None:
    whole = json.loads(_whole(tree, monkeypatch, "json"))
    # a baseline of half the findings, so both marks show
    keep = [f["fingerprint"] for f in whole["findings"]][::2]
    baseline = tmp_path / "baseline.json"
    baseline.write_text(
        json.dumps(
            {"schema": BASELINE_SCHEMA, "findings": [{"fingerprint": k} for k in sorted(keep)]}
        )
    )
    kw = {"baseline": baseline, "threshold": Severity.MEDIUM, "threshold_from_flag": True}
    expected = _whole(tree, monkeypatch, fmt, **kw)
    got = _sharded_run(tree, monkeypatch, fmt, rows_for=fmt, **kw)
    assert got == expected
    if fmt == "json":
        doc = json.loads(got)
        assert doc["summary"]["baseline"] > 0 and doc["summary"]["suppressed"] > 0
        assert doc["threshold"] == "medium"
    elif fmt == "sarif":
        results = json.loads(got)["runs"][0]["results"]
        assert any(r.get("baselineState") for r in results)
        assert any(r.get("suppressions") for r in results)


def test_rows_are_written_only_in_their_format(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _shard_everything(monkeypatch)
    result = engine.run(engine.load_input([tree]), _options(rows_for="sarif"))
    with pytest.raises(ValueError, match="encoded for sarif, not json"):
        render(result, "json")


def test_cross_shard_questions_are_answered_from_the_whole_input(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = json.loads(_sharded_run(tree, monkeypatch, "json", rows_for="json"))
    refs = [w["id"] for w in doc["workloads"]]
    # the controlled Pod and ReplicaSet are not workloads of their own
    assert not [r for r in refs if "billing-7d9f" in r]
    controlled = "controlled by a Deployment in the input (audited as that Deployment)"
    assert doc["coverage"]["skipped"][controlled] == 1
    by_rule: dict[str, list[dict[str, object]]] = {}
    for f in doc["findings"]:
        by_rule.setdefault(f["rule_id"], []).append(f)
    shared = [f for f in by_rule["SB302"] if f["workload"] == "CronJob/shop/reports"]
    assert shared and "Deployment/shop/orders" in str(shared[0]["message"])
    # the overlay's literal is its own; the base Deployment keeps its findings only
    literal = [f for f in by_rule["SB102"] if "orders" in str(f["workload"])]
    assert {f["workload_id"] for f in literal} == {
        "in/overlays/prod/orders.yaml#0:Deployment/shop/orders"
    }
    # one key for the whole run: the same value has the same fingerprint in two shards
    assert len(_canary_details(doc)) == 1


def _canary_details(doc: dict[str, Any]) -> set[str]:
    """The redacted details of the canary literal, in the overlay and in the far file."""
    files = ("in/overlays/prod/orders.yaml", "in/zz/far.yaml")
    found = [
        f["evidence"]
        for f in doc["findings"]
        if f["rule_id"] == "SB102" and f["evidence"]["file"] in files
    ]
    assert len(found) == 2, found
    return {e["detail"] for e in found}


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_a_random_key_is_shared_with_the_workers(
    tree: Path, monkeypatch: pytest.MonkeyPatch, start: str
) -> None:
    """A read-only home gives a random key for the run: the workers must use it too
    (a spawned worker would otherwise draw its own)."""
    context = multiprocessing.get_context(start)
    monkeypatch.setattr(_parallel, "_mp_context", lambda: context)
    monkeypatch.delenv("SECRETSBOOT_AUDIT_KEY")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/proc/no-such-place")
    doc = json.loads(_sharded_run(tree, monkeypatch, "json", rows_for="json"))
    assert len(_canary_details(doc)) == 1


def test_exit_status_counts_rows(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _shard_everything(monkeypatch)
    result = engine.run(engine.load_input([tree]), _options(rows_for="json"))
    assert isinstance(result, SpooledResult)
    assert result.over_threshold_count() > 0
    assert engine.exit_status(result) == 11
    assert engine.exit_status(result, report_only=True) == 0


def test_small_input_and_stdin_are_audited_whole(tree: Path) -> None:
    assert _sharded.load([tree]) is None  # 4 KB: a pool costs more than it saves
    loaded = engine.load_input(["-"], stdin=io.StringIO("kind: Pod\nmetadata: {name: a}\n"))
    assert not isinstance(loaded, _sharded.ShardedLoad)
    assert [m.ref for m in loaded.manifests] == ["Pod/a"]


def test_the_table_shows_the_whole_audits_first_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More workloads and findings than the table shows: the shards' first rows, merged,
    are the whole audit's first rows, and the counts of what is left out agree."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SECRETSBOOT_AUDIT_KEY", "k" * 32)
    root = Path("many")
    for i in range(TABLE_ROWS + 40):
        sub = root / f"team-{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"app-{i}.yaml").write_text(
            _with_literal(f"app-{i}", f"ns-{i % 5}", "DB_PASSWORD", f"Canary-{i}-x9Q!pw")
        )
    whole = _whole(root, monkeypatch, "table")
    got = _sharded_run(root, monkeypatch, "table", rows_for="table")
    assert got == whole
    assert "more workload(s)" in got and "more finding(s)" in got
    assert "x9Q!pw" not in got  # the literals are redacted


@pytest.mark.parametrize("stage", ["scan", "audit"])
def test_a_killed_worker_is_said_plainly(
    tree: Path, monkeypatch: pytest.MonkeyPatch, stage: str
) -> None:
    """The out-of-memory killer takes a worker: a clear error, exit 1, nothing written."""
    _shard_everything(monkeypatch)
    context = multiprocessing.get_context("fork")  # the children run the patched function
    monkeypatch.setattr(_parallel, "_mp_context", lambda: context)
    name = "_scan" if stage == "scan" else "_audit_batch"
    monkeypatch.setattr(_sharded, name, _killed)
    with pytest.raises(WorkerDiedError, match="stopped abruptly") as caught:
        engine.run(engine.load_input([tree]), _options(rows_for="json"))
    assert caught.value.exit_code == 1
    assert "SECRETSBOOT_NO_PARALLEL=1" in str(caught.value)


def _killed(*_: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


PARENT = """
import os, sys, time
from secretsboot.audit import _parallel

def wait(_):
    print(os.getpid(), flush=True)
    time.sleep(60)

if __name__ == "__main__":
    list(_parallel.map_ordered(wait, range(_parallel.workers())))
"""


def test_workers_die_with_their_parent(tmp_path: Path) -> None:
    """A parent stopped by SIGKILL (no handler runs) leaves no worker waiting forever."""
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    with subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        pids = [int(proc.stdout.readline()) for _ in range(_parallel.workers())]
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    assert not [p for p in pids if _alive(p)]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"  # a zombie has exited
    except OSError:
        return False
