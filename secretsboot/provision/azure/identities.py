"""User-assigned managed identities and their federated identity credentials.

Reads: the identities of the spec's resource group in one list, then the
federated credentials of each identity once. An identity carrying this spec's
tags is managed; its ``secretsboot-ownership`` tag says whether secretsboot
created it (``--prune`` deletes it) or adopted it (``--prune`` removes the tags).
A federated credential named ``sb-...`` on a managed identity is secretsboot's.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from secretsboot.provision.azure.arm import Arm
from secretsboot.provision.desired import IdentityInfo
from secretsboot.provision.model import (
    AZURE_MANAGED_BY_TAG,
    AZURE_OWNERSHIP_TAG,
    AZURE_SPEC_TAG,
    MANAGED_BY_VALUE,
    Change,
    Desired,
    Observed,
    Ownership,
    ResourceKey,
    System,
)
from secretsboot.provision.ownership import known, released_tags


class Identities:
    def __init__(self, arm: Arm) -> None:
        self.arm = arm

    # -- reads -----------------------------------------------------------------------

    def observe(self, desired: list[Desired], out: dict[ResourceKey, Observed]) -> None:
        """GET .../resourceGroups/{rg}/providers/Microsoft.ManagedIdentity/
        userAssignedIdentities, then each identity's federated credentials."""
        arm, index = self.arm, self.arm.index
        rg = arm.rg
        spec_name = arm.spec.metadata.name
        items = arm.call(
            f"list managed identities of resource group '{rg}'",
            "managed-identity",
            "read",
            lambda: list(arm.msi.user_assigned_identities.list_by_resource_group(rg)),
        )
        wanted = {d.extra["identity"] for d in desired if d.key.kind == "managed-identity"}
        for item in items:
            tags = dict(item.tags or {})
            managed = (
                tags.get(AZURE_MANAGED_BY_TAG) == MANAGED_BY_VALUE
                and tags.get(AZURE_SPEC_TAG) == spec_name
            )
            if not managed and item.name not in wanted:
                continue
            info = IdentityInfo(str(item.client_id), str(item.principal_id), str(item.id))
            index.remember(item.name, info)
            owner = known(tags.get(AZURE_OWNERSHIP_TAG)) if managed else None
            if managed:
                index.managed.add(item.name)
                if owner is Ownership.CREATED:
                    index.created.add(item.name)
            key = ResourceKey(System.AZURE, "managed-identity", f"{rg}/{item.name}")
            out[key] = Observed(
                key,
                {"location": item.location, "tags": tags},
                managed=managed,
                raw=info,
                ownership=owner,
            )
        self._observe_fics(rg, out)

    def _observe_fics(self, rg: str, out: dict[ResourceKey, Observed]) -> None:
        """GET .../userAssignedIdentities/{name}/federatedIdentityCredentials, per identity."""
        arm, index = self.arm, self.arm.index
        names = sorted(index.infos)

        def one(name: str) -> list[Any]:
            return arm.call(
                f"list federated credentials of identity '{name}'",
                "federated-credential",
                "read",
                lambda: list(arm.msi.federated_identity_credentials.list(rg, name)),
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, names))
        for name, fics in zip(names, results, strict=True):
            for fic in fics:
                key = ResourceKey(System.AZURE, "federated-credential", f"{name}/{fic.name}")
                mine = name in index.managed and str(fic.name).startswith("sb-")
                out[key] = Observed(
                    key,
                    {
                        "issuer": fic.issuer,
                        "subject": fic.subject,
                        "audiences": list(fic.audiences or []),
                    },
                    managed=mine,
                    raw={"identity": name, "fic": fic.name},
                    ownership=Ownership.CREATED if mine else None,
                )

    # -- writes ----------------------------------------------------------------------

    def put_identity(self, want: Desired, what: str, tags: dict[str, str]) -> None:
        """PUT .../Microsoft.ManagedIdentity/userAssignedIdentities/{name} (create or update).

        PUT replaces the tags: ``tags`` are the ones other tools set, kept."""
        from azure.mgmt.msi.models import Identity

        arm = self.arm
        name = want.extra["identity"]
        rg = want.extra["resource_group"]
        got = arm.call(
            what,
            "managed-identity",
            "write",
            lambda: arm.msi.user_assigned_identities.create_or_update(
                rg,
                name,
                Identity(location=want.body["location"], tags={**tags, **want.body["tags"]}),
            ),
        )
        info = IdentityInfo(str(got.client_id), str(got.principal_id), str(got.id))
        with arm.lock:
            arm.index.remember(name, info)

    def put_fic(self, want: Desired, what: str) -> None:
        """PUT .../userAssignedIdentities/{name}/federatedIdentityCredentials/{fic}."""
        from azure.mgmt.msi.models import FederatedIdentityCredential

        arm = self.arm
        arm.call(
            what,
            "federated-credential",
            "write",
            lambda: arm.msi.federated_identity_credentials.create_or_update(
                want.extra["resource_group"],
                want.extra["identity"],
                want.extra["fic"],
                FederatedIdentityCredential(
                    issuer=want.body["issuer"],
                    subject=want.body["subject"],
                    audiences=list(want.body["audiences"]),
                ),
            ),
        )

    def release_identity(self, change: Change, what: str) -> None:
        """PUT the identity back with this spec's tags removed (it stays, with its grants)."""
        from azure.mgmt.msi.models import Identity

        have = change.observed
        assert have is not None  # noqa: S101
        rg, _, name = change.key.name.partition("/")
        tags = released_tags(have.body.get("tags") or {})
        location = str(have.body.get("location") or "")
        self.arm.call(
            what,
            "managed-identity",
            "write",
            lambda: self.arm.msi.user_assigned_identities.create_or_update(
                rg, name, Identity(location=location, tags=tags)
            ),
        )

    def delete_identity(self, change: Change, what: str) -> None:
        rg, _, name = change.key.name.partition("/")
        self.arm.call(
            what,
            "managed-identity",
            "delete",
            lambda: self.arm.msi.user_assigned_identities.delete(rg, name),
        )

    def delete_fic(self, change: Change, what: str) -> None:
        assert change.observed is not None  # noqa: S101
        raw = change.observed.raw
        self.arm.call(
            what,
            "federated-credential",
            "delete",
            lambda: self.arm.msi.federated_identity_credentials.delete(
                self.arm.rg, raw["identity"], raw["fic"]
            ),
        )
