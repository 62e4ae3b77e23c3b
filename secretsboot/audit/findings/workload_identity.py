"""SB220-SB222: workload-identity mistakes that leave the pod without its Azure identity.

SB220 (medium; low when every pod using the ServiceAccount carries the label too),
the opt-in label on the ServiceAccount, where the webhook never looks::

    kind: ServiceAccount
    metadata: {labels: {azure.workload.identity/use: "true"}}

SB221 (medium), a pod labelled for workload identity whose ServiceAccount (present
in the input) has no ``azure.workload.identity/client-id`` annotation, and no
container sets ``AZURE_CLIENT_ID`` itself::

    template: {metadata: {labels: {azure.workload.identity/use: "true"}}}
    # ServiceAccount orders: no annotations

SB222 (medium), a client-id (or tenant-id) annotation that is not a GUID::

    annotations: {azure.workload.identity/client-id: "${USER_ASSIGNED_CLIENT_ID}"}

These are the field's most reported failure: the webhook injects nothing and the
pod fails at its first Azure call (AADSTS errors, "no credential").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from secretsboot.audit.findings._base import (
    USE_LABEL,
    Context,
    PodView,
    Rule,
    as_dict,
    as_list,
    evidence_at,
    opts_in_to_workload_identity,
    same_namespace,
)
from secretsboot.audit.model import Finding, Manifest, Severity

CLIENT_ID = "azure.workload.identity/client-id"
TENANT_ID = "azure.workload.identity/tenant-id"
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)

SB220 = Rule(
    id="SB220",
    name="wi-label-on-serviceaccount",
    title="Workload-identity label on the ServiceAccount instead of the pod",
    severity=Severity.MEDIUM,
    description=(
        "The azure.workload.identity/use label belongs on the pod (template). On the "
        "ServiceAccount the webhook ignores it, so no token or AZURE_* env is injected."
    ),
    fix=(
        'Move the label azure.workload.identity/use: "true" to the pod template\'s '
        "metadata.labels; keep only the client-id annotation on the ServiceAccount."
    ),
)
SB221 = Rule(
    id="SB221",
    name="wi-serviceaccount-without-client-id",
    title="Workload-identity pod's ServiceAccount has no client-id annotation",
    severity=Severity.MEDIUM,
    description=(
        "The pod is labelled for workload identity, but its ServiceAccount has no "
        "azure.workload.identity/client-id annotation, so AZURE_CLIENT_ID is not injected."
    ),
    fix=(
        "Annotate the ServiceAccount with azure.workload.identity/client-id: <the managed "
        "identity's client id>, and give that identity a federated credential for "
        "system:serviceaccount:<ns>:<sa>."
    ),
)
SB222 = Rule(
    id="SB222",
    name="wi-client-id-not-guid",
    title="Workload-identity client-id annotation is not a GUID",
    severity=Severity.MEDIUM,
    description=(
        "The client-id (or tenant-id) annotation must be the identity's GUID. A typo, a name "
        "or an unrendered placeholder makes every token exchange fail."
    ),
    fix="Set the annotation to the managed identity's client id (a GUID), e.g. from "
    "`az identity show --query clientId`.",
)

RULES = (SB220, SB221, SB222)


def _sets_client_id(pod: PodView) -> bool:
    return any(
        as_dict(env).get("name") == "AZURE_CLIENT_ID"
        for c in pod.containers()
        for env in as_list(c.body.get("env"))
    )


def _annotations(sa: Manifest) -> dict[str, object]:
    return as_dict(as_dict(sa.body.get("metadata")).get("annotations"))


def detect(ctx: Context) -> Iterator[Finding]:
    facts = ctx.pod_facts()  # every workload's, not only the reported ones
    for sa in ctx.of_kind("ServiceAccount"):
        labels = as_dict(as_dict(sa.body.get("metadata")).get("labels"))
        if USE_LABEL in labels:
            users = [f for f in facts.named(sa.name) if same_namespace(f.namespace, sa.namespace)]
            harmless = bool(users) and all(f.uses_workload_identity for f in users)
            yield SB220.finding(
                evidence=evidence_at(sa, ("metadata", "labels", USE_LABEL)),
                message=(
                    f"ServiceAccount '{sa.name}' carries the {USE_LABEL} label; the webhook "
                    "only reads it on pods" + (" (its pods are labelled too)" if harmless else "")
                ),
                severity=Severity.LOW if harmless else None,
            )
        annotations = _annotations(sa)
        for key in (CLIENT_ID, TENANT_ID):
            value = annotations.get(key)
            if value is not None and not _GUID.match(str(value).strip()):
                yield SB222.finding(
                    evidence=evidence_at(sa, ("metadata", "annotations", key), str(value)[:64]),
                    message=f"ServiceAccount '{sa.name}' annotation {key} is not a GUID",
                )

    for pod in ctx.pods:
        if not opts_in_to_workload_identity(pod.labels):
            continue
        account = ctx.service_account(pod)
        if account is None or CLIENT_ID in _annotations(account) or _sets_client_id(pod):
            continue
        yield pod.finding(
            SB221,
            evidence=evidence_at(account, ("metadata",), pod.service_account),
            message=(
                f"pod uses workload identity but ServiceAccount '{account.name}' has no "
                f"{CLIENT_ID} annotation"
            ),
        )
