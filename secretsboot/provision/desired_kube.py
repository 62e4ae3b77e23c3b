"""The Kubernetes part of the desired state: service accounts, Secret-reader RBAC,
fallback Secrets, SecretProviderClasses, the fetch ConfigMap, FlexVolume notes.

A ``k8s://`` *primary* source is the operator's Secret: secretsboot grants the
service ``get`` on it (a Role with ``resourceNames``) and checks that it exists,
but never creates, labels or fills it. Only a *fallback* Secret is secretsboot's
to create (holding a placeholder until ``--sync-fallbacks`` or the operator fills it).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from secretsboot.contract import WI_CLIENT_ID_ANNOTATION, WI_TENANT_ID_ANNOTATION, FetchConfig
from secretsboot.provision.model import ANY_VALUE, Desired, Note, ResourceKey, System
from secretsboot.provision.names import k8s_object_name
from secretsboot.secret import SecretValue
from secretsboot.spec import Identity, ServiceSpec, SourceRef, Spec, VaultAuthMethod

if TYPE_CHECKING:
    from secretsboot.provision.desired import Builder


def service_account(
    b: Builder, svc: ServiceSpec, ns: str, k8s_refs: list[SourceRef], vault_refs: list[SourceRef]
) -> None:
    needs_token = bool(k8s_refs) or (
        bool(vault_refs) and svc.vault_auth is VaultAuthMethod.KUBERNETES
    )
    metadata: dict[str, Any] = {"labels": b.labels(svc.name)}
    if svc.identity is Identity.WORKLOAD_IDENTITY:
        assert b.spec.azure is not None  # noqa: S101
        metadata["annotations"] = {
            WI_CLIENT_ID_ANNOTATION: b.ident(svc.identity_name, "client_id"),
            WI_TENANT_ID_ANNOTATION: b.spec.azure.tenant_id,
        }
        b.notes.append(
            Note(
                svc.name,
                "info",
                f"pods of '{svc.name}' must carry the label azure.workload.identity/use: "
                f'"true" and run as ServiceAccount {svc.service_account_name}',
            )
        )
    b.add(
        Desired(
            ResourceKey(System.KUBERNETES, "ServiceAccount", f"{ns}/{svc.service_account_name}"),
            {"metadata": metadata, "automountServiceAccountToken": needs_token},
            (svc.name,),
            rank=1,
        )
    )


def k8s_grants(b: Builder, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
    """``k8s://`` sources: a Role allowing ``get`` on exactly those Secrets, its binding,
    and the fallback Secrets secretsboot creates."""
    name = k8s_object_name(svc.name)
    b.add(
        Desired(
            ResourceKey(System.KUBERNETES, "Role", f"{ns}/{name}"),
            {
                "metadata": {"labels": b.labels(svc.name)},
                "rules": [
                    {
                        "apiGroups": [""],
                        "resources": ["secrets"],
                        "verbs": ["get"],
                        "resourceNames": sorted({r.store for r in refs}),
                    }
                ],
            },
            (svc.name,),
            rank=2,
        )
    )
    b.add(
        Desired(
            ResourceKey(System.KUBERNETES, "RoleBinding", f"{ns}/{name}"),
            {
                "metadata": {"labels": b.labels(svc.name)},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
                "subjects": [
                    {"kind": "ServiceAccount", "name": svc.service_account_name, "namespace": ns}
                ],
            },
            (svc.name,),
            rank=3,
        )
    )
    fallback_secrets(b, svc, ns, [r for r in refs if (ns, r.store) not in b.primary_secrets])


def primary_secrets(spec: Spec) -> list[tuple[str, str, str, str]]:
    """``(service, namespace, secret, key)`` of every ``k8s://`` primary source."""
    out = []
    for svc in spec.services:
        ns = svc.resolved_namespace(spec)
        for secret in svc.secrets:
            ref = secret.source
            if ref.scheme == "k8s":
                out.append((svc.name, ns, ref.store, ref.key or ""))
    return out


def fallback_secrets(b: Builder, svc: ServiceSpec, ns: str, refs: list[SourceRef]) -> None:
    by_secret: dict[str, set[str]] = {}
    for ref in refs:
        by_secret.setdefault(ref.store, set()).add(ref.key or "")
    for secret_name, keys in by_secret.items():
        data: dict[str, str] = {}
        values: dict[str, SecretValue] = {}
        for k in sorted(keys):
            value = b.fallback_values.get((ns, secret_name, k))
            if value is not None:
                data[k] = value.fingerprint
                values[k] = value
            else:
                data[k] = ANY_VALUE
        b.add(
            Desired(
                ResourceKey(System.KUBERNETES, "Secret", f"{ns}/{secret_name}"),
                {"metadata": {"labels": b.labels(None)}, "data": data},
                (svc.name,),
                rank=1,
                secrets=values,
            ),
            merge=_merge_secret,
        )


