"""What the init container's start costs: ``python -X importtime`` of a real fetch.

``secretsboot fetch`` must import none of the official SDKs, nor the CLI's Typer/Rich,
nor pydantic: the transport is the standard library's http.client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import TLS, ScriptServer, answer, reply

HEAVY = ("azure", "hvac", "kubernetes", "typer", "rich", "pydantic", "requests", "urllib3")


def imported(stderr: str) -> set[str]:
    """Top-level package names from ``-X importtime`` lines (``... | cumulative | name``)."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secretsboot", *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("scheme", ["k8s"])
def test_a_real_fetch_imports_nothing_heavy(tmp_path: Path, scheme: str) -> None:
    tls = TLS(tmp_path)
    secret = json.dumps({"data": {"k": "Q0FOQVJZLWltcG9ydHM="}}).encode()
    sa = tmp_path / "sa"
    sa.mkdir()
    for name, text in (("token", "t"), ("namespace", "shop"), ("ca.crt", None)):
        (sa / name).write_text(text if text is not None else Path(tls.ca_file).read_text())
    with ScriptServer(answer(reply(200, secret)), tls) as api:
        result = run(
            ["fetch", "-o", str(tmp_path / "out"), "--timeout", "10"],
            {
                "KUBERNETES_SERVICE_HOST": "127.0.0.1",
                "KUBERNETES_SERVICE_PORT": str(api.port),
                "SECRETSBOOT_SERVICEACCOUNT_DIR": str(sa),
                "SECRETSBOOT_SECRETS": f"db={scheme}://db#k",
            },
        )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "out" / "db").read_text() == "CANARY-imports"
    names = imported(result.stderr)
    assert "http" in names and "ssl" in names
    assert not names & set(HEAVY), sorted(names & set(HEAVY))
