"""SB230-SB231: fail-open injector webhooks, Vault sidecars in Jobs."""

from __future__ import annotations

import pytest
from _audit_case import rule_hits


def webhook(name: str, policy: str | None, service: str = "svc") -> str:
    line = f"    failurePolicy: {policy}\n" if policy else ""
    return (
        "apiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\n"
        "metadata: {name: injector}\nwebhooks:\n"
        f"  - name: {name}\n"
        f"    clientConfig: {{service: {{name: {service}, namespace: x}}}}\n" + line
    )


def job(kind: str, annotations: str) -> str:
    pod = (
        "template:\n  metadata:\n    annotations: " + annotations + "\n"
        "  spec: {restartPolicy: Never, containers: [{name: task, image: 'task:1'}]}\n"
    )
    if kind == "CronJob":
        body = "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n" + "".join(
            f"      {line}\n" for line in pod.splitlines()
        )
    else:
        body = "spec:\n" + "".join(f"  {line}\n" for line in pod.splitlines())
    api = "batch/v1"
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: nightly, namespace: ops}}\n{body}"


INJECT = '{vault.hashicorp.com/agent-inject: "true"}'
PRE_ONLY = (
    '{vault.hashicorp.com/agent-inject: "true", '
    'vault.hashicorp.com/agent-pre-populate-only: "true"}'
)

CASES = [
    ("vault injector ignores failures", webhook("vault.hashicorp.com", "Ignore"), "SB230", 1),
    (
        "workload identity webhook by service name",
        webhook("mutation.example", "Ignore", "azure-workload-identity-webhook-service"),
        "SB230",
        1,
    ),
    ("injector fails closed", webhook("vault.hashicorp.com", "Fail"), "SB230", 0),
    ("default policy is Fail", webhook("vault.hashicorp.com", None), "SB230", 0),
    ("unrelated webhook", webhook("sidecar-injector.istio.io", "Ignore", "istiod"), "SB230", 0),
    ("Job with vault sidecar", job("Job", INJECT), "SB231", 1),
    ("CronJob with vault sidecar", job("CronJob", INJECT), "SB231", 1),
    ("Job with pre-populate-only", job("Job", PRE_ONLY), "SB231", 0),
    ("Job without injection", job("Job", "{}"), "SB231", 0),
]


@pytest.mark.parametrize(
    ("text", "rule", "count"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_injectors(text: str, rule: str, count: int) -> None:
    hits = rule_hits(text, rule)
    assert len(hits) == count
    assert all(h.severity.label == "medium" and h.fix for h in hits)
