"""Classification, one table per approach: small hand-written manifests, flagged and not."""

from __future__ import annotations

import textwrap

import pytest

from secretsboot.audit.classify import classify, not_a_workload
from secretsboot.audit.loader import load_text
from secretsboot.audit.model import Workload
from secretsboot.audit.resolve import Index


def workloads(text: str) -> list[Workload]:
    loaded = load_text(textwrap.dedent(text), "case.yaml")
    assert loaded.errors == []
    index = Index(loaded.manifests)
    return [classify(m, index) for m in index.manifests if not_a_workload(m, index) is None]


def ids(text: str) -> list[str]:
    found = workloads(text)
    assert len(found) == 1, [w.ref for w in found]
    return found[0].approach_ids


def deploy(pod_spec: str, *, labels: str = "{}", annotations: str = "{}", extra: str = "") -> str:
    spec = textwrap.indent(textwrap.dedent(pod_spec).strip(), " " * 6)
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app, namespace: shop}\n"
        "spec:\n  template:\n"
        f"    metadata: {{labels: {labels}, annotations: {annotations}}}\n"
        f"    spec:\n{spec}\n" + (f"---\n{textwrap.dedent(extra).strip()}\n" if extra else "")
    )


APP = "containers: [{name: app, image: app:1}]"

WI_SA = """
apiVersion: v1
kind: ServiceAccount
metadata:
  name: orders
  namespace: shop
  annotations: {azure.workload.identity/client-id: 00000000-0000-0000-0000-000000000001}
"""

CASES: list[tuple[str, str, bool]] = [
    # --- workload-identity -------------------------------------------------------------
    ("wi pod label", deploy(APP, labels='{azure.workload.identity/use: "true"}'), True),
    ("wi label false", deploy(APP, labels='{azure.workload.identity/use: "false"}'), False),
    ("wi SA client-id", deploy(f"serviceAccountName: orders\n{APP}", extra=WI_SA), True),
    (
        "wi SA in another namespace is not ours",
        deploy(f"serviceAccountName: orders\n{APP}", extra=WI_SA.replace("shop", "other")),
        False,
    ),
    (
        "wi label on the ServiceAccount instead of the pod",
        deploy(
            f"serviceAccountName: orders\n{APP}",
            extra="kind: ServiceAccount\nmetadata:\n  name: orders\n  namespace: shop\n"
            '  labels: {azure.workload.identity/use: "true"}\n',
        ),
        True,
    ),
    (
        "wi token env",
        deploy(
            "containers: [{name: a, env: [{name: AZURE_FEDERATED_TOKEN_FILE, "
            "value: /var/run/secrets/azure/tokens/azure-identity-token}]}]"
        ),
        True,
    ),
    (
        "webhook configuration naming the label is not a workload",
        textwrap.dedent(
            """
        apiVersion: admissionregistration.k8s.io/v1
        kind: MutatingWebhookConfiguration
        metadata: {name: azure-wi-webhook}
        webhooks:
          - name: mutation.azure-workload-identity.io
            objectSelector:
              matchLabels: {azure.workload.identity/use: "true"}
        ---
        """
        )
        + deploy(APP),
        False,
    ),
    # --- aad-pod-identity --------------------------------------------------------------
    ("pod identity label", deploy(APP, labels="{aadpodidbinding: orders}"), True),
    ("pod identity empty label", deploy(APP, labels='{aadpodidbinding: ""}'), False),
    # --- keyvault-csi / vault-csi ------------------------------------------------------
    (
        "csi azure",
        deploy(
            f"{APP}\nvolumes: [{{name: kv, csi: {{driver: secrets-store.csi.k8s.io, "
            "volumeAttributes: {secretProviderClass: kv}}}]",
            extra="kind: SecretProviderClass\nmetadata: {name: kv}\n"
            "spec: {provider: azure, parameters: {clientID: abc}}",
        ),
        True,
    ),
    (
        "csi other driver",
        deploy(f"{APP}\nvolumes: [{{name: d, csi: {{driver: disk.csi.azure.com}}}}]"),
        False,
    ),
    # --- keyvault-flexvolume -----------------------------------------------------------
    (
        "flexvolume",
        deploy(f"{APP}\nvolumes: [{{name: kv, flexVolume: {{driver: azure/kv}}}}]"),
        True,
    ),
    (
        "other flexvolume",
        deploy(f"{APP}\nvolumes: [{{name: kv, flexVolume: {{driver: acme/nfs}}}}]"),
        False,
    ),
    # --- vault-agent-injector ----------------------------------------------------------
    (
        "injector annotations",
        deploy(APP, annotations='{vault.hashicorp.com/agent-inject: "true"}'),
        True,
    ),
    (
        "injector secret annotation only",
        deploy(APP, annotations="{vault.hashicorp.com/agent-inject-secret-db: db/creds}"),
        True,
    ),
    (
        "injector disabled",
        deploy(
            APP,
            annotations='{vault.hashicorp.com/agent-inject: "false", '
            "vault.hashicorp.com/agent-inject-secret-db: db/creds}",
        ),
        False,
    ),
    (
        "already injected pod",
        deploy("initContainers: [{name: vault-agent-init, image: vault}]\n" + APP),
        True,
    ),
    (
        "hand-written vault agent",
        deploy("initContainers: [{name: vault-agent, image: vault}]\n" + APP),
        False,
    ),
    (
        "vault role annotation alone",
        deploy(APP, annotations="{vault.hashicorp.com/role: x}"),
        False,
    ),
]

