"""The README's by-hand walkthrough, run as a script exactly as written there.

The script is read from README.md (between the ``walkthrough`` markers), so the
README and this test cannot drift apart. It runs in bash with ``set -euo
pipefail`` in an empty folder holding only the unchanged example spec, with an
environment that has no AZURE_*, VAULT_* or KUBECONFIG of its own: everything
comes from ``eval "$(secretsboot sandbox env)"``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(
    r"<!-- walkthrough:start -->\s*```bash\n(?P<script>.*?)```\s*<!-- walkthrough:end -->", re.S
)


def walkthrough_script() -> str:
    match = _BLOCK.search((ROOT / "README.md").read_text(encoding="utf-8"))
    assert match, "README.md has no walkthrough block"
    return match.group("script")


def _clean_env(folder: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["HOME"] = str(folder)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _processes_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if text.encode() in cmd:
            pids.append(int(entry.name))
    return pids


def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "examples").mkdir()
    spec = tmp_path / "examples" / "drone-delivery.yaml"
    shutil.copyfile(ROOT / "examples" / "drone-delivery.yaml", spec)
    original = spec.read_bytes()
    # `secretsboot` is this interpreter's, whether or not its console script is on PATH
    prelude = f'set -euo pipefail\nsecretsboot() {{ "{sys.executable}" -m secretsboot "$@"; }}\n'
    result = subprocess.run(
        ["bash", "-c", prelude + walkthrough_script()],
        cwd=tmp_path,
        env=_clean_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    state_dir = tmp_path / ".secretsboot-sandbox"
    try:
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "No changes." in result.stdout
        delivery = tmp_path / "delivery-secrets"
        assert (delivery / "cosmosdb-key").read_text() == "example-cosmos-key"
        assert (delivery / "redis-key").read_text() == "example-redis-key"
        ingestion = tmp_path / "ingestion-secrets"
        assert (ingestion / "eventhub-key").read_text() == "example-eventhub-key"
        assert (ingestion / "servicebus-key").read_text() == "example-servicebus-key"
        # the operator's spec was used as it is, never rewritten
        assert spec.read_bytes() == original
        # values are never echoed by the commands that set or fetch them
        for value in ("example-cosmos-key", "example-redis-key", "example-eventhub-key"):
            assert value not in result.stdout.replace(f"'{value}'", "")
            assert value not in result.stderr
        # `sandbox down` left nothing behind: no folder, no process
        assert not state_dir.exists(), sorted(p.name for p in state_dir.iterdir())
        assert _processes_mentioning(str(state_dir)) == []
    finally:
        if state_dir.exists():
            subprocess.run(
                [sys.executable, "-m", "secretsboot", "sandbox", "down", "--dir", str(state_dir)],
                capture_output=True,
                timeout=60,
                check=False,
            )
