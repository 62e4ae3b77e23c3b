"""``secretsboot audit`` end to end through the CLI: formats, exit codes, stdin, baseline.

(Named test_audit_cli.py: tests/test_cli.py already owns the module name test_cli.)
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from secretsboot.cli import main

CANARY = "CANARY-7f3a9d2e41b0-Pa55"

APP = textwrap.dedent(
    f"""\
    apiVersion: v1
    kind: ServiceAccount
    metadata:
      name: orders
      namespace: shop
      annotations: {{azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000001}}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: orders, namespace: shop}}
    spec:
      template:
        metadata:
          labels: {{azure.workload.identity/use: "true"}}
        spec:
          serviceAccountName: orders
          containers:
            - name: app
              image: mcr.microsoft.com/app:1
              env:
                - {{name: DB_PASSWORD, value: "{CANARY}"}}
                - {{name: CACHE, valueFrom: {{secretKeyRef: {{name: cache, key: k}}}}}}
    """
)


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    d = tmp_path / "k8s"
    d.mkdir()
    (d / "app.yaml").write_text(APP)
    return d


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("fmt", ["table", "json", "markdown", "html", "sarif"])
def test_every_format_reports_and_never_prints_the_secret(
    capsys: pytest.CaptureFixture[str], app_dir: Path, fmt: str
) -> None:
    code, out, err = run(capsys, str(app_dir), "-o", fmt)
    assert code == 11  # a literal password is high
    assert out.strip()
    assert CANARY not in out and CANARY not in err
    assert CANARY[2:10] not in out  # not even a longer preview


def test_json_report_has_the_classification(
    capsys: pytest.CaptureFixture[str], app_dir: Path
) -> None:
    code, out, _ = run(capsys, str(app_dir), "-o", "json", "--report-only")
    assert code == 0
    doc = json.loads(out)
    (w,) = doc["workloads"]
    approaches = {a["id"] if isinstance(a, dict) else a for a in w["approaches"]}
    assert approaches == {"workload-identity", "literal-credential", "k8s-secret-env"}


def test_table_prints_a_coverage_line_on_stderr(
    capsys: pytest.CaptureFixture[str], app_dir: Path
) -> None:
    (app_dir / "notes.yaml").write_text("---\n42\n---\nkind: Pod\nmetadata: {name: [x\n")
    code, _, err = run(capsys, str(app_dir), "--report-only", "--allow-parse-errors")
    assert code == 0
    assert err.endswith("\n")  # the coverage line never runs into the next message
    line = next(x for x in err.splitlines() if x.startswith("audited"))
    assert "1 workloads from 2 files" in line
    assert "1 not an object (a scalar)" in line
    assert "1 documents not read" in line


def test_threshold_decides_the_exit_code(capsys: pytest.CaptureFixture[str], app_dir: Path) -> None:
    assert run(capsys, str(app_dir), "-o", "json", "--severity-threshold", "critical")[0] == 0
    assert run(capsys, str(app_dir), "-o", "json", "--severity-threshold", "low")[0] == 11


@pytest.mark.parametrize(
    "args",
    [
        ["/no/such/path"],
        [],
        ["-o", "yaml", "."],
        ["--severity-threshold", "urgent", "."],
        ["--context", "prod", "."],
        ["--policy", "/no/such/policy.yaml", "."],
    ],
    ids=[
        "missing-path",
        "no-input",
        "bad-format",
        "bad-threshold",
        "context-without-cluster",
        "missing-policy",
    ],
)
def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = run(capsys, *args)
    assert code == 2, err
    assert "Traceback" not in err


def test_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(APP))
    code, out, _ = run(capsys, "-", "-o", "json", "--report-only")
    assert code == 0
    assert json.loads(out)["workloads"][0]["name"] == "orders"


def test_out_file_and_baseline_round_trip(
    capsys: pytest.CaptureFixture[str], app_dir: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.sarif"
    baseline = tmp_path / "baseline.json"
    code, out, _ = run(
        capsys, str(app_dir), "-o", "sarif", "--out", str(report), "--write-baseline", str(baseline)
    )
    assert code == 11 and out == ""
    assert json.loads(report.read_text())["version"] == "2.1.0"
    assert CANARY not in baseline.read_text()
    code, _, _ = run(capsys, str(app_dir), "-o", "json", "--baseline", str(baseline))
    assert code == 0  # everything known is reported, not counted


def test_report_only_still_fails_when_the_tool_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, _ = run(capsys, str(tmp_path / "missing"), "--report-only")
    assert code == 2


def test_unwritable_out_is_a_write_error(capsys: pytest.CaptureFixture[str], app_dir: Path) -> None:
    code, _, err = run(capsys, str(app_dir), "--out", str(app_dir / "no" / "dir" / "r.json"))
    assert code == 6 and "cannot write" in err
