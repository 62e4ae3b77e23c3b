"""The secret operations of the Key Vault fake (a mixin of :class:`~.keyvault.KeyVaultApp`).

Bodies are Key Vault's ``SecretBundle`` / ``SecretItem`` / ``DeletedSecretBundle``:
``attributes`` keep ``enabled``, ``nbf``, ``exp`` (Unix seconds, only when set),
``created``, ``updated``, ``recoveryLevel`` and ``recoverableDays``. As the real
service, a GET still answers an expired or not-yet-valid secret (Key Vault does not
enforce ``exp``/``nbf`` on secrets; they are for the caller to honour) and refuses a
disabled one (403 ``Forbidden``, inner ``SecretDisabled``).

Soft delete: ``DELETE /secrets/{name}`` moves every version to the deleted secrets
(``GET /deletedsecrets``, ``GET /deletedsecrets/{name}``), from where
``POST /deletedsecrets/{name}/recover`` brings them back and
``DELETE /deletedsecrets/{name}`` purges them; setting a deleted-but-not-purged name is
409 ``Conflict`` (inner ``ObjectIsDeletedButRecoverable``).

Backup: ``POST /secrets/{name}/backup`` answers ``{"value": blob}``, an opaque
base64url blob (every version, AES-GCM sealed with a key of the subscription, so it
restores only in the same subscription, as in Azure); ``POST /secrets/restore`` with
``{"value": blob}`` recreates the secret (409 when the name exists).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsboot.sandbox._http import Request, Response
from secretsboot.sandbox.azure.state import (
    SECRET_NAME_RE,
    AzureState,
    SecretVersion,
    StateError,
    Vault,
)
from secretsboot.secret import SecretValue

RETENTION_DAYS = 90
_BACKUP_MAGIC = b"&AzureKeyVaultSecretBackupV1.microsoft.com"


def kv_error(
    status: int,
    code: str,
    message: str,
    inner: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response(status, {"error": error}, headers or {})


def _epoch(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretOps:
    """Bodies and operations on one vault's secrets."""

    state: AzureState

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

    # ---- bodies ------------------------------------------------------------------

    def _attributes(self, v: SecretVersion) -> dict[str, Any]:
        attrs: dict[str, Any] = {"enabled": v.enabled}
        if v.nbf is not None:
            attrs["nbf"] = v.nbf
        if v.exp is not None:
            attrs["exp"] = v.exp
        attrs.update(
            {
                "created": v.created,
                "updated": v.updated,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": RETENTION_DAYS,
            }
        )
        return attrs

    def _item(
        self, vault: Vault, name: str, v: SecretVersion, *, versioned: bool
    ) -> dict[str, Any]:
        spelled = vault.secret_names.get(name.lower(), name)
        item: dict[str, Any] = {
            "id": f"{self.url}/secrets/{spelled}" + (f"/{v.version}" if versioned else ""),
            "attributes": self._attributes(v),
            "tags": dict(v.tags),
        }
        if v.content_type is not None:
            item["contentType"] = v.content_type
        return item

    def _bundle(self, vault: Vault, name: str, v: SecretVersion) -> dict[str, Any]:
        body = self._item(vault, name, v, versioned=True)
        body["value"] = v.value.reveal()
        return body

    def _not_found(self, name: str, version: str = "") -> StateError:
        ident = f"{name}/{version}" if version else name
        return StateError(
            404,
            "SecretNotFound",
            f"A secret with (name/id) {ident} was not found in this key vault. If you recently "
            "deleted this secret you may be able to recover it using the correct recovery "
            "command. For help resolving this issue, please see "
            "https://go.microsoft.com/fwlink/?linkid=2125182",
        )

    def _versions(self, vault: Vault, name: str) -> list[SecretVersion]:
        with self.state.lock:
            versions = list(vault.secrets.get(name.lower(), []))
        if not versions:
            raise self._not_found(name)
        return versions

    def _find_version(self, vault: Vault, name: str, version: str) -> SecretVersion:
        versions = self._versions(vault, name)
        if not version:
            return versions[-1]
        found = next((v for v in versions if v.version == version.lower()), None)
        if found is None:
            raise self._not_found(name, version)
        return found

    # ---- get, set, update, list --------------------------------------------------

    def _get(self, vault: Vault, name: str, version: str) -> Response:
        found = self._find_version(vault, name, version)
        if not found.enabled:
            raise StateError(
                403, "Forbidden", "Operation get is not allowed on a disabled secret."
            ).with_inner("SecretDisabled")
        return Response(200, self._bundle(vault, name, found))

    def _set(self, req: Request, vault: Vault, name: str) -> Response:
        data = _json_object(req)
        if data is None or not isinstance(data.get("value"), str):
            return kv_error(
                400, "BadParameter", "Property 'value' is required and must be a string."
            )
        content_type = data.get("contentType")
        tags = data.get("tags") if isinstance(data.get("tags"), dict) else {}
        version = self.state.set_secret(
            vault.name,
            name,
            data["value"],
            content_type=content_type if isinstance(content_type, str) else None,
            tags={str(k): str(v) for k, v in (tags or {}).items()},
        )
        with self.state.lock:
            _apply_attributes(version, data.get("attributes"))
        return Response(200, self._bundle(vault, name, version))

    def _update(self, req: Request, vault: Vault, name: str, version: str) -> Response:
        found = self._find_version(vault, name, version)
        data = _json_object(req)
        if data is None:
            return kv_error(400, "BadParameter", "The request body must be a JSON object.")
        with self.state.lock:
            _apply_attributes(found, data.get("attributes"))
            if isinstance(data.get("contentType"), str):
                found.content_type = data["contentType"]
            if isinstance(data.get("tags"), dict):
                found.tags = {str(k): str(v) for k, v in data["tags"].items()}
            found.updated = int(time.time())
        return Response(200, self._item(vault, name, found, versioned=True))

    def _page(self, req: Request, path: str, items: list[dict[str, Any]]) -> Response:
        try:
            maxresults = int(req.arg("maxresults") or 25)
            skip = int(req.arg("$skiptoken") or 0)
        except ValueError:
            return kv_error(400, "BadParameter", "maxresults and $skiptoken must be integers.")
        if not 1 <= maxresults <= 25:
            return kv_error(
                400, "BadParameter", "The value of maxresults must be between 1 and 25."
            )
        page = items[skip : skip + maxresults]
        next_link = None
        if skip + maxresults < len(items):
            next_link = (
                f"{self.url}{path}?api-version={req.arg('api-version')}"
                f"&$skiptoken={skip + maxresults}&maxresults={maxresults}"
            )
        return Response(200, {"value": page, "nextLink": next_link})

    def _list(self, req: Request, vault: Vault, name: str | None) -> Response:
        if name is None:
            with self.state.lock:
                latest = [(n, vs[-1]) for n, vs in sorted(vault.secrets.items()) if vs]
            items = [self._item(vault, n, v, versioned=False) for n, v in latest]
            return self._page(req, "/secrets", items)
        items = [self._item(vault, name, v, versioned=True) for v in self._versions(vault, name)]
        return self._page(
            req, f"/secrets/{vault.secret_names.get(name.lower(), name)}/versions", items
        )

    # ---- soft delete -------------------------------------------------------------

    def _deleted_body(
        self, vault: Vault, name: str, stamp: int, v: SecretVersion, *, versioned: bool = True
    ) -> dict[str, Any]:
        body = self._item(vault, name, v, versioned=versioned)
        spelled = vault.secret_names.get(name.lower(), name)
        body.update(
            {
                "recoveryId": f"{self.url}/deletedsecrets/{spelled}",
                "deletedDate": stamp,
                "scheduledPurgeDate": stamp + RETENTION_DAYS * 86400,
            }
        )
        return body

    def _delete(self, vault: Vault, name: str) -> Response:
        stamp = int(time.time())
        with self.state.lock:
            versions = vault.secrets.pop(name.lower(), None)
            if not versions:
                raise self._not_found(name)
            vault.deleted[name.lower()] = (stamp, versions)
        return Response(200, self._deleted_body(vault, name, stamp, versions[-1]))

    def _deleted(self, vault: Vault, name: str) -> tuple[int, list[SecretVersion]]:
        with self.state.lock:
            entry = vault.deleted.get(name.lower())
        if entry is None:
            raise StateError(404, "SecretNotFound", f"Deleted Secret not found: {name}")
        return entry

    def _get_deleted(self, vault: Vault, name: str) -> Response:
        stamp, versions = self._deleted(vault, name)
        return Response(200, self._deleted_body(vault, name, stamp, versions[-1]))

    def _list_deleted(self, req: Request, vault: Vault) -> Response:
        with self.state.lock:
            entries = sorted(vault.deleted.items())
        items = [
            self._deleted_body(vault, n, stamp, vs[-1], versioned=False)
            for n, (stamp, vs) in entries
        ]
        return self._page(req, "/deletedsecrets", items)

    def _purge(self, vault: Vault, name: str) -> Response:
        self._deleted(vault, name)
        with self.state.lock:
            vault.deleted.pop(name.lower(), None)
            vault.secret_names.pop(name.lower(), None)
        return Response(204)

    def _recover(self, vault: Vault, name: str) -> Response:
        _, versions = self._deleted(vault, name)
        with self.state.lock:
            vault.deleted.pop(name.lower(), None)
            vault.secrets[name.lower()] = versions
        return Response(200, self._bundle(vault, name, versions[-1]))

    # ---- backup / restore --------------------------------------------------------

    def _backup(self, vault: Vault, name: str) -> Response:
        versions = self._versions(vault, name)
        payload = {
            "name": vault.secret_names.get(name.lower(), name),
            "versions": [_version_doc(v) for v in versions],
        }
        nonce = os.urandom(12)
        sealed = AESGCM(self.state.backup_key).encrypt(
            nonce, json.dumps(payload).encode("utf-8"), _BACKUP_MAGIC
        )
        return Response(200, {"value": _b64url(_BACKUP_MAGIC + nonce + sealed)})

    def _restore(self, req: Request, vault: Vault) -> Response:
        data = _json_object(req)
        blob = data.get("value") if data is not None else None
        if not isinstance(blob, str):
            return kv_error(400, "BadParameter", "Property 'value' (the backup blob) is required.")
        payload = self._open_backup(blob)
        name = payload["name"]
        versions = [_version_from_doc(d) for d in payload["versions"]]
        key = name.lower()
        with self.state.lock:
            if key in vault.deleted:
                raise StateError(
                    409,
                    "Conflict",
                    f"Secret {name} is currently in a deleted but recoverable state, and its "
                    "name cannot be reused; in this state, the secret can only be recovered or "
                    "purged.",
                ).with_inner("ObjectIsDeletedButRecoverable")
            if vault.secrets.get(key):
                raise StateError(
                    409,
                    "Conflict",
                    f"Secret {name} already exists; a backup restores only into a vault where "
                    "the name is free.",
                )
            vault.secret_names[key] = name
            vault.secrets[key] = versions
        return Response(200, self._item(vault, name, versions[-1], versioned=True))

    def _open_backup(self, blob: str) -> dict[str, Any]:
        corrupt = StateError(
            400,
            "BadParameter",
            "The backup blob is corrupt or was not produced by a Key Vault of this "
            "subscription and geography.",
        )
        try:
            raw = _unb64url(blob)
        except (binascii.Error, ValueError):
            raise corrupt from None
        head = len(_BACKUP_MAGIC)
        if not raw.startswith(_BACKUP_MAGIC) or len(raw) < head + 13:
            raise corrupt
        try:
            plain = AESGCM(self.state.backup_key).decrypt(
                raw[head : head + 12], raw[head + 12 :], _BACKUP_MAGIC
            )
        except InvalidTag:
            raise corrupt from None
        payload = json.loads(plain)
        if not isinstance(payload, dict) or not SECRET_NAME_RE.match(str(payload.get("name"))):
            raise corrupt
        return payload


