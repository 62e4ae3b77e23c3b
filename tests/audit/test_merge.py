"""``secretsboot audit merge``: many clusters' JSON reports, one fleet report."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from secretsboot.cli import main

CORPUS = Path(__file__).resolve().parent / "corpus"
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = []
    folder = tmp_path_factory.mktemp("reports")
    for cluster, repo in (("aks-west", "vault-tutorial"), ("aks-east", "csi-examples")):
        path = folder / f"{cluster}.json"
        code = main(
            [
                "audit",
                str(CORPUS / repo),
                "-o",
                "json",
                "--out",
                str(path),
                "--cluster-name",
                cluster,
                "--report-only",
                "-q",
            ]
        )
        assert code == 0
        out.append(path)
    return out


def merge(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["audit", "merge", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_each_report_names_its_cluster(reports: list[Path]) -> None:
    names = [json.loads(p.read_text())["source"]["name"] for p in reports]
    assert names == ["aks-west", "aks-east"]


@pytest.mark.parametrize("fmt", ["table", "markdown", "html"])
def test_fleet_report_has_the_cluster_as_a_column_and_totals(
    capsys: pytest.CaptureFixture[str], reports: list[Path], fmt: str
) -> None:
    code, out, _ = merge(capsys, *map(str, reports), "-o", fmt)
    assert code == 0
    for cluster in ("aks-west", "aks-east"):
        assert cluster in out
    for section in ("Clusters", "Approaches", "Rules", "Worst findings"):
        assert section in out
    assert "literal-credential" in out and "keyvault-csi" in out and "SB102" in out


def test_totals_add_up(reports: list[Path]) -> None:
    from secretsboot.audit.merge import merge as fleet_of

    fleet = fleet_of(reports)
    docs = [json.loads(p.read_text()) for p in reports]
    assert sum(c.workloads for c in fleet.clusters.values()) == sum(
        len(d["workloads"]) for d in docs
    )
    literal = sum(
        1
        for d in docs
        for w in d["workloads"]
        if "literal-credential" in {a["id"] for a in w["approaches"]}
    )
    assert fleet.approaches["literal-credential"] == literal
    assert fleet.approach_clusters["literal-credential"]["aks-west"] == literal
    open_sb102 = sum(
        1 for d in docs for f in d["findings"] if f["rule_id"] == "SB102" and not f["suppressed"]
    )
    assert sum(fleet.rules["SB102"].values()) == open_sb102
    worst = fleet.worst_findings()
    assert worst[0]["severity"] == "high" and worst[0]["cluster"] in ("aks-west", "aks-east")


def test_fleet_sarif_is_valid_with_one_run_per_cluster(
    capsys: pytest.CaptureFixture[str], reports: list[Path], tmp_path: Path
) -> None:
    out_file = tmp_path / "fleet.sarif"
    code, out, err = merge(capsys, *map(str, reports), "-o", "sarif", "--out", str(out_file))
    assert code == 0 and out == "" and f"to {out_file}" in err
    log = json.loads(out_file.read_text())
    jsonschema.validators.validator_for(SARIF_SCHEMA)(SARIF_SCHEMA).validate(log)
    assert [r["automationDetails"]["id"] for r in log["runs"]] == ["aks-west/", "aks-east/"]
    total = sum(len(json.loads(p.read_text())["findings"]) for p in reports)
    assert sum(len(r["results"]) for r in log["runs"]) == total


def test_bad_input_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{\nnot json\n")
    assert merge(capsys, str(junk))[0] == 2
    assert merge(capsys)[0] == 2
    assert merge(capsys, str(tmp_path / "missing.json"))[0] == 2


def test_merge_is_the_subcommand_even_beside_a_folder_named_merge(
    capsys: pytest.CaptureFixture[str],
    reports: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (tmp_path / "merge").mkdir()
    (tmp_path / "merge" / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
    )
    monkeypatch.chdir(tmp_path)
    code, out, _ = merge(capsys, *map(str, reports))
    assert code == 0 and "aks-" in out  # the fleet, not an audit of ./merge
    code, _, err = merge(capsys)
    assert code == 2 and "./merge" in err


@pytest.fixture(scope="module")
def fleet_inputs(reports: list[Path], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Many reports: copies of the two under other cluster names, one name twice, one copy
    on one line (read whole, not line by line), enough findings to fill the worst list."""
    from secretsboot.audit.merge import TOP_FINDINGS

    folder = tmp_path_factory.mktemp("fleet")
    docs = [json.loads(p.read_text()) for p in reports]
    assert sum(len(d["findings"]) for d in docs) * 4 > TOP_FINDINGS
    out = []
    for i in range(8):
        path = folder / f"c{i}.json"
        source = reports[i % 2]
        text = source.read_text()
        if i not in (1, 5):  # c1 and c5 keep the name aks-east: c5 is shown with its file
            text = text.replace('"source":{"name":"aks-', f'"source":{{"name":"aks{i}-', 1)
        if i == 6:
            text = json.dumps(json.loads(text))
        path.write_text(text)
        out.append(path)
    return out


