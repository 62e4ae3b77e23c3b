"""Helpers of the fetch integration tests (tests/integration/test_fetch_*.py).

Each test gets its own namespace, service account, Vault role and Key Vault names
(the sandbox is shared by the session), and runs ``secretsboot fetch`` / ``run`` as a
real subprocess configured only by environment variables and a config file, as
the webhook and the ConfigMap would configure it in a pod.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsboot.contract import KEY_VAULT_SECRETS_USER

_ids = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{os.getpid() % 1000}x{next(_ids)}"


@dataclass
class Pod:
    """What a pod would have: a namespace, a service account, its token files, its env."""

    namespace: str
    service_account: str
    folder: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def out(self) -> Path:
        return self.folder / "out"

    def write_config(self, config: dict[str, Any], name: str = "fetch.json") -> Path:
        path = self.folder / name
        path.write_text(json.dumps(config), encoding="utf-8")
        return path


def make_pod(sb: Any, tmp: Path, *, audiences: list[str] | None = None) -> Pod:
    """Namespace + ServiceAccount in the Kubernetes fake, the projected tokens on disk,
    and the in-cluster env (KUBERNETES_SERVICE_HOST/PORT, a service-account folder)."""
    ns = unique("ns")
    sa = unique("sa")
    store = sb.kube.store
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    folder = tmp / ns
    sa_dir = folder / "serviceaccount"
    sa_dir.mkdir(parents=True)
    # the API token (audience: the cluster) and the workload-identity token (Entra audience)
    (sa_dir / "token").write_text(sb.kube.app.mint_token(ns, sa, None, 3600))
    (sa_dir / "ca.crt").write_text(Path(sb.ca_path).read_text())
    (sa_dir / "namespace").write_text(ns)
    wi = folder / "azure-identity-token"
    wi.write_text(sb.kube.mint_token(ns, sa, audiences or ["api://AzureADTokenExchange"]))
    host, _, port = sb.kube.url.removeprefix("https://").rpartition(":")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": str(sb.ca_path),
        "KUBERNETES_SERVICE_HOST": host,
        "KUBERNETES_SERVICE_PORT": port,
        "SECRETSBOOT_SERVICEACCOUNT_DIR": str(sa_dir),
        "AZURE_FEDERATED_TOKEN_FILE": str(wi),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if sb.azure is not None:
        env["AZURE_TENANT_ID"] = sb.azure.tenant_id
        env["AZURE_AUTHORITY_HOST"] = sb.azure.authority_host
    return Pod(ns, sa, folder, env)


def vault_role(sb: Any, pod: Pod, paths: list[str], *, mount: str = "kubernetes") -> str:
    """A Vault policy reading ``paths`` (API paths, e.g. secret/data/x/*) and a role for the pod."""
    role = pod.service_account
    rules = "\n".join(f'path "{p}" {{ capabilities = ["read"] }}' for p in paths)
    sb.vault.request("PUT", f"sys/policies/acl/{role}", {"policy": rules})
    if mount == "kubernetes":
        body: dict[str, Any] = {
            "bound_service_account_names": [pod.service_account],
            "bound_service_account_namespaces": [pod.namespace],
            "token_policies": [role],
            "ttl": "5m",
        }
    else:
        body = {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["vault"],
            "bound_subject": f"system:serviceaccount:{pod.namespace}:{pod.service_account}",
            "token_policies": [role],
            "ttl": "5m",
        }
    sb.vault.request("POST", f"auth/{mount}/role/{role}", body)
    return role


def put_vault(sb: Any, path: str, data: dict[str, str]) -> None:
    """Write a KV v2 secret at ``secret/<path>``."""
    sb.vault.request("POST", f"secret/data/{path}", {"data": data})


def workload_identity(sb: Any, pod: Pod, vault: str, *, grant: bool = True) -> Any:
    """A managed identity with a federated credential for the pod, granted on ``vault``."""
    mi = sb.azure.create_identity("rg", unique("id-"))
    sb.azure.add_federated_credential(
        mi.id,
        "fic",
        sb.kube.oidc_issuer,
        f"system:serviceaccount:{pod.namespace}:{pod.service_account}",
    )
    if grant:
        sb.azure.assign_role(sb.azure.vault_id(vault), mi.principal_id, KEY_VAULT_SECRETS_USER)
    pod.env["AZURE_CLIENT_ID"] = mi.client_id
    return mi


def keyvault(sb: Any, mode: str = "rbac") -> str:
    name = unique("kv")
    sb.azure.create_keyvault(name, mode=mode)
    return name


def config(
    pod: Pod, secrets: list[dict[str, Any]], *, sb: Any = None, **extra: Any
) -> dict[str, Any]:
    """A FetchConfig document as provision would write it."""
    doc: dict[str, Any] = {
        "apiVersion": "secretsboot/v1",
        "kind": "FetchConfig",
        "namespace": pod.namespace,
        "serviceAccount": pod.service_account,
        "identity": extra.pop("identity", "none"),
        "secrets": secrets,
    }
    if sb is not None and any(s["from"].startswith("vault://") for s in secrets):
        doc["vault"] = {
            "address": sb.vault.address,
            "kvVersion": 2,
            "auth": {"method": "kubernetes", "role": pod.service_account},
        }
    if sb is not None and any(s["from"].startswith("keyvault://") for s in secrets):
        vaults = {s["from"].split("/")[2] for s in secrets if s["from"].startswith("keyvault://")}
        doc["azure"] = {
            "tenantId": sb.azure.tenant_id,
            "authorityHost": sb.azure.authority_host,
            "keyVaults": {v: sb.azure.keyvault_url(v) for v in vaults},
        }
    doc.update(extra)
    return doc


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m secretsboot ARGS`` in a clean environment (only ``env``)."""
    return subprocess.run(
        [sys.executable, "-m", "secretsboot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def listing(folder: Path) -> list[str]:
    """The names a reader sees in an output folder (not ``..data`` and its folders)."""
    if not folder.exists():
        return []
    return sorted(e for e in os.listdir(folder) if not e.startswith(".."))
