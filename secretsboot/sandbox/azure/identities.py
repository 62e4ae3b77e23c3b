"""Entra ID's side of :class:`~.state.AzureState`: managed identities, federated credentials,
service principals and aad-pod-identity bindings."""

from __future__ import annotations

import hashlib
import time
import uuid

from secretsboot.sandbox.azure.models import (
    DEFAULT_LOCATION,
    MAX_FEDERATED_CREDENTIALS,
    NAME_RE,
    TOKEN_EXCHANGE_AUDIENCE,
    FederatedCredential,
    Identity,
    PodBinding,
    ServicePrincipal,
    StateError,
    new_system_data,
    touch,
)
from secretsboot.sandbox.azure.state_base import StateBase
from secretsboot.secret import SecretValue


class IdentityState(StateBase):
    # ---- identities --------------------------------------------------------------

    def identity_id(self, resource_group: str, name: str) -> str:
        return (
            f"{self._rg_id(resource_group)}/providers/Microsoft.ManagedIdentity"
            f"/userAssignedIdentities/{name}"
        )

    def create_identity(
        self,
        resource_group: str,
        name: str,
        *,
        location: str = DEFAULT_LOCATION,
        tags: dict[str, str] | None = None,
        by: str | None = None,
        propagate: bool = False,
    ) -> Identity:
        """Create (or return the existing) user-assigned identity ``resource_group/name``;
        its service principal replicates after the propagation delay (``propagate``: a
        create over ARM)."""
        if not NAME_RE.match(name):
            raise StateError(
                400,
                "InvalidResourceName",
                f"Resource name {name} is invalid. The name can contain only letters, numbers, "
                "underscores and hyphens, and must start with a letter or number.",
            )
        with self.lock:
            rg = self.ensure_resource_group(resource_group)
            key = self.identity_id(rg, name).lower()
            existing = self.identities.get(key)
            if existing is not None:
                if tags is not None:
                    existing.tags = dict(tags)
                touch(existing.system_data, by)
                return existing
            identity = Identity(
                resource_group=rg,
                name=name,
                client_id=str(uuid.uuid4()),
                principal_id=str(uuid.uuid4()),
                tenant_id=self.tenant_id,
                id=self.identity_id(rg, name),
                location=location,
                tags=dict(tags or {}),
                system_data=new_system_data(by),
                # seeded identities stand for old ones: replicated already
                replicated_at=self.effective_from(propagate=True) if propagate else 0.0,
            )
            self.identities[key] = identity
            return identity

    def get_identity(self, identity_id: str) -> Identity:
        with self.lock:
            identity = self.identities.get(identity_id.rstrip("/").lower())
        if identity is None:
            raise StateError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/"
                f"{identity_id.rstrip('/').rsplit('/', 1)[-1]}' under resource group "
                f"'{_rg_of(identity_id)}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )
        return identity

    def delete_identity(self, identity_id: str) -> bool:
        with self.lock:
            return self.identities.pop(identity_id.rstrip("/").lower(), None) is not None

    def identity_by_client_id(self, client_id: str) -> Identity | None:
        with self.lock:
            for identity in self.identities.values():
                if identity.client_id.lower() == client_id.lower():
                    return identity
        return None

    def add_federated_credential(
        self,
        identity_id: str,
        name: str,
        issuer: str,
        subject: str,
        audiences: list[str] | None = None,
        *,
        propagate: bool = False,
        by: str | None = None,
    ) -> FederatedCredential:
        """Create or update a FIC; the 21st on one identity is refused like Azure does.
        Entra honours it after the propagation delay (a random one when ``propagate``:
        a write over ARM)."""
        audiences = list(audiences or [TOKEN_EXCHANGE_AUDIENCE])
        if not NAME_RE.match(name) or len(name) < 3:
            raise StateError(
                400,
                "BadRequest",
                f"Federated Identity Credential name '{name}' is invalid. It must be 3 to 120 "
                "characters long, start with a letter or number, and contain only letters, "
                "numbers, hyphens and underscores.",
            )
        if not issuer.startswith("https://"):
            raise StateError(
                400, "BadRequest", f"Issuer '{issuer}' is invalid. Issuer must be an https URL."
            )
        if not subject:
            raise StateError(400, "BadRequest", "Subject must not be empty.")
        if len(audiences) != 1:
            raise StateError(
                400, "BadRequest", "Exactly one audience must be specified in 'audiences'."
            )
        with self.lock:
            identity = self.get_identity(identity_id)
            existing = identity.federated.get(name.lower())
            if existing is None and len(identity.federated) >= MAX_FEDERATED_CREDENTIALS:
                raise StateError(
                    400,
                    "BadRequest",
                    "Too many Federated Identity Credentials are written to the managed identity "
                    f"'{identity.id}'. A managed identity can have at most "
                    f"{MAX_FEDERATED_CREDENTIALS} Federated Identity Credentials.",
                )
            for other in identity.federated.values():
                if (
                    other.name.lower() != name.lower()
                    and other.issuer == issuer
                    and other.subject == subject
                ):
                    raise StateError(
                        409,
                        "Conflict",
                        f"Federated Identity Credential '{other.name}' with the same issuer and "
                        "subject already exists on this managed identity.",
                    )
            fic_name = existing.name if existing else name
            fic = FederatedCredential(
                name=fic_name,
                issuer=issuer,
                subject=subject,
                audiences=audiences,
                id=f"{identity.id}/federatedIdentityCredentials/{fic_name}",
                effective_at=self.effective_from(propagate=propagate),
                system_data=new_system_data(by),
            )
            if existing is not None:
                fic.system_data = dict(existing.system_data)
                touch(fic.system_data, by)
            identity.federated[name.lower()] = fic
            return fic

    def begin_fic_write(self, identity_id: str) -> bool:
        """Mark a FIC write on ``identity_id`` in flight; False when one already is."""
        key = identity_id.lower()
        with self.lock:
            if key in self._fic_writes:
                return False
            self._fic_writes.add(key)
            return True

    def fic_writes_in_flight(self) -> set[str]:
        with self.lock:
            return set(self._fic_writes)

    def end_fic_write(self, identity_id: str) -> None:
        with self.lock:
            self._fic_writes.discard(identity_id.lower())

    def matching_federated_credential(
        self, identity: Identity, issuer: str, subject: str, audiences: list[str]
    ) -> FederatedCredential | None:
        """The FIC matching a presented assertion (case-sensitive, as Entra does)."""
        with self.lock:
            now = time.monotonic()
            for fic in identity.federated.values():
                if (
                    fic.effective_at <= now
                    and fic.issuer == issuer
                    and fic.subject == subject
                    and any(a in fic.audiences for a in audiences)
                ):
                    return fic
        return None

    # ---- service principals ------------------------------------------------------

    def add_service_principal(self, client_id: str, secret: str | SecretValue) -> str:
        """Register an app that signs in with ``client_id`` and ``secret``; its object id."""
        raw = secret.reveal() if isinstance(secret, SecretValue) else secret
        with self.lock:
            existing = self.service_principals.get(client_id.lower())
            object_id = existing.object_id if existing else str(uuid.uuid4())
            self.service_principals[client_id.lower()] = ServicePrincipal(
                client_id=client_id,
                object_id=object_id,
                secret_sha256=hashlib.sha256(raw.encode("utf-8")).hexdigest(),
            )
            return object_id

    def principal_exists(self, object_id: str) -> bool:
        """Is ``object_id`` a principal the directory knows (replicated) by now?"""
        oid, now = object_id.lower(), time.monotonic()
        with self.lock:
            return any(
                i.principal_id.lower() == oid and i.replicated_at <= now
                for i in self.identities.values()
            ) or any(sp.object_id.lower() == oid for sp in self.service_principals.values())

    # ---- IMDS / aad-pod-identity -------------------------------------------------

    def bind_pod_identity(self, identity_id: str, selector: str | None = None) -> PodBinding:
        identity = self.get_identity(identity_id)
        binding = PodBinding(identity.id, selector)
        with self.lock:
            if binding not in self.pod_bindings:
                self.pod_bindings.append(binding)
        return binding

    def imds_identities(self, selector: str | None) -> list[Identity]:
        """The identities an IMDS caller may use: those bound to its selector (a pod with
        ``aadpodidbinding: selector``) or, for a caller with no selector, the node's."""
        with self.lock:
            bindings = list(self.pod_bindings)
        out: list[Identity] = []
        for b in bindings:
            if b.selector == selector:
                identity = self.identities.get(b.identity_id.lower())
                if identity is not None and identity not in out:
                    out.append(identity)
        return out


def _rg_of(resource_id: str) -> str:
    parts = resource_id.split("/")
    for i, p in enumerate(parts):
        if p.lower() == "resourcegroups" and i + 1 < len(parts):
            return parts[i + 1]
    return ""
