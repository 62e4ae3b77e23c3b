"""What the Kubernetes fake's tests share: a fake per test module, an official
client configured by its kubeconfig only, raw HTTPS requests, and a client
acting as a service account bound to a role.

Test modules import the ``kube`` and ``api`` fixtures from here."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client, config

from secretsboot.sandbox.kube import KubeFake
from secretsboot.sandbox.pki import CertificateAuthority


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeFake]:
    state = tmp_path_factory.mktemp("kube")
    fake = KubeFake.start(CertificateAuthority.create(state), state)
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture(scope="module")
def api(kube: KubeFake) -> Iterator[client.ApiClient]:
    api_client = config.new_client_from_config(str(kube.kubeconfig_path))
    try:
        yield api_client
    finally:
        api_client.close()


def make_ns(api: client.ApiClient, name: str) -> str:
    client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})
    return name


def raw(
    kube: KubeFake,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    """One HTTPS request to the fake, trusting only the sandbox CA (``token``: the
    admin's unless given; ``""``: none)."""
    headers = {"Content-Type": content_type}
    token = kube.admin_token if token is None else token
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(kube.url + path, data=data, method=method, headers=headers)  # noqa: S310
    ctx = ssl.create_default_context(cafile=str(kube.ca.ca_path))
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def client_as(
    kube: KubeFake, api: client.ApiClient, ns: str, sa: str, rules: list[dict[str, Any]]
) -> client.ApiClient:
    """An official client acting as service account ``ns/sa``, bound to a Role of ``rules``."""
    client.CoreV1Api(api).create_namespaced_service_account(ns, {"metadata": {"name": sa}})
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(ns, {"metadata": {"name": sa}, "rules": rules})
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": sa},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": sa},
            "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}],
        },
    )
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert = kube.url, str(kube.ca.ca_path)
    cfg.api_key = {"authorization": kube.mint_token(ns, sa, audiences=[kube.oidc_issuer])}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)
