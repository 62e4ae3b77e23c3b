"""Report formats: schemas (JSON, SARIF 2.1.0), escaping, self-containment, structure."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from _report_case import scenario

from secretsboot.audit.findings import RULES
from secretsboot.audit.model import AuditResult, Coverage
from secretsboot.audit.report import FORMATS, render
from secretsboot.audit.report._comparison import PROPERTIES, TABLE
from secretsboot.errors import BadInputError

ROOT = Path(__file__).resolve().parents[2]
REPORT_SCHEMA = json.loads(
    (ROOT / "secretsboot/audit/schema/audit-report-v1.json").read_text(encoding="utf-8")
)
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())
EMPTY = AuditResult([], [], [], Coverage())


def report_validator() -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(REPORT_SCHEMA)
    cls.check_schema(REPORT_SCHEMA)
    return cls(REPORT_SCHEMA, format_checker=cls.FORMAT_CHECKER)


def sarif_validator() -> jsonschema.protocols.Validator:
    jsonschema.Draft4Validator.check_schema(SARIF_SCHEMA)
    return jsonschema.Draft4Validator(
        SARIF_SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )


@pytest.mark.parametrize("result", [scenario(), EMPTY], ids=["scenario", "empty"])
def test_json_report_matches_its_schema(result: AuditResult) -> None:
    doc = json.loads(render(result, "json"))
    report_validator().validate(doc)
    assert doc["schema"] == "secretsboot.audit/v1"


def test_json_schema_rejects_what_it_should() -> None:
    doc = json.loads(render(scenario(), "json"))
    validator = report_validator()
    for breaker in (
        lambda d: d.update(schema="secretsboot.audit/v2"),
        lambda d: d["findings"][0].update(severity="urgent"),
        lambda d: d["findings"][0].pop("fingerprint"),
        lambda d: d["findings"][0].update(extra=1),
        lambda d: d["workloads"][0]["approaches"][0].update(id="Not An Id"),
    ):
        broken = copy.deepcopy(doc)
        breaker(broken)
        assert not validator.is_valid(broken)


def test_json_report_content() -> None:
    doc = json.loads(render(scenario(), "json"))
    billing = next(w for w in doc["workloads"] if w["name"] == "billing")
    assert [a["id"] for a in billing["approaches"]] == ["k8s-secret-env", "literal-credential"]
    assert billing["worst"] == "high"
    by_rule = {f["rule_id"]: f for f in doc["findings"]}
    assert by_rule["SB508"]["suppressed"] and by_rule["SB508"]["suppression_kind"] == "inSource"
    assert by_rule["SB212"]["suppression_kind"] == "external"
    assert any(f["baseline"] for f in doc["findings"] if f["rule_id"] == "SB503")
    assert doc["summary"]["counted"] == sum(
        1 for f in doc["findings"] if not f["suppressed"] and not f["baseline"]
    )
    ids = {a["id"] for a in doc["comparison"]["approaches"]}
    assert ids == {
        "workload-identity",
        "keyvault-csi",
        "aad-pod-identity",
        "keyvault-flexvolume",
        "k8s-secret-env",
        "literal-credential",
    }
    literal = next(a for a in doc["comparison"]["approaches"] if a["id"] == "literal-credential")
    assert {literal[k]["value"] for k, _ in PROPERTIES} == {"no"}


@pytest.mark.parametrize("result", [scenario(), EMPTY], ids=["scenario", "empty"])
def test_sarif_is_valid_sarif_2_1_0(result: AuditResult) -> None:
    doc = json.loads(render(result, "sarif"))
    sarif_validator().validate(doc)
    assert doc["version"] == "2.1.0"


def test_sarif_schema_subset_is_not_a_rubber_stamp() -> None:
    doc = json.loads(render(scenario(), "sarif"))
    validator = sarif_validator()
    for breaker in (
        lambda d: d["runs"][0]["results"][0].pop("message"),
        lambda d: d["runs"][0]["results"][0].update(level="critical"),
        lambda d: d["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"].update(
            startLine=0
        ),
        lambda d: d["runs"][0]["tool"]["driver"].pop("name"),
        lambda d: d.update(version="2.0.0"),
    ):
        broken = copy.deepcopy(doc)
        breaker(broken)
        assert not validator.is_valid(broken)


def _results(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["runs"][0]["results"])


def test_sarif_rules_results_and_suppressions() -> None:
    result = scenario()
    doc = json.loads(render(result, "sarif"))
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == sorted(RULES)
    for r in rules:
        assert r["name"] and r["shortDescription"]["text"] and r["fullDescription"]["text"]
        assert r["help"]["text"] and r["defaultConfiguration"]["level"] in {
            "error",
            "warning",
            "note",
        }
        assert re.fullmatch(r"\d+\.\d", r["properties"]["security-severity"])
    results = _results(doc)
    assert len(results) == len(result.findings)
    for res in results:
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"]
        uri = res["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        assert not uri.startswith("/") and "\\" not in uri
        assert len(res["partialFingerprints"]["secretsboot/v1"]) == 32
    kinds = {s["kind"] for res in results for s in res.get("suppressions", [])}
    assert kinds == {"inSource", "external"}
    critical = next(r for r in results if r["properties"]["severity"] == "critical")
    assert critical["level"] == "error" and critical["properties"]["security-severity"] == "9.5"
    assert any(r.get("baselineState") == "unchanged" for r in results)


def test_html_is_self_contained_and_escaped() -> None:
    page = render(scenario(), "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<style>" in page
    for external in ("<link", "src=", "http://", "https://", "<script", "@import", "url("):
        assert external not in page, external
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the matrix: a row per workload, a column per approach found, coloured cells
    assert page.count('<tr><td class="mono">Deployment/') == 3
    assert 'class="cell sev-high">high</td>' in page


def test_markdown_escapes_and_collapses() -> None:
    md = render(scenario(), "markdown")
    assert "<script>" not in md and "&lt;script&gt;" in md
    assert "<details><summary>3 suppressed or baselined</summary>" in md
    assert "| Deployment/shop/billing |" in md
    assert "### Rules" in md and "| worst | rule | open | what | fix |" in md
    # each rule's fix is said once, in the rules table, not once per finding
    from secretsboot.audit.findings import RULES
    from secretsboot.audit.report.markdown import esc

    fixes = [RULES[r].fix for r in {f.rule_id for f in scenario().findings} if r in RULES]
    for fix in set(fixes):  # several rules may share one fix text: once per rule
        assert md.count(esc(fix)) == sum(fix in other for other in fixes)


def test_markdown_fits_a_pull_request_comment() -> None:
    """Many workloads: the worst PR_SERVICES are listed, the rest counted, and the comment
    stays within what a pull request holds (about 65,000 characters)."""
    from secretsboot.audit.engine import run
    from secretsboot.audit.loader import load_text
    from secretsboot.audit.report.markdown import PR_SERVICES

    docs = [
        "apiVersion: apps/v1\nkind: Deployment\n"
        f"metadata: {{name: app-{i:03d}, namespace: shop}}\n"
        "spec: {template: {spec: {serviceAccountName: app, automountServiceAccountToken: false,"
        " containers: [{name: app, image: myacr.azurecr.io/app:1"
        + (", env: [{name: DB_PASSWORD, value: Sup3r-Secret-pw}]" if i == 250 else "")
        + "}]}}}\n"
        for i in range(300)
    ]
    md = render(run(load_text("---\n".join(docs), "many.yaml")), "markdown")
    services = md.split("### Services", 1)[1].split("###", 1)[0]
    assert services.count("| Deployment/shop/app-") == PR_SERVICES
    assert "… and 200 more with milder findings" in services
    assert "| Deployment/shop/app-250 |" in services  # the one with a high finding is kept
    assert len(md) < 65_000


def test_table_has_every_part() -> None:
    text = render(scenario(), "table")
    for part in ("Workloads", "Findings", "Comparison", "coverage:", "error: k8s/broken.yaml:7"):
        assert part in text
    assert "\x1b[" not in text  # no colour unless asked


def test_comparison_table_is_complete() -> None:
    for approach, cells in TABLE.items():
        assert len(cells) == len(PROPERTIES), approach
        assert all(c.value in {"yes", "partial", "no"} for c in cells)
    assert [c.value for c in TABLE["keyvault-csi"]] == ["yes"] * 5
    env = [c.value for c in TABLE["k8s-secret-env"]]
    assert env == ["no", "partial", "no", "partial", "partial"]
    assert "etcd" in TABLE["k8s-secret-env"][1].note


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_every_format_renders_an_empty_result(fmt: str) -> None:
    assert render(EMPTY, fmt).endswith("\n")


def test_unknown_format_is_bad_input() -> None:
    with pytest.raises(BadInputError, match="unknown report format 'xml'"):
        render(EMPTY, "xml")


def test_long_reports_are_capped_and_say_so() -> None:
    from secretsboot.audit.report import RenderOptions

    result = scenario()
    table = render(result, "table", options=RenderOptions(max_rows=2))
    assert f"... {len(result.findings) - 2} more finding(s)" in table
    assert "... 1 more workload(s)" in table
    md = render(result, "markdown", options=RenderOptions(max_rows=3))
    opened = len(result.findings) - 3  # 3 are suppressed or baselined
    assert f"- … and {opened - 3} more (see the JSON or SARIF report)" in md
    full = render(result, "table", options=RenderOptions(max_rows=0))
    assert "more finding(s)" not in full


CORPUS = ROOT.parent / "shared" / "corpus"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="shared corpus not present")
def test_the_real_pipeline_on_the_corpus_matches_both_schemas() -> None:
    """Loader + classifier + detectors + governance on real manifests: valid JSON and SARIF."""
    from secretsboot.audit.engine import run
    from secretsboot.audit.loader import load

    result = run(load([CORPUS]))
    assert result.workloads and result.findings
    report_validator().validate(json.loads(render(result, "json")))
    sarif_validator().validate(json.loads(render(result, "sarif")))
    page = render(result, "html")
    assert page.count('<tr><td class="mono">') == len(result.workloads)
