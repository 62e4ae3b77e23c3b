"""Fixtures for tests that run the real helm 4 binary (see ``_helm.py``)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from ._helm import helm_binary, helm_env

ROOT = Path(__file__).resolve().parents[2]

Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def helm_path() -> Path:
    return helm_binary()


@pytest.fixture(scope="session")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="session")
def helm(helm_path: Path, helm_home: Path) -> Helm:
    """Run helm with its own folders; ``env`` adds variables, ``check`` raises on failure."""

    def run(
        *args: str, env: dict[str, str] | None = None, check: bool = True, stdin: str = ""
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(helm_path), *args],
            env={**helm_env(helm_home), **(env or {})},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr}")
        return proc

    return run


@pytest.fixture(scope="session")
def plugin(helm: Helm) -> str:
    """The repository's Helm 4 post-renderer plugin, installed once; its name."""
    installed = helm("plugin", "list").stdout
    if "secretsboot" not in installed:
        helm("plugin", "install", str(ROOT / "helm-plugin"))
    return "secretsboot"
