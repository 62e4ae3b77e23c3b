"""Is this ``name=value`` pair a plaintext credential? The one place the detectors ask.

The judgement itself is :func:`secretsboot.audit.literals.looks_like_credential`
(shared with the classifier, so the ``literal-credential`` approach and the SB10x
findings always agree): value shape first (PEM private keys, Azure account keys,
SAS signatures, Entra client secrets, connection strings with ``Password=``, URLs
with ``user:pass@``, JWTs, token prefixes), then the name, with the value ruling
out what cannot be a credential (empty strings, booleans, numbers, ``$(VAR)``
references, file paths and ``*_FILE`` names, GUIDs, URLs without credentials,
phrases, placeholders, injector references such as ``name@azurekeyvault``).

This module adds the severity (critical for a PEM private key or an Azure account
key, high otherwise), a reading of whole config files (ConfigMap values: shapes,
then ``password: ...`` lines), and placeholder/certificate tests for Secret values.
A :class:`Hit` never holds the value.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from secretsboot.audit.literals import (
    credentials_in_args,
    is_reference,
    looks_like_credential,
)
from secretsboot.audit.literals import (
    is_placeholder as _stands_in,
)
from secretsboot.audit.model import Severity


@dataclass(frozen=True, slots=True)
class Hit:
    kind: str  # the reason literals.looks_like_credential gave, e.g. "PEM private key"
    severity: Severity

    @property
    def label(self) -> str:
        return self.kind


CRITICAL_KINDS = frozenset({"PEM private key", "Azure storage AccountKey"})

_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----")
_PEM_PRIVATE = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----")
_CONFIG_PAIR = re.compile(
    r"^\s*[\"']?([A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key)"
    r"[A-Za-z0-9_.-]*)[\"']?\s*[:=]\s*[\"']?([^\"'#\s,}]+)",
    re.IGNORECASE | re.MULTILINE,
)


def _hit(reason: str) -> Hit:
    return Hit(reason, Severity.CRITICAL if reason in CRITICAL_KINDS else Severity.HIGH)


def judge(name: str, value: object) -> Hit | None:
    """The verdict on one ``name=value`` pair (env var, ConfigMap key, Secret key).

    >>> judge("DB_PASSWORD", "s3cr3t-Pa55")
    Hit(kind='password-like name with a non-trivial value', severity=<Severity.HIGH: 3>)
    >>> judge("DB_PASSWORD_FILE", "/run/secrets/db") is None
    True
    >>> judge("STORAGE", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=" + "A" * 40)
    Hit(kind='Azure storage AccountKey', severity=<Severity.CRITICAL: 4>)
    """
    reason = looks_like_credential(name, value)
    return _hit(reason) if reason else None


def judge_args(argv: Sequence[object]) -> list[tuple[int, Hit]]:
    """(index, verdict) for each credential in a ``command``/``args`` list."""
    return [(i, _hit(reason)) for i, reason in credentials_in_args(argv)]


def _config_name(key: str) -> str:
    return key.upper().replace("-", "_").replace(".", "_")


def judge_text(text: str) -> Hit | None:
    """A verdict on a whole config file (a ConfigMap value): shapes, then ``key: value`` lines."""
    hit = judge("", text)
    if hit:
        return hit
    for match in _CONFIG_PAIR.finditer(text):
        if judge(_config_name(match.group(1)), match.group(2)):
            return _hit("credential in a config file")
    return None


def is_placeholder(value: str) -> bool:
    """Empty, a template reference, an obvious placeholder: nothing real to leak."""
    text = value.strip()
    return not text or is_reference(text) or _stands_in(text)


def is_certificate_only(value: str) -> bool:
    """A PEM certificate (chain) without a private key: public material."""
    return bool(_PEM_CERT.search(value)) and not _PEM_PRIVATE.search(value)
