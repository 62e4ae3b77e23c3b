"""Kubernetes Secrets: ``k8s://SECRET#KEY`` in the pod's namespace.

REST call: ``GET /api/v1/namespaces/{ns}/secrets/{name}`` as the pod's service
account (in-cluster) or the kubeconfig's user; :meth:`Kubernetes.version` asks the
same URL for the object's metadata only (``PartialObjectMetadata``). Errors are
translated by :func:`secretsboot.transport.status.kubernetes_error`.
"""

from __future__ import annotations

import base64
import binascii

from secretsboot.errors import NotFoundError, UnavailableError
from secretsboot.secret import FALLBACK_PLACEHOLDER, SecretValue
from secretsboot.transport import HttpClient, quote
from secretsboot.transport.status import create_secret_hint, kubernetes_error

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from secretsboot.backends.base import StoreContext
    from secretsboot.identity.kubernetes import ApiAccess
    from secretsboot.refs import Ref
    from secretsboot.transport import Deadline, Response

SCHEME = "k8s"
#: metadata only where the API server offers it, the whole object elsewhere
METADATA_ACCEPT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"


def extract(secret: Any, ref: Ref, namespace: str) -> SecretValue:
    data = secret.get("data") if isinstance(secret, dict) else None
    if not isinstance(data, dict) or ref.key not in data:
        raise NotFoundError(
            f"Secret {namespace}/{ref.store} has no key '{ref.key}'",
            hint=create_secret_hint(namespace, ref.store, ref.key or "KEY"),
        )
    try:
        raw = base64.b64decode(data[ref.key], validate=True)
    except (binascii.Error, TypeError):
        raise UnavailableError(f"Secret {namespace}/{ref.store} holds undecodable data") from None
    if raw == FALLBACK_PLACEHOLDER.encode():
        # Not found, so the chain goes on; a pod must never start with the placeholder.
        raise NotFoundError(
            f"Secret {namespace}/{ref.store} key '{ref.key}' still holds secretsboot's placeholder",
            hint="set its value (kubectl edit secret); for the fallback of a keyvault:// or "
            "vault:// source, `secretsboot provision --sync-fallbacks` copies the primary's",
        )
    return SecretValue(raw)


def _who(access: ApiAccess) -> str:
    if access.source.startswith("in-cluster") and access.token:
        from secretsboot.identity.azure import token_subject

        sub = token_subject(access.token)
        return f"service account {sub}" if sub else "the pod's service account"
    return f"{access.source} user {access.user or '?'}"


class Kubernetes:
    """The Kubernetes API over the transport's client."""

    scheme = SCHEME

    def __init__(self, access: ApiAccess, env: Mapping[str, str] | None = None) -> None:
        self._access = access
        self._who = _who(access)
        self._http = HttpClient(
            access.server,
            ca_file=access.ca_file,
            ca_data=access.ca_data,
            client_cert=access.client_cert,
            what="Kubernetes API",
            env=env,
        )
        if access.temp_dir:
            from secretsboot.identity.kubernetes import forget_client_cert

            try:
                self._http.preload_tls()  # reads the client key now ...
            finally:
                forget_client_cert(access)  # ... so its temporary copy goes at once

    def describe_identity(self) -> str:
        return self._who

    def _secret(self, ref: Ref, deadline: Deadline, accept: str) -> Any:
        ns = self._access.namespace
        headers = {"Accept": accept}
        if self._access.token:
            headers["Authorization"] = f"Bearer {self._access.token}"
        resp: Response = self._http.request(
            "GET",
            f"/api/v1/namespaces/{quote(ns)}/secrets/{quote(ref.store)}",
            headers=headers,
            deadline=deadline,
        )
        if resp.status != 200:
            raise kubernetes_error(resp.status, ns, ref.store, self._who, resp.retry_after)
        return resp.json()

    def get(self, ref: Ref, deadline: Deadline) -> SecretValue:
        """``GET /api/v1/namespaces/{ns}/secrets/{name}``, then base64-decode ``data[key]``."""
        secret = self._secret(ref, deadline, "application/json")
        return extract(secret, ref, self._access.namespace)

    def version(self, ref: Ref, deadline: Deadline) -> str:
        """The Secret's ``metadata.resourceVersion`` (its data is not asked for)."""
        secret = self._secret(ref, deadline, METADATA_ACCEPT)
        meta = secret.get("metadata") if isinstance(secret, dict) else None
        version = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if not isinstance(version, str) or not version:
            raise UnavailableError(f"Kubernetes sent Secret {ref.store} without resourceVersion")
        return version

    def close(self, deadline: Deadline | None = None) -> None:
        self._http.close()


def build(context: StoreContext) -> Kubernetes:
    """The Kubernetes backend of one fetch (in-cluster access, else the kubeconfig)."""
    from secretsboot.identity.kubernetes import api_access

    return Kubernetes(api_access(context.env, context.config.namespace), context.env)


FETCH_BACKEND = Kubernetes
