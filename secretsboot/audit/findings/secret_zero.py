"""SB201-SB204: a long-lived credential used as "secret zero" to fetch the other secrets.

SB201 (high), the CSI driver logs in to Key Vault with a service-principal secret::

    volumes:
      - csi:
          driver: secrets-store.csi.k8s.io
          nodePublishSecretRef: {name: secrets-store-creds}

SB202 (high), the Key Vault FlexVolume with service-principal credentials::

    flexVolume: {driver: azure/kv, secretRef: {name: kvcreds}}

SB203 (high), an External Secrets store for Azure Key Vault authenticating with a
client secret (``authType`` ServicePrincipal, the default)::

    kind: SecretStore
    spec: {provider: {azurekv: {authSecretRef: {clientSecret: {name: sp, key: secret}}}}}

SB204 (high), an External Secrets store for Vault authenticating with a static token
or an AppRole secret id kept in a Secret::

    spec: {provider: {vault: {auth: {tokenSecretRef: {name: vault-token, key: token}}}}}

Workload identity (or a managed identity) removes the secret zero entirely.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, evidence_at
from secretsboot.audit.model import Finding, Severity

_WI_FIX = (
    "Use workload identity: a user-assigned managed identity with a federated credential for "
    "the pod's ServiceAccount, so no client secret exists to steal or rotate."
)

SB201 = Rule(
    id="SB201",
    name="csi-service-principal-secret",
    title="Secrets Store CSI volume authenticates with a service-principal secret",
    severity=Severity.HIGH,
    description=(
        "nodePublishSecretRef hands the CSI driver a service principal's client secret kept in "
        "a Kubernetes Secret: a long-lived credential that unlocks the vault, stored beside the "
        "workload it protects, and expiring silently."
    ),
    fix=_WI_FIX + " In the SecretProviderClass set clientID and drop nodePublishSecretRef.",
)
SB202 = Rule(
    id="SB202",
    name="flexvolume-service-principal-secret",
    title="Key Vault FlexVolume authenticates with a service-principal secret",
    severity=Severity.HIGH,
    description=(
        "The FlexVolume's secretRef holds a service principal's client id and secret in a "
        "Kubernetes Secret: secret zero, readable by anyone who can read Secrets there."
    ),
    fix="Migrate to the Secrets Store CSI driver (provider azure) with workload identity.",
)
SB203 = Rule(
    id="SB203",
    name="secretstore-azure-client-secret",
    title="External Secrets store for Key Vault uses a client secret",
    severity=Severity.HIGH,
    description=(
        "The SecretStore authenticates to Azure Key Vault as a service principal whose client "
        "secret (or certificate) is kept in a Kubernetes Secret."
    ),
    fix=_WI_FIX + " Set authType: WorkloadIdentity and a serviceAccountRef.",
)
SB204 = Rule(
    id="SB204",
    name="secretstore-vault-static-credential",
    title="External Secrets store for Vault uses a static token or AppRole secret",
    severity=Severity.HIGH,
    description=(
        "The SecretStore logs in to Vault with a token or AppRole secret id kept in a "
        "Kubernetes Secret: a long-lived credential that opens every path its policy allows."
    ),
    fix="Use Vault's kubernetes (or jwt) auth method with the store's ServiceAccount.",
)

RULES = (SB201, SB202, SB203, SB204)


def _pod_findings(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        for path, vol in pod.volumes():
            csi = as_dict(vol.get("csi"))
            ref = as_dict(csi.get("nodePublishSecretRef"))
            if csi.get("driver") == "secrets-store.csi.k8s.io" and ref:
                name = str(ref.get("name") or "?")
                yield pod.finding(
                    SB201,
                    evidence=pod.at((*path, "csi", "nodePublishSecretRef"), name),
                    message=(
                        f"volume '{vol.get('name') or '?'}' logs in to the vault with the "
                        f"service-principal secret in Secret '{name}'"
                    ),
                )
            flex = as_dict(vol.get("flexVolume"))
            ref = as_dict(flex.get("secretRef"))
            if str(flex.get("driver") or "").startswith("azure/kv") and ref:
                name = str(ref.get("name") or "?")
                yield pod.finding(
                    SB202,
                    evidence=pod.at((*path, "flexVolume", "secretRef"), name),
                    message=(
                        f"Key Vault FlexVolume '{vol.get('name') or '?'}' uses the "
                        f"service-principal credentials in Secret '{name}'"
                    ),
                )


def _store_findings(ctx: Context) -> Iterator[Finding]:
    for store in ctx.of_kind("SecretStore", "ClusterSecretStore"):
        if not store.api_version.startswith("external-secrets.io"):
            continue
        provider = as_dict(as_dict(store.body.get("spec")).get("provider"))
        azure = as_dict(provider.get("azurekv"))
        auth = as_dict(azure.get("authSecretRef"))
        auth_type = str(azure.get("authType") or "ServicePrincipal")
        if azure and auth_type == "ServicePrincipal":
            for key in ("clientSecret", "clientCertificate"):
                ref = as_dict(auth.get(key))
                if ref:
                    name = str(ref.get("name") or "?")
                    yield SB203.finding(
                        evidence=evidence_at(
                            store, ("spec", "provider", "azurekv", "authSecretRef", key), name
                        ),
                        message=(
                            f"{store.kind} '{store.name}' authenticates to Key Vault with the "
                            f"service-principal {key} in Secret '{name}'"
                        ),
                    )
        vault_auth = as_dict(as_dict(provider.get("vault")).get("auth"))
        static = {
            ("tokenSecretRef",): "a static Vault token",
            ("appRole", "secretRef"): "an AppRole secret id",
        }
        for sub, what in static.items():
            node = vault_auth
            for part in sub:
                node = as_dict(node.get(part))
            if node:
                name = str(node.get("name") or "?")
                yield SB204.finding(
                    evidence=evidence_at(store, ("spec", "provider", "vault", "auth", *sub), name),
                    message=(
                        f"{store.kind} '{store.name}' logs in to Vault with {what} kept in "
                        f"Secret '{name}'"
                    ),
                )


def detect(ctx: Context) -> Iterator[Finding]:
    yield from _pod_findings(ctx)
    yield from _store_findings(ctx)
