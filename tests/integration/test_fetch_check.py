"""``secretsboot fetch --check`` against the sandbox: every secret of the three stores
reported with its source, identity and fingerprint, a failure with its fix, nothing
written, and the exit code a fetch would give."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fetch_support import run_cli
from test_refresh_sandbox import three_stores

from secretsboot.secret import fingerprint

pytestmark = [pytest.mark.integration, pytest.mark.openbao]


def test_check_reports_each_secret_and_writes_nothing(sandbox: Any, tmp_path: Path) -> None:
    t = three_stores(sandbox, tmp_path)
    t.doc["secrets"].append({"name": "gone", "from": f"k8s://{t.k8s_name}#nope"})
    cfg = str(t.pod.write_config(t.doc))

    table = run_cli(["fetch", "--check", "-c", cfg, "--timeout", "20"], t.pod.env)
    assert table.returncode == 4, table.stderr  # as a fetch: not found
    lines = table.stdout.splitlines()
    expected = {
        "api-key": "CANARY-r1-kv-0",
        "db-password": "CANARY-r1-vault-0",
        "cache-token": "CANARY-r1-k8s-0",
    }
    for line, (name, value) in zip(lines, expected.items(), strict=False):
        assert line.startswith(f"ok    {name}"), line
        assert line.endswith(fingerprint(value)), line
    assert "as workload identity" in lines[0] or t.pod.env["AZURE_CLIENT_ID"] in lines[0]
    assert lines[3].startswith("FAIL  gone") and "nope" in lines[3]
    assert lines[-1] == "3 of 4 secrets fetched; nothing was written"
    assert "CANARY" not in table.stdout + table.stderr
    assert not t.pod.out.exists()

    as_json = run_cli(["fetch", "--check", "-c", cfg, "-o", "json"], t.pod.env)
    assert as_json.returncode == 4
    report = json.loads(as_json.stdout)
    assert [(r["name"], r["ok"]) for r in report] == [
        ("api-key", True), ("db-password", True), ("cache-token", True), ("gone", False),
    ]  # fmt: skip
    assert report[3]["exitCode"] == 4 and "fingerprint" not in report[3]
    assert report[2]["source"] == f"k8s://{t.k8s_name}#token"
