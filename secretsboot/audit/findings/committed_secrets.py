"""SB105: a ``kind: Secret`` committed with its values.

Flagged::

    kind: Secret
    data:
      password: UzNjcjN0LVBhNTU=        # high: a real-looking value (base64 is not encryption)
      tls.key: LS0tLS1CRUdJTi...       # critical: a PEM private key
    stringData:
      api-token: ""                    # low: empty or placeholder, still a Secret in git
      ca.crt: "-----BEGIN CERTIFICATE-----..."  # info: a certificate without its key

Each key is one finding; ``data`` values are base64-decoded before they are
judged. Values are shown redacted, never decoded or raw.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator

from secretsboot.audit.findings._base import Context, Rule, as_dict, evidence_at, redact
from secretsboot.audit.findings._credential import (
    CRITICAL_KINDS,
    is_certificate_only,
    is_placeholder,
    judge,
)
from secretsboot.audit.model import Finding, Severity

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
        "Delete the values from the repository and rotate them. Keep the secret in Key Vault "
        "and deliver it with the Secrets Store CSI driver (or External Secrets) instead of a "
        "committed Secret; for GitOps, commit only sealed/encrypted forms."
    ),
    help="Empty or placeholder values are low; certificates without a private key are info.",
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


def _verdict(key: str, text: str, secret_type: str) -> tuple[Severity, str]:
    if is_placeholder(text):
        return Severity.LOW, "an empty or placeholder value"
    if is_certificate_only(text):
        return Severity.INFO, "a certificate without a private key"
    hit = judge(key.upper().replace("-", "_").replace(".", "_"), text)
    if hit and hit.kind in CRITICAL_KINDS:
        return Severity.CRITICAL, f"its value ({hit.label})"
    if secret_type == TLS_TYPE and key == "tls.crt":
        return Severity.INFO, "a certificate"
    return Severity.HIGH, f"its value ({hit.label})" if hit else "its value"


def detect(ctx: Context) -> Iterator[Finding]:
    for secret in ctx.of_kind("Secret"):
        if not secret.api_version.startswith("v1") and secret.api_version:
            continue  # some CRD also called Secret
        secret_type = str(secret.body.get("type") or "Opaque")
        for field_name in ("data", "stringData"):
            values = as_dict(secret.body.get(field_name))
            for key in sorted(values, key=str):
                raw = values[key]
                raw_text = "" if raw is None else str(raw)
                text = decode(raw_text) if field_name == "data" else raw_text
                severity, what = _verdict(str(key), text, secret_type)
                yield SB105.finding(
                    evidence=evidence_at(
                        secret, (field_name, str(key)), redact(text) if text.strip() else ""
                    ),
                    message=f"Secret key '{key}' ({field_name}) is committed with {what}",
                    severity=severity,
                )
