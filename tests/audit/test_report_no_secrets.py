"""No secret value ever reaches a report: canaries in every place a literal can hide."""

from __future__ import annotations

import base64
import json

import pytest
from _audit_case import manifests, workloads

from secretsboot.audit.findings import run_detectors
from secretsboot.audit.model import AuditResult, Coverage
from secretsboot.audit.policy import baseline_text, govern
from secretsboot.audit.report import FORMATS, render

CANARIES = {
    "env": "CANARY-7f3a91-env-Pa55word",
    "args": "CANARY-7f3a92-args-token",
    "configmap": "CANARY-7f3a93-configmap",
    "connstr": "CANARY-7f3a94-connstr",
    "url": "CANARY-7f3a95-url",
    "secret-data": "CANARY-7f3a96-secret-data",
    "string-data": "CANARY-7f3a97-string-data",
    "pem": "CANARY7f3a98PEMBODYxyzw",
    "account-key": "Q0FOQVJZLTdmM2E5OS1hY2NvdW50LWtleS12YWx1ZQ==",
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


MANIFESTS = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: leaky, namespace: shop}}
spec:
  template:
    spec:
      containers:
        - name: app
          image: app:1.0
          args: ["--api-token={CANARIES["args"]}"]
          env:
            - {{name: DB_PASSWORD, value: "{CANARIES["env"]}"}}
            - {{name: BROKER_URL, value: "amqp://svc:{CANARIES["url"]}@rabbit:5672/"}}
            - name: TLS_KEY
              value: "-----BEGIN PRIVATE KEY-----\\n{CANARIES["pem"]}\\n-----END PRIVATE KEY-----"
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: cfg, namespace: shop}}
data:
  db-password: "{CANARIES["configmap"]}"
  conn: "Server=db;User Id=sa;Password={CANARIES["connstr"]};"
  storage: "AccountName=a;AccountKey={CANARIES["account-key"]}"
---
apiVersion: v1
kind: Secret
metadata: {{name: creds, namespace: shop}}
data:
  password: {b64(CANARIES["secret-data"])}
stringData:
  token: "{CANARIES["string-data"]}"
"""


def _literals() -> list[str]:
    """Every string of the manifests that holds a canary (a whole env value, a decoded
    Secret value...): what a plain hash in a report would have been taken of."""
    import yaml

    out: list[str] = []
    stack: list[object] = list(yaml.safe_load_all(MANIFESTS))
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            for text in (node, _decoded(node)):
                if any(c in text for c in CANARIES.values()):
                    out.append(text)
    return out


def _decoded(text: str) -> str:
    try:
        return base64.b64decode(text, validate=True).decode()
    except ValueError:
        return ""


def _forms(value: str, *, prefixes: bool = True) -> list[str]:
    """A value in every form a report must not hold: itself, its base64, a cleartext prefix
    (down to the 2-character preview the first version showed), and prefixes of its plain
    SHA-256, SHA-1 and MD5 (a plain hash confirms a guess offline)."""
    import hashlib

    raw = value.encode()
    forms = [
        value,
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
    ]
    if prefixes:  # of the canaries; a whole literal starts with public text ("AccountName=")
        forms += [value[:12], value[:5], f"{value[:2]}…"]
    for name in ("sha256", "sha1", "md5"):
        forms.append(hashlib.new(name, raw).hexdigest()[:8])
    return forms


def test_the_forms_cover_every_literal_that_holds_a_canary() -> None:
    assert len(_literals()) >= len(CANARIES)


def _detector_result() -> AuditResult:
    items = manifests(MANIFESTS)
    wls = workloads(items)
    findings = run_detectors(items, wls)
    result = AuditResult(wls, findings, [], Coverage(objects=len(items)), tool_version="t")
    return govern(result)


def _engine_result() -> AuditResult:
    from secretsboot.audit.engine import run
    from secretsboot.audit.loader import load_text

    return run(load_text(MANIFESTS, "leaky.yaml"))


@pytest.mark.parametrize("make", [_detector_result, _engine_result], ids=["detectors", "engine"])
@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_no_canary_in_any_format(make: object, fmt: str) -> None:
    result = make()  # type: ignore[operator]
    rules = {f.rule_id for f in result.findings}
    assert {"SB102", "SB103", "SB104", "SB105"} <= rules  # the canaries were found...
    text = render(result, fmt)
    cases = [
        *((n, v, True) for n, v in CANARIES.items()),
        *(("literal", v, False) for v in _literals()),
    ]
    for name, canary, prefixes in cases:
        for form in _forms(canary, prefixes=prefixes):
            assert form not in text, f"{name} leaked into {fmt} as {form!r}"  # ...and not shown


def test_no_canary_in_baseline_or_reprs() -> None:
    result = _detector_result()
    dumped = (
        baseline_text(result)
        + repr(result)
        + json.dumps([f.evidence.detail for f in result.findings])
    )
    for canary in CANARIES.values():
        for form in _forms(canary):
            assert form not in dumped
    for literal in _literals():
        for form in _forms(literal, prefixes=False):
            assert form not in dumped


def test_critical_literals_are_critical() -> None:
    result = _detector_result()
    critical = {
        (f.rule_id, f.evidence.path) for f in result.findings if f.severity.label == "critical"
    }
    assert ("SB102", "spec.template.spec.containers[0].env[2].value") in critical  # PEM key
    assert ("SB104", "data.storage") in critical  # Azure account key
