"""Golden files for every report format. Regenerate with SECRETSBOOT_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os

import pytest
from _report_case import GOLDEN, scenario

from secretsboot.audit.report import FORMATS, RenderOptions, render

EXTENSIONS = {"table": "txt", "json": "json", "markdown": "md", "html": "html", "sarif": "sarif"}
UPDATE = os.environ.get("SECRETSBOOT_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_golden(fmt: str) -> None:
    text = render(scenario(), fmt, options=RenderOptions(width=160))
    golden = GOLDEN / f"report.{EXTENSIONS[fmt]}"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert golden.is_file(), f"missing {golden.name}: run with SECRETSBOOT_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_output_is_deterministic_and_portable(fmt: str) -> None:
    first = render(scenario(), fmt)
    assert first == render(scenario(), fmt)
    assert str(GOLDEN) not in first and os.getcwd() not in first
    assert "2026-06-01" not in first  # "today" never leaks into a report (no timestamps)
