"""SB101-SB105: secrets in env, literal credentials, committed Secrets. One table per rule."""

from __future__ import annotations

import base64

import pytest
from _audit_case import deployment, rule_hits

from secretsboot.audit.fingerprint import value_fingerprint as fingerprint


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def container(body: str) -> str:
    """A pod spec with one container 'app' whose extra fields are ``body`` (8-space indent)."""
    return "containers:\n  - name: app\n    image: app:1.0\n" + "".join(
        f"    {line}\n" for line in body.strip("\n").splitlines()
    )


CASES_SB101 = [
    (
        "env secretKeyRef",
        container("env:\n  - name: DB\n    valueFrom: {secretKeyRef: {name: db, key: pw}}"),
        ["medium"],
    ),
    ("envFrom secretRef", container("envFrom:\n  - secretRef: {name: all}"), ["medium"]),
    (
        "init container counts",
        "initContainers:\n  - name: init\n    image: i:1\n    env:\n"
        "      - {name: T, valueFrom: {secretKeyRef: {name: t, key: k}}}\n" + container(""),
        ["medium"],
    ),
    (
        "configMapKeyRef is fine",
        container("env:\n  - name: C\n    valueFrom: {configMapKeyRef: {name: c, key: k}}"),
        [],
    ),
    ("envFrom configMapRef is fine", container("envFrom:\n  - configMapRef: {name: c}"), []),
    (
        "secret volume is fine",
        container("volumeMounts: [{name: s, mountPath: /s}]")
        + "volumes:\n  - name: s\n    secret: {secretName: s}\n",
        [],
    ),
]


@pytest.mark.parametrize(
    ("spec", "expected"), [c[1:] for c in CASES_SB101], ids=[c[0] for c in CASES_SB101]
)
def test_sb101_secret_in_env(spec: str, expected: list[str]) -> None:
    hits = rule_hits(deployment(spec), "SB101")
    assert [h.severity.label for h in hits] == expected
    for h in hits:
        assert h.workload == "Deployment/shop/api"
        assert h.evidence.line > 1
        assert "secret" in h.evidence.path.lower()


ACCOUNT_KEY = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=" + "Zm9vYmFy" * 8 + "=="
PEM_KEY = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY-----"

CASES_SB102 = [
    ("named password", "DB_PASSWORD", "Tr0ub4dor-and-3", ["high"]),
    ("azure account key by shape", "STORAGE", ACCOUNT_KEY, ["critical"]),
    ("pem private key", "TLS", PEM_KEY, ["critical"]),
    (
        "sas signature",
        "BLOB_URL",
        "https://a.blob.core.windows.net/c?sv=2022-11-02&sig=abcdEFGH1234%2Bxyz%3D",
        ["high"],
    ),
    (
        "entra client secret shape",
        "SOMETHING",
        "abc8Q~" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7",
        ["high"],
    ),
    (
        "connection string with password",
        "DB",
        "Server=db;Database=x;User Id=sa;Password=Pa55w0rd!;",
        ["high"],
    ),
    ("url with user:pass@", "BROKER", "amqp://orders:Hunter22@rabbit:5672/", ["high"]),
    ("_FILE path", "DB_PASSWORD_FILE", "/run/secrets/db", []),
    ("$(VAR) reference", "DB_PASSWORD", "$(OTHER_PASSWORD)", []),
    ("client id guid", "AZURE_CLIENT_ID", "1b2c3d4e-0000-4000-8000-123456789abc", []),
    ("vault name", "KEY_VAULT_NAME", "kv-orders", []),
    ("url without credentials", "KEY_VAULT_URI", "https://kv.vault.azure.net/", []),
    ("empty string", "API_TOKEN", "", []),
    ("boolean", "USE_TOKEN", "true", []),
    ("akv2k8s reference", "TEST_SECRET", "test-secret@azurekeyvault", []),
    ("a phrase", "TEST_SECRET2", "Just plain env var", []),
    ("placeholder", "DB_PASSWORD", "<your-password>", []),
    ("bearer header by value", "UPSTREAM", "Bearer 9f8e7d6c5b4a39281706", ["high"]),
    ("auth header by name", "AUTH_HEADER", "c2VydmljZS1rZXktNzc", ["high"]),
    ("basic header by value", "HDR", "Authorization: Basic dXNlcjpQYTU1d29yZA==", ["high"]),
    ("token in a query string", "HOOK", "https://hooks.test/x?token=a1b2c3d4e5f6", ["high"]),
    ("url with user:password", "BROKER", "amqp://svc:Wq8v2Lm4Pz@mq.example.test:5672/", ["high"]),
    ("header name, not a value", "AUTH_HEADER", "X-Api-Key", []),
    ("identifier under a *_KEY name", "ORDER_DB_PARTITION_KEY", "storeId", []),
    ("snake identifier under a *_KEY name", "CACHE_KEY", "tenant_id", []),
    ("a phrase mentioning Basic", "LOG_FORMAT", "Basic text format", []),
]


