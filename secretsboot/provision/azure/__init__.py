"""Azure Resource Manager: managed identities, federated credentials, Key Vault grants.

One backend object per run, one module per resource family:

- :mod:`.arm`: settings, credential, SDK clients, the one SDK-exception translation
- :mod:`.identities`: user-assigned identities and their federated credentials
- :mod:`.grants`: declared Key Vaults (checked), role assignments, access policies
- :mod:`.permissions`: the permissions-API preflight before any write

:meth:`AzureBackend.observe` reads in batches and records every failed reference
(a missing resource group or Key Vault, a vault in the other mode) in
:attr:`AzureBackend.problems` instead of failing at the first;
:meth:`AzureBackend.apply` makes one write per change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from secretsboot.errors import BadInputError, NotFoundError, SecretsbootError
from secretsboot.provision.azure.arm import Arm, AzureSettings, make_credential, svc_of
from secretsboot.provision.azure.grants import Grants
from secretsboot.provision.azure.identities import Identities
from secretsboot.provision.azure.issuer import check_issuer
from secretsboot.provision.azure.permissions import Permissions, _permits
from secretsboot.provision.desired import IdentityInfo
from secretsboot.provision.model import (
    KNOWN_AFTER_APPLY,
    Action,
    Change,
    Desired,
    Note,
    Observed,
    ResourceKey,
    System,
)
from secretsboot.spec import Spec

__all__ = ["AzureBackend", "AzureSettings", "_permits", "_refuse_unknown", "make_credential"]


class AzureBackend:
    """Reads and writes the Azure side of a spec through the official ARM SDKs."""

    system = System.AZURE

    def __init__(self, spec: Spec, settings: AzureSettings, credential: Any) -> None:
        self.arm = Arm(spec, settings, credential)
        self.spec = spec
        self.settings = settings
        self.credential = credential
        self.family_identities = Identities(self.arm)
        self.grants = Grants(self.arm)
        self.permissions = Permissions(self.arm)
        self.problems: list[Note] = []

    @classmethod
    def connect(cls, spec: Spec) -> AzureBackend:
        settings = AzureSettings.from_spec(spec)
        return cls(spec, settings, make_credential(settings))

    def close(self) -> None:
        self.arm.close()

    @property
    def calls(self) -> int:
        return self.arm.calls

    @property
    def identities(self) -> dict[str, IdentityInfo]:
        return self.arm.index.infos

    # -- reads ----------------------------------------------------------------------

    def observe(
        self, desired: Iterable[Desired], *, prune: bool = False
    ) -> dict[ResourceKey, Observed]:
        """Every Azure object the desired state touches and every one this spec manages."""
        mine = [d for d in desired if d.system == System.AZURE]
        out: dict[ResourceKey, Observed] = {}
        self.problems = []
        try:
            self.family_identities.observe(mine, out)
        except NotFoundError as exc:
            if "resource group does not exist" not in exc.message:
                raise
            assert self.spec.azure is not None  # noqa: S101
            rg = self.spec.azure.resource_group
            self.problems.append(
                Note(
                    "(spec)",
                    "error",
                    f"azure: the identities' resource group '{rg}' (azure.resourceGroup) "
                    "does not exist",
                    f"create it (az group create -n {rg} -l {self.spec.azure.location}) or "
                    "fix azure.resourceGroup",
                    kind="not-found",
                )
            )
        vaults = self.grants.check_vaults(self._vault_users(), self.problems)
        fics = [d for d in mine if d.key.kind == "federated-credential"]
        if fics:
            issuer = str(fics[0].body["issuer"])
            users = sorted({s for d in fics for s in d.services})
            self.problems.extend(check_issuer(issuer, users))
        wanted = {d.extra["identity"] for d in mine if d.key.kind == "managed-identity"}
        going = (self.arm.index.managed - wanted) if prune else set()
        self.grants.observe(vaults, out, going)
        return out

    def _vault_users(self) -> dict[str, list[str]]:
        users: dict[str, list[str]] = {}
        for svc in self.spec.services:
            for secret in svc.secrets:
                for ref in secret.sources:
                    if ref.scheme == "keyvault" and svc.name not in users.get(ref.store, []):
                        users.setdefault(ref.store, []).append(svc.name)
        return users

    def preflight(self, pending: Iterable[Change]) -> None:
        """The caller's permissions for the pending writes (:mod:`.permissions`)."""
        self.permissions.preflight(pending)

    # -- writes ---------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        kind = change.key.kind
        action = change.action
        what = f"{action.value} {kind} '{change.key.name}' (service {svc_of(change.services)})"
        if action is Action.DELETE:
            self._delete(change, what)
            return
        if action is Action.RELEASE:
            if kind == "managed-identity":
                self.family_identities.release_identity(change, what)
            return  # the other kinds are created-only: nothing of theirs to release
        want = change.desired
        assert want is not None  # noqa: S101
        _refuse_unknown(want)
        if kind == "managed-identity":
            have = change.observed.body.get("tags") if change.observed is not None else None
            self.family_identities.put_identity(want, what, dict(have or {}))
        elif kind == "federated-credential":
            self.family_identities.put_fic(want, what)
        elif kind == "role-assignment":
            self.grants.put_role_assignment(want, what)
        elif kind == "access-policy":
            self.grants.put_access_policy(want, what)
        else:  # pragma: no cover - desired only builds the kinds above
            raise BadInputError(f"azure: unknown kind {kind}")

    def _delete(self, change: Change, what: str) -> None:
        deleters = {
            "managed-identity": self.family_identities.delete_identity,
            "federated-credential": self.family_identities.delete_fic,
            "role-assignment": self.grants.delete_role_assignment,
            "access-policy": self.grants.delete_access_policy,
        }
        try:
            deleters[change.key.kind](change, what)
        except NotFoundError:
            return  # already gone: a re-run after a crash


def _refuse_unknown(want: Desired) -> None:
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return bool(value == KNOWN_AFTER_APPLY)

    if bool(walk(want.body)) or bool(walk(want.extra)):
        raise SecretsbootError(f"{want.key}: a value is still unknown at apply time (a bug)")