APPROACH_OF = {
    "wi": "workload-identity",
    "webhook": "workload-identity",
    "pod identity": "aad-pod-identity",
    "csi azure": "keyvault-csi",
    "csi other": "keyvault-csi",
    "flexvolume": "keyvault-flexvolume",
    "other flexvolume": "keyvault-flexvolume",
    "injector": "vault-agent-injector",
    "already injected": "vault-agent-injector",
    "hand-written vault": "vault-agent-injector",
    "vault role": "vault-agent-injector",
}


def _approach(name: str) -> str:
    for prefix, approach in sorted(APPROACH_OF.items(), key=lambda kv: -len(kv[0])):
        if name.startswith(prefix):
            return approach
    raise KeyError(name)


@pytest.mark.parametrize(("name", "text", "flagged"), CASES, ids=[c[0] for c in CASES])
def test_identity_and_injector_approaches(name: str, text: str, flagged: bool) -> None:
    assert (_approach(name) in ids(text)) is flagged


SECRET_CASES: list[tuple[str, str, list[str]]] = [
    (
        "secretKeyRef",
        "containers: [{name: a, env: [{name: X, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]",
        ["k8s-secret-env"],
    ),
    (
        "envFrom secretRef",
        "containers: [{name: a, envFrom: [{secretRef: {name: s}}]}]",
        ["k8s-secret-env"],
    ),
    ("envFrom configMapRef", "containers: [{name: a, envFrom: [{configMapRef: {name: c}}]}]", []),
    (
        "init container secretKeyRef",
        "initContainers: [{name: i, env: [{name: X, valueFrom: {secretKeyRef: {name: s}}}]}]\n"
        "containers: [{name: a}]",
        ["k8s-secret-env"],
    ),
    (
        "configMapKeyRef",
        "containers: [{name: a, env: [{name: X, valueFrom: {configMapKeyRef: {name: c}}}]}]",
        [],
    ),
    (
        "secret volume",
        f"{APP}\nvolumes: [{{name: v, secret: {{secretName: s}}}}]",
        ["k8s-secret-volume"],
    ),
    (
        "projected secret source",
        f"{APP}\nvolumes: [{{name: v, projected: {{sources: [{{secret: {{name: s}}}}]}}}}]",
        ["k8s-secret-volume"],
    ),
    (
        "projected token only",
        f"{APP}\nvolumes: [{{name: v, projected: {{sources: [{{serviceAccountToken: "
        "{path: t}}]}}]",
        [],
    ),
    ("imagePullSecrets", f"{APP}\nimagePullSecrets: [{{name: regcred}}]", []),
    (
        "csi nodePublishSecretRef is the driver's",
        f"{APP}\nvolumes: [{{name: v, csi: {{driver: secrets-store.csi.k8s.io, "
        "volumeAttributes: {secretProviderClass: kv}, nodePublishSecretRef: {name: sp}}}]",
        ["keyvault-csi"],
    ),
    (
        "flexVolume secretRef is the driver's",
        f"{APP}\nvolumes: [{{name: v, flexVolume: "
        "{driver: azure/kv, secretRef: {name: kvcreds}}}]",
        ["keyvault-flexvolume"],
    ),
    (
        "azureFile secretName is the driver's",
        f"{APP}\nvolumes: [{{name: v, azureFile: {{secretName: st, shareName: s}}}}]",
        [],
    ),
]


@pytest.mark.parametrize(
    ("name", "spec", "expected"), SECRET_CASES, ids=[c[0] for c in SECRET_CASES]
)
def test_kubernetes_secret_approaches(name: str, spec: str, expected: list[str]) -> None:
    assert ids(deploy(spec)) == expected


