"""What the sandbox holds before an operator starts: an operator login, and (with
``sandbox up --spec FILE``) what the spec expects to exist already.

A real operator runs ``provision`` against a subscription, a cluster and a Vault
that already exist; they did not come from the spec. ``seed_spec`` makes the
sandbox look like that world, without touching the spec file:

- Azure: the spec's tenant and subscription (the fakes are started with them),
  its resource groups, and its Key Vaults in their declared mode;
- Kubernetes: the kube context named in the spec, tokens carrying the spec's
  ``azure.oidcIssuer`` (Entra fetches that issuer's keys from the fake, as real
  Entra fetches them from the cluster's public issuer), the namespaces;
- Vault: the KV mount and version, and the kubernetes/jwt auth mounts, configured
  against the Kubernetes fake.

The spec's endpoints (``kv-shop.vault.azure.net``, the Vault address, ...) are
reached through the override variables ``sandbox env`` prints, the same ones a
real operator uses: ``SECRETSBOOT_ARM_ENDPOINT``, ``AZURE_AUTHORITY_HOST``,
``SECRETSBOOT_KEYVAULT_<NAME>``, ``VAULT_ADDR``, ``KUBECONFIG``.

The operator is a service principal (client id and secret) that ARM treats as a
subscription Owner, that holds Key Vault Secrets Officer on the subscription and
every access policy on access-policy vaults, plus Vault's root token. Its secret
is kept in ``operator.json`` (mode 0600), never in ``state.json``.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from secretsboot._fs import atomic_write_text

if TYPE_CHECKING:
    from secretsboot.sandbox.stack import Sandbox
    from secretsboot.spec import Spec

OPERATOR_FILE = "operator.json"
#: What the operator may do on an access-policy vault (secrets only, as provision needs).
OPERATOR_SECRET_PERMISSIONS = ["get", "list", "set", "delete", "recover", "backup", "restore"]


@dataclass(frozen=True)
class Operator:
    """The sandbox's operator login (a service principal with a client secret)."""

    client_id: str
    client_secret: str
    object_id: str

    def env(self) -> dict[str, str]:
        return {"AZURE_CLIENT_ID": self.client_id, "AZURE_CLIENT_SECRET": self.client_secret}

    def __repr__(self) -> str:
        return f"Operator(client_id={self.client_id!r}, object_id={self.object_id!r})"


def create_operator(sb: Sandbox) -> Operator | None:
    """Register the operator principal in Entra and grant it what provision needs."""
    azure = sb.azure
    if azure is None:
        return None
    from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_OFFICER

    client_id = str(uuid.uuid4())
    secret = "sbx~" + secrets.token_urlsafe(30)
    object_id = azure.add_service_principal(client_id, secret)
    azure.assign_role(
        f"/subscriptions/{azure.subscription_id}", object_id, KEY_VAULT_SECRETS_OFFICER
    )
    operator = Operator(client_id, secret, object_id)
    data = {"client_id": client_id, "client_secret": secret, "object_id": object_id}
    atomic_write_text(
        sb.state_dir / OPERATOR_FILE, json.dumps(data), mode=0o600, what="operator login"
    )
    return operator


def read_operator(state_dir: Path) -> dict[str, str]:
    """``AZURE_CLIENT_ID``/``AZURE_CLIENT_SECRET`` of the operator ({} when none)."""
    try:
        data = json.loads((state_dir / OPERATOR_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return {
        "AZURE_CLIENT_ID": str(data["client_id"]),
        "AZURE_CLIENT_SECRET": str(data["client_secret"]),
    }


def spec_identity(spec: Spec | None) -> dict[str, str | None]:
    """The tenant and subscription the Azure fakes take from the spec (None: random)."""
    if spec is None or spec.azure is None:
        return {"tenant_id": None, "subscription_id": None}
    return {"tenant_id": spec.azure.tenant_id, "subscription_id": spec.azure.subscription_id}


def adopt_cluster(sb: Sandbox, spec: Spec) -> None:
    """The Kubernetes fake takes the spec's issuer, context and namespaces."""
    kube = sb.kube
    if kube is None:
        return
    issuer = spec.azure.oidc_issuer if spec.azure is not None else None
    kube.adopt(issuer=issuer, context=spec.kubernetes.context, namespace=spec.kubernetes.namespace)
    if issuer and sb.azure is not None:
        sb.azure.entra.issuers.aliases[issuer.rstrip("/")] = kube.url
    namespaces = {spec.kubernetes.namespace, *(s.resolved_namespace(spec) for s in spec.services)}
    for ns in sorted(namespaces):
        if not kube.store.exists("namespaces", ns):
            kube.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})


def seed_azure(sb: Sandbox, spec: Spec, operator: Operator | None) -> None:
    """The spec's resource groups and Key Vaults (in their mode)."""
    azure = sb.azure
    if azure is None or spec.azure is None:
        return
    azure.state.ensure_resource_group(spec.azure.resource_group)
    for kv in spec.azure.key_vaults:
        policies = kv.mode.value == "access-policy"
        azure.create_keyvault(
            kv.name,
            "access-policy" if policies else "rbac",
            kv.resource_group or spec.azure.resource_group,
        )
        if policies and operator is not None:
            azure.add_access_policy(kv.name, operator.object_id, OPERATOR_SECRET_PERMISSIONS)


def seed_vault(sb: Sandbox, spec: Spec, reviewer_jwt: str | None) -> None:
    """The spec's KV mount (and version) and its kubernetes/jwt auth mounts."""
    bao, kube = sb.vault, sb.kube
    if bao is None or spec.vault is None:
        return
    mount, version = spec.vault.kv_mount.strip("/"), str(spec.vault.kv_version)
    mounts: dict[str, Any] = bao.request("GET", "sys/mounts").get("data") or {}
    current = mounts.get(f"{mount}/")
    if current is None or str((current.get("options") or {}).get("version", "1")) != version:
        if current is not None:
            bao.request("DELETE", f"sys/mounts/{mount}")
        bao.request("POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": version}})
    auth = spec.vault.auth
    if auth.azure is not None and sb.azure is not None:
        bao.configure_azure(sb.azure.tenant_id, auth.azure.resource, mount=auth.azure.mount)
    if kube is None:
        return
    if auth.kubernetes is not None:
        bao.configure_kubernetes(
            kube.url, sb.ca.ca_pem, token_reviewer_jwt=reviewer_jwt, mount=auth.kubernetes.mount
        )
    if auth.jwt is not None:
        bao.configure_jwt(
            f"{kube.url}/openid/v1/jwks",
            sb.ca.ca_pem,
            bound_issuer=kube.oidc_issuer,
            mount=auth.jwt.mount,
        )
