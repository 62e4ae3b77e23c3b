"""Keyed fingerprints of the values the audit finds: equal values match, none can be guessed.

>>> key = b"k" * 32
>>> value_fingerprint("hunter2", key=key) == value_fingerprint("hunter2", key=key)
True
>>> redact("hunter2-is-long", key=key)
'[redacted] hmac:2844ceb08e8e7e0d'

A report shows no character of a value. What it shows instead is an HMAC-SHA256 of
the value under a key (16 hex digits): the same value gives the same fingerprint
in every report made with the same key, so a reviewer sees "these two Deployments
share one password" and a baseline stays stable; but without the key nobody can
test a guess against a report (a plain hash of "password" is one lookup away).

Where the key comes from, first match wins:

1. ``SECRETSBOOT_AUDIT_KEY``: the key itself (at least 16 characters), for CI: a
   team keeps one in its secret store and gives it to every audit job;
2. ``SECRETSBOOT_AUDIT_KEY_FILE``: a file holding it;
3. the per-machine key file ``$XDG_CONFIG_HOME/secretsboot/audit.key`` (else
   ``~/.config/secretsboot/audit.key``), created with 32 random bytes and mode
   0600 the first time it is needed.

Fingerprints, and so the finding fingerprints of baselines (a literal's finding
carries its value's fingerprint), are stable for one key. Two machines with their
own default keys give different fingerprints for the same value: share the key
(1 or 2) wherever baselines are written and read. If no key file can be created
(a read-only home), a random key for this run is used and the fingerprints hold
for this run only.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

ENV_KEY = "SECRETSBOOT_AUDIT_KEY"
ENV_KEY_FILE = "SECRETSBOOT_AUDIT_KEY_FILE"
MIN_KEY_CHARS = 16
DIGITS = 16


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "secretsboot" / "audit.key"


def _read_or_create(path: Path) -> bytes | None:
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another audit created it meanwhile
        return path.read_bytes().strip()
    except OSError:
        return None
    key = secrets.token_hex(32).encode()
    with os.fdopen(fd, "wb") as fh:
        fh.write(key + b"\n")
    return key


@functools.cache
def _key(env_key: str | None, env_file: str | None, default: str) -> bytes:
    from secretsboot.errors import BadInputError

    if env_key:
        if len(env_key) < MIN_KEY_CHARS:
            raise BadInputError(
                f"{ENV_KEY} is too short", hint=f"use at least {MIN_KEY_CHARS} random characters"
            )
        return env_key.encode()
    if env_file:
        try:
            key = Path(env_file).read_bytes().strip()
        except OSError as exc:
            raise BadInputError(
                f"{ENV_KEY_FILE}={env_file}: cannot read ({exc.strerror})", hint="check the path"
            ) from None
        if len(key) < MIN_KEY_CHARS:
            raise BadInputError(f"{ENV_KEY_FILE}={env_file}: the key is too short")
        return key
    return _read_or_create(Path(default)) or secrets.token_bytes(32)


_pinned: bytes | None = None


def pin_key(key: bytes) -> None:
    """Use ``key`` in this process from now on: the workers of one audit take their
    parent's, so a run with a random key (a read-only home) still agrees with itself."""
    global _pinned
    _pinned = key


def audit_key() -> bytes:
    """The key fingerprints are made with (see the module docstring)."""
    if _pinned is not None:
        return _pinned
    return _key(
        os.environ.get(ENV_KEY) or None,
        os.environ.get(ENV_KEY_FILE) or None,
        str(default_key_file()),
    )


def value_fingerprint(value: str, *, key: bytes | None = None) -> str:
    """``hmac:`` and 16 hex digits of HMAC-SHA256(key, value)."""
    digest = hmac.new(key or audit_key(), value.encode("utf-8", "replace"), hashlib.sha256)
    return f"hmac:{digest.hexdigest()[:DIGITS]}"


def redact(value: str, *, key: bytes | None = None) -> str:
    """What a report shows for a value: no character of it, only its keyed fingerprint."""
    return f"[redacted] {value_fingerprint(value, key=key)}"