def env_value(name: str, value: str) -> str:
    return deploy(f"containers: [{{name: a, env: [{{name: {name}, value: {value!r}}}]}}]")


LITERAL_CASES: list[tuple[str, str, bool]] = [
    ("POSTGRES_PASSWORD", "password", True),
    ("VAULT_TOKEN", "root", True),
    ("DB_PASSWORD", "Tr0ub4dor&3", True),
    (
        "STORAGE",
        "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "Zm9v" * 10 + "==",
        True,
    ),
    ("BLOB_SAS", "?sv=2022-11-02&ss=b&sig=abcdefghijklmnopqrstuvwx%3D", True),
    ("DATABASE_URL", "postgres://app:s3cretpass@db:5432/app", True),
    ("TLS_KEY", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", True),
    ("API_KEY", "k-8f2a9c1d7e", True),
    ("DB_PASSWORD", "", False),
    ("DB_PASSWORD_FILE", "/run/secrets/db-password", False),
    ("DB_PASSWORD", "$(DB_PASSWORD_FROM_SECRET)", False),
    ("AZURE_CLIENT_ID", "00000000-0000-0000-0000-000000000001", False),
    ("CLIENT_SECRET", "00000000-0000-0000-0000-000000000001", False),
    ("KEY_VAULT_URI", "KeyVault_Name", False),
    ("KEYVAULT_NAME", "kv-orders", False),
    ("DATABASE_URL", "postgres://db:5432/app", False),
    ("TOKEN_ENABLED", "true", False),
    ("SECRET_COUNT", "3", False),
    ("TEST_SECRET2", "Just plain env var", False),
    ("DB_PASSWORD", "<your-password>", False),
    ("DB_PASSWORD", "db-password@azurekeyvault", False),
    ("DB_PASSWORD", "vault:secret/data/db#password", False),
]


@pytest.mark.parametrize(("name", "value", "flagged"), LITERAL_CASES)
def test_literal_credential_env(name: str, value: str, flagged: bool) -> None:
    assert ("literal-credential" in ids(env_value(name, value))) is flagged


@pytest.mark.parametrize(
    ("args", "flagged"),
    [
        ('["--db-password=Tr0ub4dor", "--port", "80"]', True),
        ('["--password", "Tr0ub4dor"]', True),
        ('["-c", "Server=db;User Id=sa;Password=Pa55w0rd!"]', True),
        ('["--password-file", "/run/secrets/pw"]', False),
        ('["--password=$(DB_PASSWORD)"]', False),
        ('["printenv TEST_SECRET && sleep 60"]', False),
        ('["--token-audience", "api://AzureADTokenExchange"]', False),
    ],
)
def test_literal_credential_args(args: str, flagged: bool) -> None:
    text = deploy(f"containers: [{{name: a, image: app, args: {args}}}]")
    assert ("literal-credential" in ids(text)) is flagged


def test_literal_evidence_never_holds_the_value() -> None:
    canary = "CANARY-7f3a9d2e-do-not-print"
    (w,) = workloads(env_value("DB_PASSWORD", canary))
    (approach,) = [a for a in w.approaches if a.id == "literal-credential"]
    assert approach.evidence[0].path == "spec.template.spec.containers[0].env[0].value"
    assert canary not in repr(w) and canary not in repr(approach)
    detail = approach.evidence[0].detail
    assert detail.startswith("password-like name with a non-trivial value: [redacted] hmac:")
    assert "CA" not in detail.split(":", 1)[1]  # not even a first character


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("X", "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----", "PEM private key"),
        (
            "CONN",
            "DefaultEndpointsProtocol=https;AccountKey=" + "A1b2" * 10,
            "Azure storage AccountKey",
        ),
        ("URL", "https://a.blob.core.windows.net/c?sv=2022&sig=" + "x" * 30, "SAS signature"),
        ("DB", "Server=db;Database=app;Password=S3cr3t!x", "connection string with a password"),
        ("DB_PASSWORD", "hunter2!", "password-like name with a non-trivial value"),
        ("storageKey", "c2VjcmV0LXZhbHVl", "password-like name with a non-trivial value"),
    ],
)
def test_credential_reasons(name: str, value: str, reason: str) -> None:
    from secretsboot.audit.literals import looks_like_credential

    assert looks_like_credential(name, value) == reason


def test_redaction_shows_no_character_of_any_value() -> None:
    from secretsboot.audit.literals import redact

    for value in ("root", "CANARY-long-value"):
        text = redact(value)
        assert text.startswith("[redacted] hmac:")
        assert value[:2] not in text.replace("[redacted] hmac:", "")
