"""SB201-SB222: secret zero, deprecated identity/delivery, workload-identity mistakes."""

from __future__ import annotations

import pytest
from _audit_case import deployment, rule_hits

CSI_SP = """
containers: [{name: app, image: app:1}]
volumes:
  - name: kv
    csi:
      driver: secrets-store.csi.k8s.io
      volumeAttributes: {secretProviderClass: kv}
      nodePublishSecretRef: {name: sp-creds}
"""
CSI_WI = """
containers: [{name: app, image: app:1}]
volumes:
  - name: kv
    csi: {driver: secrets-store.csi.k8s.io, volumeAttributes: {secretProviderClass: kv}}
"""
FLEX_SP = """
containers: [{name: app, image: app:1}]
volumes:
  - name: kv
    flexVolume: {driver: azure/kv, secretRef: {name: kvcreds}, options: {keyvaultname: kv}}
"""
FLEX_PODID = """
containers: [{name: app, image: app:1}]
volumes:
  - name: kv
    flexVolume: {driver: azure/kv, options: {keyvaultname: kv, usepodidentity: "true"}}
"""


def store(kind: str, provider: str) -> str:
    return (
        f"apiVersion: external-secrets.io/v1\nkind: {kind}\n"
        f"metadata: {{name: st, namespace: shop}}\nspec:\n  provider:\n{provider}"
    )


AZ_SP = """\
    azurekv:
      vaultUrl: https://kv.vault.azure.net
      authSecretRef:
        clientId: {name: sp, key: id}
        clientSecret: {name: sp, key: secret}
"""
AZ_WI = """\
    azurekv:
      authType: WorkloadIdentity
      vaultUrl: https://kv.vault.azure.net
      serviceAccountRef: {name: eso}
"""
VAULT_TOKEN = """\
    vault:
      server: https://vault:8200
      auth: {tokenSecretRef: {name: vault-token, key: token}}
"""
VAULT_K8S = """\
    vault:
      server: https://vault:8200
      auth: {kubernetes: {mountPath: kubernetes, role: shop}}
"""
AAD = "apiVersion: aadpodidentity.k8s.io/v1\n"
SPC = (
    "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
    "metadata: {name: kv}\nspec:\n  provider: azure\n"
)

CASES = [
    ("SB201 csi with nodePublishSecretRef", deployment(CSI_SP), "SB201", ["high"]),
    ("SB201 csi with workload identity", deployment(CSI_WI), "SB201", []),
    ("SB202 flexvolume secretRef", deployment(FLEX_SP), "SB202", ["high"]),
    ("SB202 flexvolume pod identity", deployment(FLEX_PODID), "SB202", []),
    ("SB203 SecretStore client secret", store("SecretStore", AZ_SP), "SB203", ["high"]),
    (
        "SB203 ClusterSecretStore client secret",
        store("ClusterSecretStore", AZ_SP),
        "SB203",
        ["high"],
    ),
    ("SB203 workload identity store", store("SecretStore", AZ_WI), "SB203", []),
    ("SB204 vault static token", store("SecretStore", VAULT_TOKEN), "SB204", ["high"]),
    ("SB204 vault kubernetes auth", store("SecretStore", VAULT_K8S), "SB204", []),
    (
        "SB210 AzureIdentity",
        AAD + "kind: AzureIdentity\nmetadata: {name: id}\nspec: {type: 0}\n",
        "SB210",
        ["medium"],
    ),
    (
        "SB210 AzureIdentityBinding",
        AAD + "kind: AzureIdentityBinding\nmetadata: {name: b}\nspec: {selector: x}\n",
        "SB210",
        ["medium"],
    ),
    (
        "SB210 other CRD named alike",
        "apiVersion: example.com/v1\nkind: AzureIdentity\nmetadata: {name: id}\n",
        "SB210",
        [],
    ),
    (
        "SB211 aadpodidbinding label",
        deployment(CSI_WI, labels="aadpodidbinding: orders\n"),
        "SB211",
        ["medium"],
    ),
    ("SB211 no label", deployment(CSI_WI, labels="app: orders\n"), "SB211", []),
    ("SB212 flexvolume", deployment(FLEX_PODID), "SB212", ["medium"]),
    ("SB212 csi", deployment(CSI_WI), "SB212", []),
    (
        "SB213 spc usePodIdentity",
        SPC + '  parameters: {usePodIdentity: "true", keyvaultName: kv}\n',
        "SB213",
        ["medium"],
    ),
    (
        "SB213 spc clientID",
        SPC + "  parameters: {clientID: 1b2c3d4e-0000-4000-8000-123456789abc}\n",
        "SB213",
        [],
    ),
]


