"""Act as a provisioned service: the credentials its pod would hold, for ``--verify``.

For each service, a Kubernetes TokenRequest (``POST .../serviceaccounts/{sa}/token``)
through the provisioner's own kubeconfig gives the service-account tokens a pod
would have projected: the API audience (Kubernetes Secrets, Vault kubernetes
auth), ``api://AzureADTokenExchange`` (workload identity) and Vault's jwt
audience. They are written, private, into a folder laid out as the pod sees it,
with the environment the webhook and kubelet would set. Nothing here fetches:
the command line hands the result to ``fetch`` (faces never import each other).

A pod-identity service cannot be acted as from outside a node (its token comes
from NMI on the node): it is reported as not verifiable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secretsboot.contract import FetchConfig
from secretsboot.errors import SecretsbootError
from secretsboot.provision.model import System
from secretsboot.spec import (
    WORKLOAD_IDENTITY_AUDIENCE,
    Identity,
    ServiceSpec,
    Spec,
    VaultAuthMethod,
)

TOKEN_SECONDS = 600


@dataclass
class Acting:
    """How to act as one service: its fetch config and environment, or why not."""

    service: str
    config: FetchConfig | None = None
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""


def act_as(spec: Spec, backends: dict[System, Any], folder: Path, only: str | None) -> list[Acting]:
    """Credentials of every service in scope (``only``), written under ``folder``."""
    kube = backends.get(System.KUBERNETES)
    azure = backends.get(System.AZURE)
    out = []
    for svc in spec.services:
        if only and svc.name != only:
            continue
        if svc.identity is Identity.POD_IDENTITY:
            out.append(
                Acting(svc.name, reason="pod-identity: only a pod on a node with NMI can act as it")
            )
            continue
        if kube is None:
            out.append(Acting(svc.name, reason="no Kubernetes connection to request its tokens"))
            continue
        try:
            out.append(_one(spec, svc, kube, azure, folder / svc.name))
        except SecretsbootError as exc:
            out.append(Acting(svc.name, reason=f"cannot act as it: {exc}"))
    return out


def _one(spec: Spec, svc: ServiceSpec, kube: Any, azure: Any, folder: Path) -> Acting:
    ns = svc.resolved_namespace(spec)
    sa = svc.service_account_name
    conf = kube.api.configuration
    server = urlsplit(str(conf.host))
    sa_dir = folder / "serviceaccount"
    sa_dir.mkdir(parents=True, mode=0o700)
    _private(sa_dir / "token", kube.request_token(ns, sa, None, TOKEN_SECONDS))
    _private(sa_dir / "namespace", ns)
    if conf.ssl_ca_cert:
        _private(sa_dir / "ca.crt", Path(conf.ssl_ca_cert).read_text(encoding="utf-8"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("SECRETSBOOT_KEYVAULT_", "SSL_CERT", "REQUESTS_CA_BUNDLE", "PATH", "HOME"))
        or k.endswith("_PROXY")
        or k in {"LANG", "VAULT_CACERT"}
    }
    env.update(
        {
            "KUBERNETES_SERVICE_HOST": server.hostname or "127.0.0.1",
            "KUBERNETES_SERVICE_PORT": str(server.port or 443),
            "SECRETSBOOT_SERVICEACCOUNT_DIR": str(sa_dir),
        }
    )
    config = FetchConfig.from_spec(spec, svc.name)
    if config.azure is not None and azure is not None:
        # Entra ID as the provisioner reached it (AZURE_AUTHORITY_HOST overrides the spec)
        config = config._replace(
            azure=config.azure._replace(
                authority_host=azure.settings.authority_host, tenant_id=azure.settings.tenant_id
            )
        )
    if svc.identity is Identity.WORKLOAD_IDENTITY:
        assert spec.azure is not None  # noqa: S101 - validated
        info = azure.identities.get(svc.identity_name) if azure is not None else None
        if info is None:
            return Acting(svc.name, reason=f"identity '{svc.identity_name}' not found in Azure")
        wi = folder / "azure-identity-token"
        _private(wi, kube.request_token(ns, sa, [WORKLOAD_IDENTITY_AUDIENCE], TOKEN_SECONDS))
        env.update(
            {
                "AZURE_CLIENT_ID": info.client_id,
                "AZURE_TENANT_ID": azure.settings.tenant_id,
                "AZURE_AUTHORITY_HOST": azure.settings.authority_host,
                "AZURE_FEDERATED_TOKEN_FILE": str(wi),
            }
        )
    if config.vault is not None and svc.vault_auth is VaultAuthMethod.JWT:
        assert spec.vault is not None and spec.vault.auth.jwt is not None  # noqa: S101
        token = folder / "vault-token"
        _private(token, kube.request_token(ns, sa, [spec.vault.auth.jwt.audience], TOKEN_SECONDS))
        auth = config.vault.auth._replace(token_path=str(token))
        config = config._replace(vault=config.vault._replace(auth=auth))
    return Acting(svc.name, config, env)


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
