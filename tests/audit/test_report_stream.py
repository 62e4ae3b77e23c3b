"""Reports written as they are built: ``render_to`` and the CLI's ``--out``/stdout."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from _report_case import scenario

from secretsboot.audit.engine import run
from secretsboot.audit.loader import load_text
from secretsboot.audit.report import FORMATS, STREAMING, render, render_to
from secretsboot.audit.report._stream import CHUNK_ITEMS
from secretsboot.cli import main


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, s: str) -> int:
        self.sizes.append(len(s))
        return super().write(s)


def many(n: int) -> str:
    return "---\n".join(
        f"kind: Deployment\nmetadata: {{name: app-{i}, namespace: shop}}\n"
        "spec: {template: {spec: {containers: [{name: a, image: 'app:1'}]}}}\n"
        for i in range(n)
    )


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_render_to_writes_what_render_returns(fmt: str) -> None:
    out = io.StringIO()
    render_to(scenario(), fmt, out)
    assert out.getvalue() == render(scenario(), fmt)
    assert out.getvalue().endswith("\n") and not out.getvalue().endswith("\n\n")


@pytest.mark.parametrize("fmt", sorted(STREAMING))
def test_large_reports_are_written_in_chunks(fmt: str) -> None:
    n = 3 * CHUNK_ITEMS
    result = run(load_text(many(n), "many.yaml"))
    assert len(result.workloads) == n and len(result.findings) >= n
    out = CountingStream()
    render_to(result, fmt, out)
    text = out.getvalue()
    doc = json.loads(text)
    if fmt == "json":
        assert len(doc["workloads"]) == n and len(doc["comparison"]["services"]) == n
        assert len(doc["findings"]) == len(result.findings)
    else:
        assert len(doc["runs"][0]["results"]) == len(result.findings)
    # never the whole text in one write: at most a chunk of items at a time
    assert len(out.sizes) > 6
    assert max(out.sizes) < len(text) / 3


def test_json_is_one_item_per_line() -> None:
    text = render(scenario(), "json")
    lines = text.splitlines()
    doc = json.loads(text)
    finding_lines = [ln for ln in lines if ln.lstrip(",").startswith('{"rule_id"')]
    assert len(finding_lines) == len(doc["findings"])
    assert all(json.loads(ln.rstrip(",")) for ln in finding_lines)
    assert ": " not in lines[1]  # compact separators: the C encoder, no indent


def test_cli_out_file_and_stdout_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "app.yaml"
    src.write_text(many(5))
    report = tmp_path / "report.json"
    assert main(["audit", str(src), "-o", "json", "--report-only", "--out", str(report)]) == 0
    assert capsys.readouterr().out == ""
    assert main(["audit", str(src), "-o", "json", "--report-only"]) == 0
    printed = capsys.readouterr().out
    assert printed == report.read_text(encoding="utf-8")
    assert json.loads(printed)["summary"]["workloads"] == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
