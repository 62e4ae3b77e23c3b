"""The suite runs in the same clean environment whatever the shell around it exports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LEAKY = {
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "no_proxy": "*",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "VAULT_TOKEN": "canary-vault-token",
    "KUBECONFIG": "/nonexistent/kubeconfig",
    "SECRETSBOOT_OUT": "/nonexistent",
    "SSL_CERT_FILE": "/nonexistent/ca.pem",
}


def test_probe_sees_none_of_the_variables_the_code_reads() -> None:
    assert not set(LEAKY) & set(os.environ)


def test_a_leaky_shell_does_not_reach_the_tests() -> None:
    name = test_probe_sees_none_of_the_variables_the_code_reads.__name__
    probe = f"{Path(__file__).relative_to(ROOT)}::{name}"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", probe],
        cwd=ROOT,
        env={**os.environ, **LEAKY},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