@pytest.mark.parametrize(
    ("text", "rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_identity_and_secret_zero(text: str, rule: str, expected: list[str]) -> None:
    hits = rule_hits(text, rule)
    assert [h.severity.label for h in hits] == expected
    for h in hits:
        assert h.fix and h.message and h.evidence.path


GUID = "1b2c3d4e-0000-4000-8000-123456789abc"
WI_POD = "serviceAccountName: orders\ncontainers: [{name: app, image: app:1}]\n"
WI_POD_OWN_ENV = (
    "serviceAccountName: orders\ncontainers:\n  - name: app\n    image: app:1\n"
    f"    env: [{{name: AZURE_CLIENT_ID, value: {GUID}}}]\n"
)
WI_LABEL = 'azure.workload.identity/use: "true"\n'


def sa(labels: str = "", annotations: str = "") -> str:
    meta = "metadata:\n  name: orders\n  namespace: shop\n"
    if labels:
        meta += f"  labels: {{{labels}}}\n"
    if annotations:
        meta += f"  annotations: {{{annotations}}}\n"
    return "---\napiVersion: v1\nkind: ServiceAccount\n" + meta


WI_CASES = [
    (
        "SB220 label on SA, pod unlabelled",
        deployment(WI_POD)
        + sa('azure.workload.identity/use: "true"', f"azure.workload.identity/client-id: {GUID}"),
        "SB220",
        ["medium"],
    ),
    (
        "SB220 label on SA and pod: harmless leftover",
        deployment(WI_POD, labels=WI_LABEL)
        + sa('azure.workload.identity/use: "true"', f"azure.workload.identity/client-id: {GUID}"),
        "SB220",
        ["low"],
    ),
    (
        "SB220 label on pod only",
        deployment(WI_POD, labels=WI_LABEL) + sa("", f"azure.workload.identity/client-id: {GUID}"),
        "SB220",
        [],
    ),
    ("SB221 SA without client-id", deployment(WI_POD, labels=WI_LABEL) + sa(), "SB221", ["medium"]),
    (
        "SB221 SA with client-id",
        deployment(WI_POD, labels=WI_LABEL) + sa("", f"azure.workload.identity/client-id: {GUID}"),
        "SB221",
        [],
    ),
    (
        "SB221 pod sets AZURE_CLIENT_ID itself",
        deployment(WI_POD_OWN_ENV, labels=WI_LABEL) + sa(),
        "SB221",
        [],
    ),
    ("SB221 SA not in input: cannot judge", deployment(WI_POD, labels=WI_LABEL), "SB221", []),
    ("SB221 pod not labelled", deployment(WI_POD) + sa(), "SB221", []),
    (
        "SB222 client-id placeholder",
        sa("", 'azure.workload.identity/client-id: "${USER_ASSIGNED_CLIENT_ID}"'),
        "SB222",
        ["medium"],
    ),
    (
        "SB222 tenant-id typo",
        sa("", "azure.workload.identity/tenant-id: 72f988bf-86f1-41af-91ab"),
        "SB222",
        ["medium"],
    ),
    ("SB222 guid", sa("", f"azure.workload.identity/client-id: {GUID.upper()}"), "SB222", []),
]


@pytest.mark.parametrize(
    ("text", "rule", "expected"), [c[1:] for c in WI_CASES], ids=[c[0] for c in WI_CASES]
)
def test_workload_identity_mistakes(text: str, rule: str, expected: list[str]) -> None:
    assert [h.severity.label for h in rule_hits(text, rule)] == expected
