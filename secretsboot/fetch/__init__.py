"""The init-container runtime as a library: resolve -> fetch in parallel -> write atomically.

>>> from secretsboot.fetch import FetchConfig, fetch_secrets, write_secrets
>>> config = FetchConfig.load("/etc/secretsboot/fetch.yaml")  # doctest: +SKIP
>>> values = fetch_secrets(config, timeout=30)                # doctest: +SKIP
>>> write_secrets(config, values, "/var/run/secrets/secretsboot")  # doctest: +SKIP
>>> check_secrets(config, timeout=30)  # fetch --check: one CheckResult per secret  # doctest: +SKIP

``values`` maps each secret's name to a :class:`~secretsboot.secret.SecretValue`.
The CLI (``secretsboot fetch`` / ``secretsboot run``) is a thin layer over these.

Names load lazily: importing a submodule (the CLI imports ``secretsboot.fetch._cli``
for ``fetch --help`` and to list the command) does not load the runtime, the
transport or TLS.
"""

from __future__ import annotations

from secretsboot._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from secretsboot.contract import FetchConfig, SecretEntry, resolve_config
    from secretsboot.fetch.check import CheckResult, check_secrets
    from secretsboot.fetch.runtime import env_for, fetch_secrets
    from secretsboot.fetch.writer import OutputFile, publish, write_secrets

_LAZY = {
    "FetchConfig": "secretsboot.contract",
    "SecretEntry": "secretsboot.contract",
    "resolve_config": "secretsboot.contract",
    "CheckResult": "secretsboot.fetch.check",
    "check_secrets": "secretsboot.fetch.check",
    "env_for": "secretsboot.fetch.runtime",
    "fetch_secrets": "secretsboot.fetch.runtime",
    "OutputFile": "secretsboot.fetch.writer",
    "publish": "secretsboot.fetch.writer",
    "write_secrets": "secretsboot.fetch.writer",
}

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


__getattr__ = lazy_names(__name__, _LAZY, globals())
