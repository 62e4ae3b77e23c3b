"""The Vault part of the desired state: one ACL policy and one auth role per service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from secretsboot.provision.model import Desired, ResourceKey, System
from secretsboot.provision.names import ttl_seconds, vault_policy_name, vault_role_name
from secretsboot.provision.ownership import policy_marker
from secretsboot.spec import ServiceSpec, SourceRef, VaultAuthMethod, VaultSpec

if TYPE_CHECKING:
    from secretsboot.provision.desired import Builder


def vault_grants(b: Builder, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
    """``vault://`` sources: a policy reading exactly those paths and the role that
    hands it to the service's login.

    On KV v2 each secret's ``metadata/`` path is readable too: it holds versions and
    timestamps, never a value, and lets a refreshing pod (``inject --refresh``) see
    that nothing changed without reading the value again every interval.
    """
    vs = b.spec.vault
    assert vs is not None  # noqa: S101 - validated
    policy = vault_policy_name(b.spec, svc.name)
    if vs.kv_version == 2:
        paths = sorted(
            {f"{r.store}/{part}/{r.path}" for r in refs for part in ("data", "metadata")}
        )
    else:
        paths = sorted({f"{r.store}/{r.path}" for r in refs})
    mount, body = _role_body(b, svc, ns, vs, policy)
    role_key = ResourceKey(System.VAULT, "role", f"{mount}/{vault_role_name(svc.name)}")
    b.add(
        Desired(
            ResourceKey(System.VAULT, "policy", policy),
            {"policy": vault_policy_text(b.spec.metadata.name, svc.name, paths)},
            (svc.name,),
            rank=0,
            extra={"spec": b.spec.metadata.name, "service": svc.name, "role_key": role_key},
        )
    )
    b.add(
        Desired(
            role_key,
            body,
            (svc.name,),
            rank=1,
            extra={
                "mount": mount,
                "role": vault_role_name(svc.name),
                "method": svc.vault_auth.value,
            },
        )
    )


def _role_body(
    b: Builder, svc: ServiceSpec, ns: str, vs: VaultSpec, policy: str
) -> tuple[str, dict[str, Any]]:
    ttl = ttl_seconds(vs.token_ttl)
    common: dict[str, Any] = {"token_policies": [policy], "token_ttl": ttl, "token_max_ttl": ttl}
    sa = svc.service_account_name
    method = svc.vault_auth
    if method is VaultAuthMethod.KUBERNETES:
        auth_k = vs.auth.kubernetes
        assert auth_k is not None  # noqa: S101
        body = {
            "bound_service_account_names": [sa],
            "bound_service_account_namespaces": [ns],
            **common,
        }
        if auth_k.audience:
            body["audience"] = auth_k.audience
        return auth_k.mount, body
    if method is VaultAuthMethod.JWT:
        auth_j = vs.auth.jwt
        assert auth_j is not None  # noqa: S101
        return auth_j.mount, {
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_subject": f"system:serviceaccount:{ns}:{sa}",
            "bound_audiences": [auth_j.audience],
            **common,
        }
    auth_a = vs.auth.azure
    assert auth_a is not None  # noqa: S101
    return auth_a.mount, {
        "bound_service_principal_ids": [b.ident(svc.identity_name, "principal_id")],
        **common,
    }


def vault_policy_text(
    spec_name: str,
    service: str,
    paths: list[str],
    ownership: str = "created",
    role_ownership: str = "created",
) -> str:
    """The HCL of a service's policy: ``read`` on exactly its paths, under its marker line.

    >>> print(vault_policy_text("dd", "ingestion", ["secret/data/dd/ingestion"]))
    # managed-by: secretsboot; spec: dd; service: ingestion; ownership: created; role-ownership: created
    path "secret/data/dd/ingestion" {
      capabilities = ["read"]
    }
    <BLANKLINE>
    """  # noqa: E501
    lines = [policy_marker(spec_name, service, ownership, role_ownership)]
    for p in paths:
        lines += [f'path "{p}" {{', '  capabilities = ["read"]', "}"]
    return "\n".join(lines) + "\n"
