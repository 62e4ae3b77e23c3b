"""``--sync-fallbacks``: read each fallback Secret's value from the secret's primary source.

A fallback ``k8s://SECRET#KEY`` of a secret whose primary is ``keyvault://`` or
``vault://`` gets the primary's current value. Values stay in
:class:`~secretsboot.secret.SecretValue`; the plan shows their fingerprints.

Key Vault URLs: ``SECRETSBOOT_KEYVAULT_<NAME>`` (NAME upper-cased, '-' -> '_'),
else the spec's ``url``, else ``https://NAME.vault.azure.net``.
"""

from __future__ import annotations

import os
from typing import Any

from secretsboot.errors import DeniedError, NotFoundError, UnavailableError
from secretsboot.provision.model import System
from secretsboot.secret import SecretValue
from secretsboot.spec import SourceRef, Spec


def keyvault_url(spec: Spec, name: str) -> str:
    env = os.environ.get("SECRETSBOOT_KEYVAULT_" + name.upper().replace("-", "_"))
    if env:
        return env
    kv = spec.azure.key_vault(name) if spec.azure else None
    return kv.vault_url if kv else f"https://{name}.vault.azure.net"


def read_fallback_values(
    spec: Spec, backends: dict[System, Any], only: str | None
) -> dict[tuple[str, str, str], SecretValue]:
    out: dict[tuple[str, str, str], SecretValue] = {}
    for svc in spec.services:
        if only and svc.name != only:
            continue
        ns = svc.resolved_namespace(spec)
        for secret in svc.secrets:
            primary = secret.source
            if primary.scheme == "k8s":
                continue
            for ref in secret.sources[1:]:
                if ref.scheme != "k8s" or ref.key is None:
                    continue
                out[(ns, ref.store, ref.key)] = _read(spec, backends, primary, svc.name)
    return out


def _read(spec: Spec, backends: dict[System, Any], ref: SourceRef, service: str) -> SecretValue:
    if ref.scheme == "keyvault":
        return _read_keyvault(spec, backends, ref, service)
    return _read_vault(spec, backends, ref, service)


def _read_keyvault(
    spec: Spec, backends: dict[System, Any], ref: SourceRef, service: str
) -> SecretValue:
    from azure.core.exceptions import HttpResponseError, ServiceRequestError
    from azure.keyvault.secrets import SecretClient

    from secretsboot.backends.keyvault import verify_challenge_resource

    az = backends.get(System.AZURE)
    if az is None:
        raise UnavailableError(f"azure: --sync-fallbacks needs ARM credentials for {ref}")
    url = keyvault_url(spec, ref.store)
    kwargs: dict[str, Any] = {"verify_challenge_resource": verify_challenge_resource(url)}
    if az.settings.ca_bundle:
        kwargs["connection_verify"] = az.settings.ca_bundle
    client = SecretClient(url, az.credential, **kwargs)
    try:
        secret = client.get_secret(ref.path, ref.version)
    except HttpResponseError as exc:
        status = exc.status_code or 0
        what = f"azure: read {ref} for the fallback Secret (service {service})"
        if status in (401, 403):
            raise DeniedError(
                f"{what}: permission denied",
                hint="the provisioning identity needs Key Vault Secrets User on the vault",
            ) from None
        if status == 404:
            raise NotFoundError(f"{what}: no such secret") from None
        raise UnavailableError(f"{what}: Key Vault answered {status}") from None
    except ServiceRequestError as exc:
        raise UnavailableError(
            f"azure: read {ref} for the fallback Secret (service {service}): cannot reach "
            f"Key Vault '{ref.store}' at {url}: {type(exc).__name__}",
            hint=f"set SECRETSBOOT_KEYVAULT_{ref.store.upper().replace('-', '_')} or the "
            "vault's url in the spec",
        ) from None
    finally:
        client.close()
    return SecretValue(secret.value or "")


def _read_vault(
    spec: Spec, backends: dict[System, Any], ref: SourceRef, service: str
) -> SecretValue:
    vb = backends.get(System.VAULT)
    if vb is None or spec.vault is None:
        raise UnavailableError(f"vault: --sync-fallbacks needs a Vault connection for {ref}")
    path = (
        f"{ref.store}/data/{ref.path}" if spec.vault.kv_version == 2 else f"{ref.store}/{ref.path}"
    )
    got = vb._call(
        f"read {ref} for the fallback Secret (service {service})", lambda: vb.client.read(path)
    )
    data = (got or {}).get("data") or {}
    if spec.vault.kv_version == 2:
        data = data.get("data") or {}
    if ref.key not in data:
        raise NotFoundError(f"vault: {ref}: no key '{ref.key}' (service {service})")
    return SecretValue(str(data[ref.key]))
