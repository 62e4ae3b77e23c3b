"""SB210-SB213: deprecated Azure identity and secret delivery (aad-pod-identity, FlexVolume).

SB210 (medium), aad-pod-identity objects (deprecated October 2022, archived 2023)::

    apiVersion: aadpodidentity.k8s.io/v1
    kind: AzureIdentity          # or AzureIdentityBinding

SB211 (medium), a pod opting in to aad-pod-identity::

    template: {metadata: {labels: {aadpodidbinding: orders}}}

SB212 (medium), the Key Vault FlexVolume (deprecated, FlexVolume is removed from AKS)::

    volumes: [{flexVolume: {driver: azure/kv, options: {keyvaultname: kv}}}]

SB213 (medium), a SecretProviderClass whose identity is aad-pod-identity::

    kind: SecretProviderClass
    spec: {parameters: {usePodIdentity: "true"}}

Migration: workload identity for the identity (label the pod
``azure.workload.identity/use: "true"``, annotate its ServiceAccount with
``azure.workload.identity/client-id``, add a federated credential), and the
Secrets Store CSI driver (``provider: azure``, ``clientID``) for the files.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, evidence_at
from secretsboot.audit.model import Finding, Severity

_WI_MIGRATION = (
    "Migrate to workload identity: add a federated identity credential "
    "(subject system:serviceaccount:<ns>:<sa>) to the same managed identity, annotate the "
    "ServiceAccount with azure.workload.identity/client-id, label the pod "
    'azure.workload.identity/use: "true", then remove the AzureIdentity/Binding.'
)

SB210 = Rule(
    id="SB210",
    name="aad-pod-identity-object",
    title="aad-pod-identity object (deprecated)",
    severity=Severity.MEDIUM,
    description=(
        "aad-pod-identity was deprecated in October 2022 and archived in 2023: it gets no "
        "security fixes, and its NMI intercepts IMDS for every pod on the node."
    ),
    fix=_WI_MIGRATION,
)
SB211 = Rule(
    id="SB211",
    name="aad-pod-identity-binding-label",
    title="Workload uses aad-pod-identity (deprecated)",
    severity=Severity.MEDIUM,
    description="The pod opts in to aad-pod-identity with the aadpodidbinding label.",
    fix=_WI_MIGRATION,
)
SB212 = Rule(
    id="SB212",
    name="keyvault-flexvolume",
    title="Key Vault FlexVolume (deprecated)",
    severity=Severity.MEDIUM,
    description=(
        "The Key Vault FlexVolume driver is deprecated and FlexVolume support is gone from "
        "current AKS versions; it no longer receives fixes."
    ),
    fix=(
        "Migrate to the Secrets Store CSI driver: a SecretProviderClass with provider: azure, "
        "keyvaultName, tenantId, objects and clientID (workload identity), and a csi volume "
        "with driver secrets-store.csi.k8s.io."
    ),
)
SB213 = Rule(
    id="SB213",
    name="spc-pod-identity",
    title="SecretProviderClass relies on aad-pod-identity (deprecated)",
    severity=Severity.MEDIUM,
    description='usePodIdentity: "true" makes the CSI provider authenticate via aad-pod-identity.',
    fix=(
        "Set clientID to the managed identity's client id (workload identity) and remove "
        "usePodIdentity; " + _WI_MIGRATION
    ),
)

RULES = (SB210, SB211, SB212, SB213)


def detect(ctx: Context) -> Iterator[Finding]:
    for obj in ctx.of_kind("AzureIdentity", "AzureIdentityBinding", "AzurePodIdentityException"):
        if obj.api_version.startswith("aadpodidentity.k8s.io"):
            yield SB210.finding(
                evidence=evidence_at(obj, ("kind",)),
                message=f"{obj.kind} '{obj.name}' belongs to deprecated aad-pod-identity",
            )
    for spc in ctx.of_kind("SecretProviderClass"):
        params = as_dict(as_dict(spc.body.get("spec")).get("parameters"))
        if str(params.get("usePodIdentity") or "").strip().lower() == "true":
            yield SB213.finding(
                evidence=evidence_at(spc, ("spec", "parameters", "usePodIdentity")),
                message=f"SecretProviderClass '{spc.name}' authenticates via aad-pod-identity",
            )
    for pod in ctx.pods:
        selector = pod.labels.get("aadpodidbinding")
        if selector is not None:
            yield pod.finding(
                SB211,
                evidence=pod.at((*pod.meta_path, "labels", "aadpodidbinding"), str(selector)),
                message=f"pod template opts in to aad-pod-identity (selector '{selector}')",
            )
        for path, vol in pod.volumes():
            flex = as_dict(vol.get("flexVolume"))
            if str(flex.get("driver") or "").startswith("azure/kv"):
                yield pod.finding(
                    SB212,
                    evidence=pod.at((*path, "flexVolume", "driver")),
                    message=f"volume '{vol.get('name') or '?'}' uses the deprecated Key Vault "
                    "FlexVolume",
                )
