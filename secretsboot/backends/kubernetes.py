"""Kubernetes Secrets: ``k8s://SECRET#KEY`` in the pod's namespace.

REST call: ``GET /api/v1/namespaces/{ns}/secrets/{name}`` as the pod's service
account (in-cluster) or the kubeconfig's user. :class:`LeanKubernetes` uses our
pooled HTTP client, :class:`SdkKubernetes` the official ``kubernetes`` client; both
translate errors in :func:`kubernetes_error` only.
"""

from __future__ import annotations

import base64
import binascii
import os

from secretsboot.backends._http import HttpClient, quote
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.secret import FALLBACK_PLACEHOLDER, SecretValue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from secretsboot.identity.kubernetes import ApiAccess
    from secretsboot.refs import Ref


def kubernetes_error(
    status: int, ref: Ref, namespace: str, who: str, retry_after: float | None = None
) -> Exception:
    """The one translation of a Kubernetes API error into our tree."""
    where = f"Secret {namespace}/{ref.store}"
    if status == 429 or status >= 500:
        return UnavailableError(
            f"Kubernetes API answered {status} for {where}", retry_after=retry_after
        )
    if status == 404:
        return NotFoundError(f"{where} not found")
    if status == 403:
        return DeniedError(
            f"Kubernetes denied {who} reading {where}",
            hint=f"add a Role with 'get' on secrets/{ref.store} bound to the service account "
            "(secretsboot provision)",
        )
    if status == 401:
        return DeniedError(
            f"Kubernetes rejected the credentials of {who}",
            hint="the service-account token is expired or not for this cluster",
        )
    return BadInputError(f"Kubernetes refused the read of {where} (HTTP {status})")


def extract(secret: Any, ref: Ref, namespace: str) -> SecretValue:
    data = secret.get("data") if isinstance(secret, dict) else None
    if not isinstance(data, dict) or ref.key not in data:
        raise NotFoundError(f"Secret {namespace}/{ref.store} has no key '{ref.key}'")
    try:
        raw = base64.b64decode(data[ref.key], validate=True)
    except (binascii.Error, TypeError):
        raise UnavailableError(f"Secret {namespace}/{ref.store} holds undecodable data") from None
    if raw == FALLBACK_PLACEHOLDER.encode():
        # Not found, so the chain goes on; a pod must never start with the placeholder.
        raise NotFoundError(
            f"Secret {namespace}/{ref.store} key '{ref.key}' still holds secretsboot's placeholder",
            hint="set its value, or run `secretsboot provision --sync-fallbacks`",
        )
    return SecretValue(raw)


def _who(access: ApiAccess) -> str:
    if access.source.startswith("in-cluster") and access.token:
        from secretsboot.identity.azure import token_subject

        sub = token_subject(access.token)
        return f"service account {sub}" if sub else "the pod's service account"
    return f"{access.source} user {access.user or '?'}"


class LeanKubernetes:
    scheme = "k8s"
    client = "lean"

    def __init__(self, access: ApiAccess) -> None:
        self._access = access
        self._who = _who(access)
        self._http = HttpClient(
            access.server,
            ca_file=access.ca_file,
            ca_data=access.ca_data,
            client_cert=access.client_cert,
            what="Kubernetes API",
        )
        if access.temp_dir:
            from secretsboot.identity.kubernetes import forget_client_cert

            try:
                self._http.preload_tls()  # reads the client key now ...
            finally:
                forget_client_cert(access)  # ... so its temporary copy goes at once

    def describe_identity(self) -> str:
        return self._who

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """``GET /api/v1/namespaces/{ns}/secrets/{name}``, then base64-decode ``data[key]``."""
        ns = self._access.namespace
        headers = {"Accept": "application/json"}
        if self._access.token:
            headers["Authorization"] = f"Bearer {self._access.token}"
        resp = self._http.request(
            "GET",
            f"/api/v1/namespaces/{quote(ns)}/secrets/{quote(ref.store)}",
            headers=headers,
            timeout=timeout,
        )
        if resp.status == 200:
            return extract(resp.json(), ref, ns)
        raise kubernetes_error(resp.status, ref, ns, self._who, resp.retry_after)

    def close(self) -> None:
        self._http.close()


class SdkKubernetes:
    """Kubernetes through the official client (``CoreV1Api.read_namespaced_secret``)."""

    scheme = "k8s"
    client = "sdk"

    def __init__(self, access: ApiAccess) -> None:
        from kubernetes import client as k8s

        self._access = access
        self._who = _who(access)
        cfg = k8s.Configuration()
        cfg.host = access.server
        cfg.verify_ssl = True
        self._ca_temp: str | None = None
        if access.ca_data:
            import tempfile

            # the official client wants a CA file; it holds only the public CA certificate
            with tempfile.NamedTemporaryFile("w", suffix=".crt", delete=False) as fh:
                fh.write(access.ca_data)
            cfg.ssl_ca_cert = self._ca_temp = fh.name
        elif access.ca_file:
            cfg.ssl_ca_cert = access.ca_file
        if access.token:
            cfg.api_key = {"authorization": f"Bearer {access.token}"}
        if access.client_cert:
            cfg.cert_file, cfg.key_file = access.client_cert
        self._api_client: Any = k8s.ApiClient(cfg)
        self._api = k8s.CoreV1Api(self._api_client)

    def describe_identity(self) -> str:
        return self._who

    def get(self, ref: Ref, timeout: float) -> SecretValue:
        """``CoreV1Api.read_namespaced_secret`` (the same REST call)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        ns = self._access.namespace
        try:
            resp = self._api.read_namespaced_secret(
                ref.store, ns, _request_timeout=timeout, _preload_content=False
            )
            body = resp.json()
        except ApiException as exc:
            retry = exc.headers.get("Retry-After") if exc.headers else None
            retry_after = float(retry) if retry and retry.isdigit() else None
            raise kubernetes_error(exc.status or 0, ref, ns, self._who, retry_after) from None
        except HTTPError as exc:
            raise UnavailableError(
                f"Kubernetes API at {self._access.server} unreachable ({type(exc).__name__})"
            ) from None
        return extract(body, ref, ns)

    def close(self) -> None:
        from secretsboot.identity.kubernetes import forget_client_cert

        self._api_client.close()
        forget_client_cert(self._access)
        if self._ca_temp:
            import contextlib

            with contextlib.suppress(OSError):
                os.unlink(self._ca_temp)