def _json_object(req: Request) -> dict[str, Any] | None:
    try:
        data = req.json()
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _apply_attributes(version: SecretVersion, attrs: Any) -> None:
    """``enabled``, ``nbf`` and ``exp`` of a set or update body (``null`` clears a date)."""
    if not isinstance(attrs, dict):
        return
    if isinstance(attrs.get("enabled"), bool):
        version.enabled = attrs["enabled"]
    for field in ("nbf", "exp"):
        if field in attrs:
            setattr(version, field, _epoch(attrs[field]))


def _version_doc(v: SecretVersion) -> dict[str, Any]:
    return {
        "version": v.version,
        "value": v.value.reveal(),
        "contentType": v.content_type,
        "enabled": v.enabled,
        "created": v.created,
        "updated": v.updated,
        "nbf": v.nbf,
        "exp": v.exp,
        "tags": dict(v.tags),
    }


def _version_from_doc(doc: dict[str, Any]) -> SecretVersion:
    return SecretVersion(
        version=str(doc["version"]),
        value=SecretValue(str(doc["value"])),
        content_type=doc.get("contentType"),
        enabled=bool(doc.get("enabled", True)),
        created=int(doc["created"]),
        updated=int(doc["updated"]),
        tags={str(k): str(v) for k, v in (doc.get("tags") or {}).items()},
        nbf=_epoch(doc.get("nbf")),
        exp=_epoch(doc.get("exp")),
    )