def _merge_secret(old: Desired, new: Desired) -> None:
    old.body["data"].update(new.body["data"])
    old.secrets.update(new.secrets)


def secret_provider_classes(b: Builder, svc: ServiceSpec, ns: str) -> None:
    assert b.spec.azure is not None  # noqa: S101
    by_vault: dict[str, list[tuple[str, str, str | None]]] = {}
    for secret in svc.secrets:
        ref = secret.source
        by_vault.setdefault(ref.store, []).append((secret.name, ref.path, ref.version))
    several = len(by_vault) > 1
    for vault, objects in by_vault.items():
        name = k8s_object_name(svc.name) + (f"-{vault}" if several else "")
        params: dict[str, str] = {
            "keyvaultName": vault,
            "tenantId": b.spec.azure.tenant_id,
            "objects": _csi_objects(objects),
        }
        if svc.identity is Identity.WORKLOAD_IDENTITY:
            params["clientID"] = b.ident(svc.identity_name, "client_id")
        elif svc.identity is Identity.POD_IDENTITY:
            params["usePodIdentity"] = "true"
        b.add(
            Desired(
                ResourceKey(System.KUBERNETES, "SecretProviderClass", f"{ns}/{name}"),
                {
                    "metadata": {"labels": b.labels(svc.name)},
                    "spec": {"provider": "azure", "parameters": params},
                },
                (svc.name,),
                rank=1,
            )
        )
    b.notes.append(
        Note(
            svc.name,
            "info",
            f"mount the CSI volume in pods of '{svc.name}': csi.driver "
            "secrets-store.csi.k8s.io, volumeAttributes.secretProviderClass "
            + ", ".join(k8s_object_name(svc.name) + (f"-{v}" if several else "") for v in by_vault),
        )
    )


def _csi_objects(objects: list[tuple[str, str, str | None]]) -> str:
    """The ``objects`` parameter of a SecretProviderClass: a YAML array in a string."""
    lines = ["array:"]
    for alias, name, version in objects:
        lines += [
            "  - |",
            f"    objectName: {name}",
            "    objectType: secret",
            f"    objectAlias: {alias}",
        ]
        if version:
            lines.append(f"    objectVersion: {version}")
    return "\n".join(lines) + "\n"


def flexvolume_note(b: Builder, svc: ServiceSpec) -> None:
    assert b.spec.azure is not None  # noqa: S101
    by_vault: dict[str, list[str]] = {}
    for secret in svc.secrets:
        by_vault.setdefault(secret.source.store, []).append(secret.source.path)
    volumes = []
    for vault, names in by_vault.items():
        options = {
            "keyvaultname": vault,
            "keyvaultobjectnames": ";".join(names),
            "keyvaultobjecttypes": ";".join("secret" for _ in names),
            "resourcegroup": b.vault_rg(vault),
            "subscriptionid": b.subscription_id,
            "tenantid": b.spec.azure.tenant_id,
            "usepodidentity": str(svc.identity is Identity.POD_IDENTITY).lower(),
        }
        volumes.append(
            {"name": f"kv-{vault}", "flexVolume": {"driver": "azure/kv", "options": options}}
        )
    b.notes.append(
        Note(
            svc.name,
            "warning",
            "the Key Vault FlexVolume driver is deprecated; prefer delivery: csi "
            "(this volume is printed, not applied)",
            json.dumps({"volumes": volumes}, indent=2),
        )
    )


def fetch_config(b: Builder, svc: ServiceSpec, ns: str) -> None:
    text = b.fetch_cache.get(svc.name)
    if text is None:
        text = fetch_config_yaml(b.spec, svc)
        b.fetch_cache[svc.name] = text
    b.fetch_configs[svc.name] = text
    if not b.configmaps:
        return
    b.add(
        Desired(
            ResourceKey(System.KUBERNETES, "ConfigMap", f"{ns}/{k8s_object_name(svc.name)}"),
            {"metadata": {"labels": b.labels(svc.name)}, "data": {"fetch.yaml": text}},
            (svc.name,),
            rank=1,
        )
    )


def fetch_config_yaml(spec: Spec, svc: ServiceSpec) -> str:
    """The service's ``fetch.yaml``: the FetchConfig contract rendered from the spec."""
    text: str = FetchConfig.from_spec(spec, svc.name).to_yaml()
    return text
