"""The init-container runtime as a library: resolve -> fetch in parallel -> write atomically.

>>> from secretsboot.fetch import FetchConfig, fetch_secrets, write_secrets
>>> config = FetchConfig.load("/etc/secretsboot/fetch.yaml")  # doctest: +SKIP
>>> values = fetch_secrets(config, timeout=30)                # doctest: +SKIP
>>> write_secrets(config, values, "/var/run/secrets/secretsboot")  # doctest: +SKIP
>>> check_secrets(config, timeout=30)  # fetch --check: one CheckResult per secret  # doctest: +SKIP

``values`` maps each secret's name to a :class:`~secretsboot.secret.SecretValue`.
The CLI (``secretsboot fetch`` / ``secretsboot run``) is a thin layer over these.
"""

from __future__ import annotations

from secretsboot.contract import FetchConfig, SecretEntry, resolve_config
from secretsboot.fetch.check import CheckResult, check_secrets
from secretsboot.fetch.runtime import env_for, fetch_secrets
from secretsboot.fetch.writer import OutputFile, publish, write_secrets

__all__ = [
    "CheckResult",
    "FetchConfig",
    "OutputFile",
    "SecretEntry",
    "check_secrets",
    "env_for",
    "fetch_secrets",
    "publish",
    "resolve_config",
    "write_secrets",
]
