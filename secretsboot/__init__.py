"""secretsboot: secrets-and-identity bootstrap for microservices on Kubernetes.

Three faces: ``provision`` (spec -> identities, grants, roles), ``fetch``/``run``
(the init-container runtime) and ``audit`` (which approach each service uses).

The runtime is also a library, for apps that fetch in-process::

    from secretsboot import FetchConfig, fetch_secrets

    values = fetch_secrets(FetchConfig.load("/etc/secretsboot/fetch.yaml"))
    db_password = values["db-password"].reveal()

Names load lazily, so importing this package costs nothing on the init path.
"""

from __future__ import annotations

from secretsboot._lazy import lazy_names

TYPE_CHECKING = False
if TYPE_CHECKING:
    from secretsboot.errors import SecretsbootError
    from secretsboot.fetch import FetchConfig, fetch_secrets, write_secrets
    from secretsboot.secret import SecretValue, fingerprint

__version__ = "0.1.0"

_LAZY = {
    "SecretsbootError": "secretsboot.errors",
    "SecretValue": "secretsboot.secret",
    "fingerprint": "secretsboot.secret",
    "FetchConfig": "secretsboot.fetch",
    "fetch_secrets": "secretsboot.fetch",
    "write_secrets": "secretsboot.fetch",
}

__all__ = [
    "FetchConfig",
    "SecretValue",
    "SecretsbootError",
    "__version__",
    "fetch_secrets",
    "fingerprint",
    "write_secrets",
]


__getattr__ = lazy_names(__name__, _LAZY, globals())