@pytest.mark.parametrize(
    ("name", "value", "expected"), [c[1:] for c in CASES_SB102], ids=[c[0] for c in CASES_SB102]
)
def test_sb102_literal_credential_in_env(name: str, value: str, expected: list[str]) -> None:
    spec = container(f'env:\n  - name: {name}\n    value: "{value}"')
    hits = rule_hits(deployment(spec), "SB102")
    assert [h.severity.label for h in hits] == expected
    for h in hits:
        plain = value.replace("\\n", "\n")
        assert plain not in h.message and plain not in h.evidence.detail
        assert fingerprint(plain) in h.evidence.detail
        assert h.evidence.path.endswith("env[0].value")


CASES_SB103 = [
    ("--flag=value", '["--db-password=Tr0ub4dor-3", "--port=80"]', [("high", "args[0]")]),
    ("--flag value", '["--api-token", "ghijk-12345-lmnop"]', [("high", "args[1]")]),
    ("connection string arg", f'["--conn", "{ACCOUNT_KEY}"]', [("critical", "args[1]")]),
    ("reference is fine", '["--db-password=$(DB_PASSWORD)"]', []),
    ("no credential", '["serve", "--port", "8080", "--verbose"]', []),
]


@pytest.mark.parametrize(
    ("args", "expected"), [c[1:] for c in CASES_SB103], ids=[c[0] for c in CASES_SB103]
)
def test_sb103_literal_credential_in_args(args: str, expected: list[tuple[str, str]]) -> None:
    hits = rule_hits(deployment(container(f"args: {args}")), "SB103")
    assert [(h.severity.label, h.evidence.path.rsplit(".", 1)[-1]) for h in hits] == expected


CASES_SB104 = [
    ("named key", "db-password: Pa55w0rd-long", ["high"]),
    ("connection string value", f'conn: "{ACCOUNT_KEY}"', ["critical"]),
    (
        "config file with password line",
        "app.properties: |\n    spring.datasource.password=S3cr3tPass\n    port=80",
        ["high"],
    ),
    ("plain settings", "LOG_LEVEL: debug\n  KEY_VAULT_NAME: kv-orders", []),
    ("identifier under a *_KEY name", 'ORDER_DB_PARTITION_KEY: "storeId"', []),
    ("bearer header value", 'AUTH: "Bearer 0a1b2c3d4e5f6a7b8c9d"', ["high"]),
    (
        "config file without credentials",
        "app.properties: |\n    password.file=/run/secrets/db\n    port=80",
        [],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [c[1:] for c in CASES_SB104], ids=[c[0] for c in CASES_SB104]
)
def test_sb104_literal_credential_in_configmap(data: str, expected: list[str]) -> None:
    meta = "{name: cfg, namespace: shop}"
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {meta}\ndata:\n  {data}\n"
    hits = rule_hits(text, "SB104")
    assert [h.severity.label for h in hits] == expected
    for h in hits:
        assert h.workload == "" and h.evidence.object == "ConfigMap/shop/cfg"


CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"

CASES_SB105 = [
    ("real value in data", f"data: {{password: {b64('S3cr3t-Pa55word')}}}", "Opaque", "high"),
    ("real value in stringData", "stringData: {token: abcdef0123456789}", "Opaque", "high"),
    ("empty value", 'stringData: {token: ""}', "Opaque", "low"),
    ("placeholder", "stringData: {password: <password>}", "Opaque", "low"),
    ("private key in data", f"data: {{tls.key: {b64(KEY)}}}", "kubernetes.io/tls", "critical"),
    ("certificate only", f"data: {{tls.crt: {b64(CERT)}}}", "kubernetes.io/tls", "info"),
    (
        "tls pair: one finding, the worst key",
        f"data: {{tls.crt: {b64(CERT)}, tls.key: {b64(KEY)}}}",
        "kubernetes.io/tls",
        "critical",
    ),
    (
        "chart secret: names and queues are low, the password high, one finding",
        f"data: {{queue_name: {b64('work-items')}, username: {b64('worker')}, "
        f"password: {b64('kDf72mQzXr9')}}}",
        "Opaque",
        "high",
    ),
    (
        "no credential by name or shape",
        f"data: {{queue_name: {b64('work-items')}, username: {b64('worker')}}}",
        "Opaque",
        "low",
    ),
    ("no data at all", "metadata2: {}", "Opaque", None),
]


@pytest.mark.parametrize(
    ("body", "secret_type", "expected"),
    [c[1:] for c in CASES_SB105],
    ids=[c[0] for c in CASES_SB105],
)
def test_sb105_committed_secret(body: str, secret_type: str, expected: str | None) -> None:
    meta = "{name: s, namespace: shop}"
    text = f"apiVersion: v1\nkind: Secret\nmetadata: {meta}\ntype: {secret_type}\n{body}\n"
    hits = rule_hits(text, "SB105")
    assert [h.severity.label for h in hits] == ([expected] if expected else [])
    for h in hits:
        keys = h.evidence.detail.removeprefix("keys: ").split(", ")
        assert all(k in body for k in keys)  # the key names, every one of them
        assert "repository" not in h.message  # fits `helm template | secretsboot audit -`
        for secret in ("S3cr3t-Pa55word", "abcdef0123456789", "MIIE", b64("S3cr3t-Pa55word")):
            assert secret not in h.message + h.evidence.detail