@pytest.mark.parametrize("fmt", ["table", "markdown", "html", "sarif"])
def test_parallel_merge_is_the_serial_merge(fleet_inputs: list[Path], fmt: str) -> None:
    import io

    from secretsboot.audit import merge as fleet_merge

    outputs = []
    for parallel in (False, True):
        fleet = fleet_merge.merge(fleet_inputs, parallel=parallel)
        out = io.StringIO()
        if fmt == "sarif":
            fleet_merge.write_sarif(fleet, out, parallel=parallel)
        else:
            fleet_merge.write(fleet, fmt, out)
        outputs.append(out.getvalue())
    assert outputs[0] == outputs[1]
    if fmt == "sarif":
        runs = json.loads(outputs[0])["runs"]
        assert len(runs) == len(fleet_inputs)


def test_parallel_merge_keeps_the_worst_findings_in_reading_order(
    fleet_inputs: list[Path],
) -> None:
    from secretsboot.audit.merge import TOP_FINDINGS
    from secretsboot.audit.merge import merge as fleet_merge

    serial = fleet_merge(fleet_inputs, parallel=False)
    parallel = fleet_merge(fleet_inputs, parallel=True)
    assert len(serial.worst_findings()) == TOP_FINDINGS
    assert serial.worst_findings() == parallel.worst_findings()
    assert list(serial.clusters) == list(parallel.clusters)
    assert f"aks-east ({fleet_inputs[5]})" in serial.clusters  # the name given twice
    assert serial.rule_clusters == parallel.rule_clusters
    assert serial.approach_clusters == parallel.approach_clusters


def test_parallel_merge_reports_the_first_bad_report(
    fleet_inputs: list[Path], tmp_path: Path
) -> None:
    from secretsboot.audit.merge import merge as fleet_merge
    from secretsboot.errors import BadInputError

    bad = [tmp_path / "bad1.json", tmp_path / "bad2.json"]
    bad[0].write_text('{\n"schema":"other/v9",\n"workloads":[\n]\n}\n')
    bad[1].write_text("{\nnot json\n")
    paths = [*fleet_inputs[:3], bad[0], *fleet_inputs[3:], bad[1]]
    messages = []
    for parallel in (False, True):
        with pytest.raises(BadInputError) as caught:
            fleet_merge(paths, parallel=parallel)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "bad1.json: schema 'other/v9'" in messages[0]


@pytest.mark.parametrize("parallel", [False, True])
def test_one_pass_sarif_is_the_two_pass_sarif(fleet_inputs: list[Path], parallel: bool) -> None:
    import io

    from secretsboot.audit import merge as fleet_merge

    two = io.StringIO()
    fleet_merge.write_sarif(fleet_merge.merge(fleet_inputs, parallel=False), two, parallel=False)
    one = io.StringIO()
    fleet = fleet_merge.merge_sarif(fleet_inputs, one, parallel=parallel)
    assert one.getvalue() == two.getvalue()
    assert f"aks-east ({fleet_inputs[5]})" in fleet.clusters  # its run written again, renamed
    assert f'"id":"aks-east ({fleet_inputs[5]})/"' in one.getvalue()


def test_sarif_result_text_is_the_encoded_result_object() -> None:
    from secretsboot.audit.merge import _SarifResults
    from secretsboot.audit.report._stream import encode

    base = {
        "rule_id": "SB102",
        "severity": "high",
        "message": 'literal "DB_PASSWORD" in café',
        "evidence": {"object": "Deployment/shop/api"},
        "fingerprint": "abc123",
    }
    cases = [
        (base, None),
        ({**base, "suppressed": True, "baseline": True}, ["suppressions", "baselineState"]),
        ({**base, "rule_id": "SB999", "severity": "low"}, None),
        ({"rule_id": "SB101"}, None),
    ]
    results = _SarifResults()
    for doc, extra in cases:
        text = results.text(doc, 'east "1"')
        parsed = json.loads(text)
        assert encode(parsed) == text  # the encoder's own bytes, keys in its order
        keys = ["ruleId", "level", "message", "locations", "partialFingerprints", "properties"]
        if doc["rule_id"] != "SB999":
            keys.append("ruleIndex")
        assert list(parsed) == keys + (extra or [])
        assert parsed["message"]["text"] == f'[east "1"] {doc.get("message", "")}'
        assert parsed["properties"] == {"cluster": 'east "1"', "severity": doc.get("severity")}
        where = parsed["locations"][0]["logicalLocations"][0]["fullyQualifiedName"]
        assert where == f'east "1"/{doc.get("evidence", {}).get("object", "")}'
