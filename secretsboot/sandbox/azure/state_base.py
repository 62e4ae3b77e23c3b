"""The core of :class:`~.state.AzureState`: its tenant, subscription, lock and resource groups."""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

from secretsboot.sandbox.azure.models import (
    BUILTIN_ROLES,
    ArmDenial,
    DeletedVault,
    Identity,
    PodBinding,
    RoleAssignment,
    RoleDefinition,
    ServicePrincipal,
    Vault,
)


class StateBase:
    """The plain-dict state every service module reads and writes, under one lock."""

    def __init__(self, tenant_id: str | None = None, subscription_id: str | None = None) -> None:
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.subscription_id = subscription_id or str(uuid.uuid4())
        self.lock = threading.RLock()
        self.resource_groups: dict[str, str] = {}  # lower -> spelling
        self.identities: dict[str, Identity] = {}  # lower-case ARM id -> identity
        self.service_principals: dict[str, ServicePrincipal] = {}  # client id -> sp
        self.role_definitions: dict[str, RoleDefinition] = dict(BUILTIN_ROLES)
        self.role_assignments: dict[str, RoleAssignment] = {}  # lower-case id -> assignment
        self.vaults: dict[str, Vault] = {}  # lower-case name -> vault
        self.deleted_vaults: dict[str, DeletedVault] = {}  # lower-case name -> soft-deleted
        self.pod_bindings: list[PodBinding] = []
        self.imds_caller: str | None = None  # the aadpodidbinding selector of "the" caller
        self.arm_denials: list[ArmDenial] = []
        # principals ARM judges by their role assignments (everyone else acts as an Owner)
        self.arm_rbac_callers: set[str] = set()
        # Entra and Key Vault see a new FIC, role assignment or access policy only some time
        # after ARM accepted it (real propagation takes seconds to minutes); ARM reads see it
        # at once. A write over ARM waits a random delay in ``propagation_range``; every
        # write (seeding helpers included) waits at least ``propagation_delay_s``.
        self.propagation_delay_s = 0.0
        self.propagation_range: tuple[float, float] = (0.0, 0.0)
        self._rng = random.Random()  # noqa: S311 - delays, not secrets
        # ARM refuses overlapping FIC writes on one identity; a write lasts this long
        self.fic_write_latency_s = 0.0
        self._fic_writes: set[str] = set()
        # seals Key Vault backup blobs: they restore only within this subscription
        self.backup_key = os.urandom(32)

    def effective_from(self, *, propagate: bool) -> float:
        """The ``time.monotonic()`` from which a grant written now takes effect."""
        with self.lock:
            delay = self.propagation_delay_s
            low, high = self.propagation_range
            if propagate and high > 0:
                delay = max(delay, self._rng.uniform(low, high))
        return time.monotonic() + delay

    # ---- resource groups -------------------------------------------------------

    def ensure_resource_group(self, name: str) -> str:
        with self.lock:
            return self.resource_groups.setdefault(name.lower(), name)

    def has_resource_group(self, name: str) -> bool:
        with self.lock:
            return name.lower() in self.resource_groups

    def _rg_id(self, rg: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}"
