"""The literal-credential approach and SB102/SB103 agree: one judgement, two consumers.

Every env case of the classifier's table (test_classify.LITERAL_CASES) and of the
detector's (test_findings_secrets.CASES_SB102) runs through the whole pipeline; the
workload is labelled ``literal-credential`` exactly when SB102 is raised for it.
"""

from __future__ import annotations

import pytest
from test_classify import LITERAL_CASES
from test_findings_secrets import CASES_SB102

from secretsboot.audit.engine import run
from secretsboot.audit.loader import load_text

ENV_CASES = [(n, v, flagged) for n, v, flagged in LITERAL_CASES] + [
    (n, v.replace("\\n", "\n"), bool(expected)) for _, n, v, expected in CASES_SB102
]
ARGS_CASES = [
    (["--db-password=Tr0ub4dor-3", "--port=80"], True),
    (["--password", "Tr0ub4dor"], True),
    (["printenv TEST_SECRET && sleep 60"], False),
    (["--password=$(DB_PASSWORD)"], False),
]


def _audit(container: dict[str, object]) -> tuple[bool, set[str]]:
    import json

    doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "app", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "a", **container}]}}},
    }
    result = run(load_text(json.dumps(doc), "case.json"))
    (w,) = result.workloads
    return "literal-credential" in w.approach_ids, {f.rule_id for f in result.findings}


@pytest.mark.parametrize(("name", "value", "flagged"), ENV_CASES)
def test_env_label_and_sb102_agree(name: str, value: str, flagged: bool) -> None:
    labelled, rules = _audit({"env": [{"name": name, "value": value}]})
    assert labelled is flagged
    assert ("SB102" in rules) is flagged


@pytest.mark.parametrize(("args", "flagged"), ARGS_CASES)
def test_args_label_and_sb103_agree(args: list[str], flagged: bool) -> None:
    labelled, rules = _audit({"args": args})
    assert labelled is flagged
    assert ("SB103" in rules) is flagged
