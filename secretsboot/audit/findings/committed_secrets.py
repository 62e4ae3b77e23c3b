"""SB105: a ``kind: Secret`` with its values in the input (committed, or rendered by a chart).

Flagged, once per Secret, with its key names and the severity of its worst key::

    kind: Secret
    data:
      password: UzNjcjN0LVBhNTU=        # high: a real-looking value (base64 is not encryption)
      tls.key: LS0tLS1CRUdJTi...       # critical: a PEM private key
    stringData:
      api-token: ""                    # low: empty or placeholder
      ca.crt: "-----BEGIN CERTIFICATE-----..."  # info: a certificate without its key
      queue_name: work-items           # low: a value whose key names no credential

``data`` values are base64-decoded before they are judged; a key whose name says
credential (``password``, ``token``, ``*_key``) or whose value has a credential's
shape counts high (critical for private keys and account keys); other keys
(``username``, ``queue_name``) count low. No value is shown, decoded or raw: the
finding names the keys only.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, evidence_at
from secretsboot.audit.findings._credential import (
    CRITICAL_KINDS,
    is_certificate_only,
    is_placeholder,
    judge,
)
from secretsboot.audit.model import Finding, Manifest, Severity

SB105 = Rule(
    id="SB105",
    name="committed-secret",
    title="Secret manifest committed with its values",
    severity=Severity.HIGH,
    description=(
        "A Secret object carries its values in the manifest. Base64 is an encoding, not "
        "encryption: anyone with the repository has the secret, forever, in its history."
    ),
    fix=(
        "Keep the values out of the manifests: if they are in version control (or in the "
        "chart's values), remove them and rotate them. Keep the secret in Key Vault and deliver "
        "it with the Secrets Store CSI driver (or External Secrets) instead of a Secret in the "
        "manifests; for GitOps, commit only sealed/encrypted forms."
    ),
    help=(
        "One finding per Secret. Keys that name or hold a credential are high (critical for "
        "private keys); others low; certificates without a private key are info."
    ),
)

RULES = (SB105,)
TLS_TYPE = "kubernetes.io/tls"


def decode(value: str) -> str:
    """A ``data`` value as text ('' for undecodable binary), never shown, only judged."""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return value
    return raw.decode("utf-8", errors="replace")


def _verdict(key: str, text: str, secret_type: str) -> Severity:
    if is_placeholder(text):
        return Severity.LOW
    if is_certificate_only(text):
        return Severity.INFO
    hit = judge(key.upper().replace("-", "_").replace(".", "_"), text)
    if hit and hit.kind in CRITICAL_KINDS:
        return Severity.CRITICAL
    if secret_type == TLS_TYPE and key == "tls.crt":
        return Severity.INFO
    if hit or (secret_type == TLS_TYPE and key == "tls.key"):
        return Severity.HIGH
    return Severity.LOW  # a username, a queue name: no credential by name or by shape


def _keys(secret: Manifest) -> Iterator[tuple[str, str, str]]:
    """(field, key, judged text) of every value of the Secret."""
    for field_name in ("data", "stringData"):
        values = as_dict(secret.body.get(field_name))
        for key in sorted(values, key=str):
            raw = values[key]
            raw_text = "" if raw is None else str(raw)
            yield field_name, str(key), decode(raw_text) if field_name == "data" else raw_text


def detect(ctx: Context) -> Iterator[Finding]:
    for secret in ctx.of_kind("Secret"):
        if not secret.api_version.startswith("v1") and secret.api_version:
            continue  # some CRD also called Secret
        secret_type = str(secret.body.get("type") or "Opaque")
        judged = [(f, k, _verdict(k, text, secret_type)) for f, k, text in _keys(secret)]
        if not judged:
            continue
        worst = max(sev for _, _, sev in judged)
        serious = sorted(k for _, k, sev in judged if sev == worst)
        fields = sorted({f for f, _, _ in judged})
        names = ", ".join(sorted(k for _, k, _ in judged))
        yield SB105.finding(
            evidence=evidence_at(secret, (fields[0],), f"keys: {names}"),
            message=(
                f"Secret '{secret.name}' has its values in the manifests "
                f"({len(judged)} key(s): {names}); {worst.label} for "
                f"{', '.join(serious)}"
            ),
            severity=worst,
        )
