"""SB230-SB231: secret injectors that fail open, and sidecars that never let a Job finish.

SB230 (medium), the mutating webhook of a secret or identity injector (Vault agent
injector, Azure workload identity, akv2k8s, Bank-Vaults) with
``failurePolicy: Ignore``: while the webhook is down, pods start without their
secrets or identity (or with the literal placeholder) instead of failing visibly::

    kind: MutatingWebhookConfiguration
    webhooks:
      - name: vault.hashicorp.com
        failurePolicy: Ignore

SB231 (medium), a Job or CronJob injected with the Vault agent sidecar without
``vault.hashicorp.com/agent-pre-populate-only: "true"``: the sidecar keeps running
after the job's container exits, so the Job never completes::

    kind: Job
    spec: {template: {metadata: {annotations: {vault.hashicorp.com/agent-inject: "true"}}}}
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, as_list, evidence_at
from secretsboot.audit.model import Finding, Severity

SB230 = Rule(
    id="SB230",
    name="injector-fails-open",
    title="Secret injector webhook fails open",
    severity=Severity.MEDIUM,
    description=(
        "With failurePolicy: Ignore, pods admitted while the injector is down start without "
        "their secrets or identity, and fail later in ways that are hard to trace."
    ),
    fix="Set failurePolicy: Fail (and run the webhook with several replicas and a "
    "PodDisruptionBudget), so a pod waits instead of starting without its secrets.",
)
SB231 = Rule(
    id="SB231",
    name="job-vault-sidecar-never-exits",
    title="Vault agent sidecar keeps a Job from completing",
    severity=Severity.MEDIUM,
    description=(
        "The injected vault-agent sidecar runs until it is killed; in a Job or CronJob the pod "
        "never completes and the job hangs (or piles up)."
    ),
    fix='Add the annotation vault.hashicorp.com/agent-pre-populate-only: "true" (init '
    "container only), or use an init container that exits, such as secretsboot fetch.",
)

RULES = (SB230, SB231)

# webhook names and service names of the injectors the audit knows
_INJECTORS = (
    "vault",
    "azure-workload-identity",
    "akv2k8s",
    "spv.no",
    "secrets-webhook",
    "banzaicloud",
    "bank-vaults",
)


def _is_injector(webhook: dict[str, object]) -> bool:
    service = as_dict(as_dict(webhook.get("clientConfig")).get("service"))
    text = f"{webhook.get('name') or ''} {service.get('name') or ''}".lower()
    return any(marker in text for marker in _INJECTORS)


def detect(ctx: Context) -> Iterator[Finding]:
    for config in ctx.of_kind("MutatingWebhookConfiguration"):
        for i, webhook in enumerate(as_list(config.body.get("webhooks"))):
            webhook = as_dict(webhook)
            if _is_injector(webhook) and webhook.get("failurePolicy") == "Ignore":
                yield SB230.finding(
                    evidence=evidence_at(config, ("webhooks", i, "failurePolicy")),
                    message=(
                        f"webhook '{webhook.get('name') or '?'}' of {config.ref} ignores its "
                        "own failures: pods start without their secrets while it is down"
                    ),
                )
    for pod in ctx.pods:
        if pod.workload.kind not in ("Job", "CronJob"):
            continue
        notes = pod.annotations
        injected = str(notes.get("vault.hashicorp.com/agent-inject") or "").lower() == "true"
        pre_only = (
            str(notes.get("vault.hashicorp.com/agent-pre-populate-only") or "").lower() == "true"
        )
        if injected and not pre_only:
            yield pod.finding(
                SB231,
                evidence=pod.at(
                    (*pod.meta_path, "annotations", "vault.hashicorp.com/agent-inject")
                ),
                message=f"{pod.workload.kind} gets the Vault agent sidecar, which never exits",
            )
