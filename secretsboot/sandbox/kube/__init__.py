"""The Kubernetes API fake (HTTPS): object store, RBAC, service-account tokens, OIDC issuer."""

from __future__ import annotations

from secretsboot.sandbox.kube.app import KubeApp
from secretsboot.sandbox.kube.fake import KubeFake
from secretsboot.sandbox.kube.resources import ApiError
from secretsboot.sandbox.kube.store import ObjectStore

__all__ = ["ApiError", "KubeApp", "KubeFake", "ObjectStore"]
