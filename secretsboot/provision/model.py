"""Resource keys, desired and observed objects, changes and the plan.

Every object secretsboot manages, in any system, is a :class:`Desired` with a
:class:`ResourceKey` and a ``body``: a nested dict holding only the fields we
manage. A backend reads what exists into :class:`Observed` objects; :func:`diff`
compares the two field by field (fields we do not manage are ignored), so a
re-run with nothing to do is all ``no-op`` and writes nothing.

>>> key = ResourceKey("kubernetes", "ServiceAccount", "shop/orders")
>>> want = Desired(key, {"metadata": {"annotations": {"a": "1"}}}, services=("orders",), rank=1)
>>> have = Observed(key, {"metadata": {"annotations": {"a": "2"}}}, managed=True)
>>> change = diff_one(want, have)
>>> change.action.value, [str(d) for d in change.diffs]
('update', ['metadata.annotations.a: "2" -> "1"'])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from secretsboot.secret import SecretValue

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "secretsboot"
SPEC_LABEL = "secretsboot.dev/spec"
SERVICE_LABEL = "secretsboot.dev/service"
OWNERSHIP_ANNOTATION = "secretsboot.dev/ownership"
# Azure tag names may not contain '/', so the Azure tags spell the same facts differently.
AZURE_MANAGED_BY_TAG = "managed-by"
AZURE_SPEC_TAG = "secretsboot-spec"
AZURE_OWNERSHIP_TAG = "secretsboot-ownership"

KNOWN_AFTER_APPLY = "(known after apply)"
"""A value that depends on an object not created yet (an identity's client id)."""

ANY_VALUE = "(any value)"
"""A desired leaf that any existing value satisfies (a fallback Secret's key we do not sync)."""


class System(StrEnum):
    AZURE = "azure"
    KUBERNETES = "kubernetes"
    VAULT = "vault"


SYSTEM_ORDER = (System.AZURE, System.KUBERNETES, System.VAULT)


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    NOOP = "no-op"
    DELETE = "delete"
    RELEASE = "release"
    """Stop managing an object secretsboot adopted: remove its marks, keep the object."""


class Ownership(StrEnum):
    """Who made an object secretsboot manages, recorded on the object itself.

    ``created``: secretsboot made it, ``--prune`` deletes it. ``adopted``: it existed
    and secretsboot started managing it; ``--prune`` releases it (removes secretsboot's
    labels, annotations or tags) and never deletes it.
    """

    CREATED = "created"
    ADOPTED = "adopted"


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identifies one object: system, kind and a readable name unique within the kind."""

    system: str
    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.system}:{self.kind}/{self.name}"


@dataclass
class Desired:
    """One object as the spec wants it.

    ``body`` holds the managed fields (compared); ``extra`` holds what apply needs but
    a diff must not compare (a role assignment's GUID, resource ids); ``secrets`` holds
    values to write, shown only by fingerprint.
    """

    key: ResourceKey
    body: dict[str, Any]
    services: tuple[str, ...] = ()
    rank: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, SecretValue] = field(default_factory=dict)

    @property
    def system(self) -> str:
        return self.key.system


@dataclass
class Observed:
    """One object as it exists; ``raw`` is the backend's own representation.

    ``managed``: it carries this spec's marks; ``ownership``: what the marks say about
    who made it (None when they do not say: treated as adopted, never deleted).
    """

    key: ResourceKey
    body: dict[str, Any]
    managed: bool = False
    services: tuple[str, ...] = ()
    raw: Any = None
    ownership: Ownership | None = None


@dataclass(frozen=True)
class FieldDiff:
    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        if self.before is None:
            return f"{self.path}: {_show(self.after)}"
        if self.after is None:
            return f"{self.path}: {_show(self.before)} -> (removed)"
        return f"{self.path}: {_show(self.before)} -> {_show(self.after)}"

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "before": self.before, "after": self.after}


@dataclass
class Change:
    key: ResourceKey
    action: Action
    diffs: list[FieldDiff] = field(default_factory=list)
    services: tuple[str, ...] = ()
    desired: Desired | None = None
    observed: Observed | None = None

    ownership: Ownership | None = None

    @property
    def rank(self) -> int:
        if self.desired is not None:
            return self.desired.rank
        return 0

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.key.system,
            "kind": self.key.kind,
            "name": self.key.name,
            "action": self.action.value,
            "ownership": self.ownership.value if self.ownership else None,
            "services": list(self.services),
            "diffs": [d.to_json() for d in self.diffs],
        }


@dataclass(frozen=True)
class Note:
    """A warning or hint attached to a service (deprecated approach, manual step).

    ``level`` "error" notes are failed checks: ``plan`` exits non-zero and ``provision``
    writes nothing; ``kind`` then names the error class ("not-found", "bad-input",
    "unavailable", "denied").
    """

    service: str
    level: str  # "error" | "action" | "warning" | "info"
    message: str
    detail: str = ""
    kind: str = "bad-input"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "level": self.level,
            "message": self.message,
            "detail": self.detail,
        }


@dataclass
class Plan:
    changes: list[Change]
    notes: list[Note] = field(default_factory=list)
    unmanaged_extra: int = 0  # managed objects no longer in the spec, kept without --prune

    @property
    def pending(self) -> list[Change]:
        return [c for c in self.changes if c.action is not Action.NOOP]

    @property
    def has_changes(self) -> bool:
        return bool(self.pending)

    @property
    def errors(self) -> list[Note]:
        """Failed checks (a missing reference, a limit): nothing may be written."""
        return [n for n in self.notes if n.level == "error"]

    def counts(self) -> dict[str, int]:
        """How many changes of each action (keys are :class:`Action` values)."""
        out = {a.value: 0 for a in Action}
        for c in self.changes:
            out[c.action.value] += 1
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "summary": self.counts(),
            "notes": [n.to_json() for n in self.notes],
            "managedNotInSpec": self.unmanaged_extra,
        }


def _show(value: Any) -> str:
    if isinstance(value, str):
        if value in (KNOWN_AFTER_APPLY, ANY_VALUE):
            return value
        return json.dumps(value)
    return json.dumps(value, sort_keys=True, default=str)


_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def join_path(parent: str, key: str) -> str:
    """``metadata.labels["app.kubernetes.io/name"]``: plain keys dotted, others bracketed."""
    part = f".{key}" if _PLAIN_KEY.match(key) else f"[{json.dumps(key)}]"
    if not parent:
        return part.lstrip(".")
    return parent + part


def field_diffs(
    want: Mapping[str, Any], have: Mapping[str, Any] | None, path: str = ""
) -> list[FieldDiff]:
    """Differences of the fields in ``want``; fields only in ``have`` are ignored."""
    out: list[FieldDiff] = []
    for key in want:
        sub = join_path(path, key)
        w = want[key]
        h = have.get(key) if isinstance(have, Mapping) else None
        if isinstance(w, Mapping):
            out.extend(field_diffs(w, h if isinstance(h, Mapping) else None, sub))
        elif w == ANY_VALUE:
            if h is None:
                out.append(FieldDiff(sub, None, w))
        elif not _same(w, h):
            out.append(FieldDiff(sub, h, w))
    return out


def _same(want: Any, have: Any) -> bool:
    if want == have:
        return True
    # Vault and ARM echo lists in their own order; compare sets of scalars.
    if isinstance(want, list) and isinstance(have, list):
        try:
            return sorted(want) == sorted(have)
        except TypeError:
            return False
    return False


def ownership_of(have: Observed | None) -> Ownership:
    """Who owns an object the spec wants: secretsboot when it makes it now or made it
    before (its record says so); otherwise the object is adopted."""
    if have is None:
        return Ownership.CREATED
    if have.managed and have.ownership is not None:
        return have.ownership
    return Ownership.ADOPTED


def diff_one(want: Desired, have: Observed | None) -> Change:
    owner = ownership_of(have)
    if have is None:
        return Change(
            want.key, Action.CREATE, field_diffs(want.body, None), want.services, want, None, owner
        )
    diffs = field_diffs(want.body, have.body)
    action = Action.UPDATE if diffs else Action.NOOP
    return Change(want.key, action, diffs, want.services, want, have, owner)


def diff(
    desired: Iterable[Desired],
    observed: Mapping[ResourceKey, Observed],
    *,
    prune: bool,
    prune_filter: Any = None,
) -> tuple[list[Change], int]:
    """Changes turning ``observed`` into ``desired``; with prune, managed objects no longer
    in the spec are deleted when secretsboot created them and released when it adopted them.

    ``prune_filter`` limits the managed objects in scope (``--only``). Returns the changes
    and the number of managed objects in scope but not in the spec, kept because ``prune``
    is off.
    """
    changes: list[Change] = []
    seen: set[ResourceKey] = set()
    for want in desired:
        seen.add(want.key)
        changes.append(diff_one(want, observed.get(want.key)))
    kept = 0
    for key, have in observed.items():
        if key in seen or not have.managed:
            continue
        if prune_filter is not None and not prune_filter(have):
            continue  # out of scope (another service, with --only)
        if prune:
            created = have.ownership is Ownership.CREATED
            changes.append(
                Change(
                    key,
                    Action.DELETE if created else Action.RELEASE,
                    [FieldDiff("(object)", "exists", None)]
                    if created
                    else [FieldDiff("(secretsboot marks)", "present", None)],
                    have.services,
                    None,
                    have,
                    have.ownership or Ownership.ADOPTED,
                )
            )
        else:
            kept += 1
    changes.sort(key=lambda c: (SYSTEM_ORDER.index(System(c.key.system)), c.rank, c.key))
    return changes, kept
