"""Fixtures of the fetch tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def open_tmp() -> Iterator[Path]:
    """A temporary folder every uid can traverse (pytest's own are 0700 to root), for
    tests that act as another uid."""
    path = Path(tempfile.mkdtemp(prefix="secretsboot-test-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
