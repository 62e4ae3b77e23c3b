"""A workload is its file, document and Kind/namespace/name; the gate fails closed.

- base + overlay: two same-named Deployments in two files, one with a literal
  password; the other is clean in every format (table, JSON, markdown, HTML, SARIF,
  and the baseline);
- unreadable input (empty stdin, a folder where nothing parses, binary junk, a
  document with no object) exits 2 unless ``--allow-parse-errors``.
"""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from secretsboot.cli import main

DEPLOY = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: api, namespace: shop}}
    spec:
      template:
        metadata:
          labels: {{azure.workload.identity/use: "true"}}
        spec:
          serviceAccountName: api
          containers:
            - name: api
              image: registry.example.test/api:1
              env:
                - {{name: LOG_LEVEL, value: info}}{extra}
    """
)
LITERAL = '\n            - {name: DB_PASSWORD, value: "Overlay-Pa55-4a1f"}'


@pytest.fixture
def two_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "base").mkdir()
    (tmp_path / "overlay").mkdir()
    (tmp_path / "base" / "api.yaml").write_text(DEPLOY.format(extra=""))
    (tmp_path / "overlay" / "api.yaml").write_text(DEPLOY.format(extra=LITERAL))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def audit(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_keeps_same_named_workloads_apart(
    capsys: pytest.CaptureFixture[str], two_files: Path
) -> None:
    code, out, _ = audit(capsys, "base", "overlay", "-o", "json", "--report-only")
    assert code == 0
    doc = json.loads(out)
    by_file = {w["file"]: w for w in doc["workloads"]}
    assert set(by_file) == {"base/api.yaml", "overlay/api.yaml"}  # relative to the cwd
    base, overlay = by_file["base/api.yaml"], by_file["overlay/api.yaml"]
    assert base["id"] == "base/api.yaml#0:Deployment/shop/api" != overlay["id"]
    assert "literal-credential" in {a["id"] for a in overlay["approaches"]}
    assert "literal-credential" not in {a["id"] for a in base["approaches"]}
    literal = [f for f in doc["findings"] if f["rule_id"] == "SB102"]
    assert [f["workload_id"] for f in literal] == [overlay["id"]]
    assert not [f for f in base["findings"] if f["rule_id"] == "SB102"]
    assert base["worst"] != "high" and overlay["worst"] == "high"
    services = {s["id"]: s for s in doc["comparison"]["services"]}
    assert services[base["id"]]["worst"] != "high"


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_human_formats_name_the_file_of_the_finding(
    capsys: pytest.CaptureFixture[str], two_files: Path, fmt: str
) -> None:
    _, out, _ = audit(capsys, "base", "overlay", "-o", fmt, "--report-only")
    assert "overlay/api.yaml" in out
    # the literal password finding is shown once, on the overlay's line
    sb102 = [line for line in out.splitlines() if "SB102" in line and "DB_PASSWORD" in line]
    assert all("base/api.yaml" not in line for line in sb102)


def test_sarif_and_baseline_keep_them_apart(
    capsys: pytest.CaptureFixture[str], two_files: Path
) -> None:
    _, out, _ = audit(capsys, "base", "overlay", "-o", "sarif", "--report-only")
    results = json.loads(out)["runs"][0]["results"]
    sb102 = [r for r in results if r["ruleId"] == "SB102"]
    assert [r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in sb102] == [
        "overlay/api.yaml"
    ]
    assert {r["properties"]["workload_id"] for r in sb102} == {
        "overlay/api.yaml#0:Deployment/shop/api"
    }
    code, _, _ = audit(capsys, "base", "overlay", "--write-baseline", "b.json", "--report-only")
    assert code == 0
    baseline = json.loads(Path("b.json").read_text())
    fps = [f for f in baseline["findings"] if f["rule_id"] == "SB102"]
    assert [f["workload_id"] for f in fps] == ["overlay/api.yaml#0:Deployment/shop/api"]
    # the same findings in the base alone are not the overlay's baseline
    code, out, _ = audit(capsys, "overlay", "--baseline", "b.json", "-o", "json")
    assert code == 0
    assert all(f["baseline"] for f in json.loads(out)["findings"] if f["rule_id"] == "SB102")


# --- fail closed --------------------------------------------------------------------------------


def test_empty_stdin_exits_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = audit(capsys, "-")
    assert code == 2 and "empty" in err and out == ""


def test_folder_of_unparsable_files_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "a.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    (tmp_path / "b.yaml").write_bytes(b"\x00\x01\x02binary: [junk\x7f\n\tkey: :\n")
    code, _, err = audit(capsys, str(tmp_path))
    assert code == 2
    assert "a.yaml:" in err and "--allow-parse-errors" in err


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("---\n...\n", "no Kubernetes object"),
        ("# only a comment\n", "empty"),
        ("just: a mapping\nwithout: kind\n", "no Kubernetes object"),
    ],
)
def test_input_without_objects_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, why: str
) -> None:
    (tmp_path / "x.yaml").write_text(text)
    code, _, err = audit(capsys, str(tmp_path / "x.yaml"))
    assert code == 2 and why in err


def test_allow_parse_errors_audits_what_could_be_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "bad.yaml").write_text("kind: Pod\nmetadata: {name: [unclosed\n")
    (tmp_path / "good.yaml").write_text("kind: Pod\nmetadata: {name: ok}\nspec: {containers: []}\n")
    code, out, _ = audit(capsys, str(tmp_path), "-o", "json", "--allow-parse-errors")
    assert code == 0
    doc = json.loads(out)
    assert [w["name"] for w in doc["workloads"]] == ["ok"] and doc["summary"]["errors"] == 1


def test_report_only_does_not_hide_unreadable_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("{{ .Values.broken }}: [\n"))
    code, _, err = audit(capsys, "-", "--report-only")
    assert code == 2 and "helm template" in err


def test_out_says_where_it_wrote_and_quiet_silences_it(
    capsys: pytest.CaptureFixture[str], two_files: Path
) -> None:
    code, out, err = audit(capsys, "base", "-o", "html", "--out", "r.html", "--report-only")
    assert code == 0 and out == ""
    assert "wrote the html report to r.html" in err
    code, out, err = audit(capsys, "base", "-o", "html", "--out", "r.html", "-q", "--report-only")
    assert code == 0 and out == "" and err == ""


def test_cluster_name_is_the_reports_source(
    capsys: pytest.CaptureFixture[str], two_files: Path
) -> None:
    _, out, _ = audit(capsys, "base", "-o", "json", "--report-only", "--cluster-name", "aks-west")
    assert json.loads(out)["source"] == {"name": "aks-west"}
    _, out, _ = audit(capsys, "base", "-o", "json", "--report-only")
    assert json.loads(out)["source"] == {"name": "base"}
