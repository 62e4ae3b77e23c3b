"""secretsboot: secrets-and-identity bootstrap for microservices on Kubernetes.

Three faces: ``provision`` (spec -> identities, grants, roles), ``fetch``/``run``
(the init-container runtime) and ``audit`` (which approach each service uses).
"""

from secretsboot.errors import SecretsbootError
from secretsboot.secret import SecretValue, fingerprint

__version__ = "0.1.0"

__all__ = ["SecretValue", "SecretsbootError", "__version__", "fingerprint"]
