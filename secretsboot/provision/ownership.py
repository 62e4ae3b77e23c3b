"""Ownership records: what secretsboot created and what it adopted, kept on the objects.

A plan marks each desired object with its ownership (:func:`stamp`): ``created`` when
secretsboot makes it (or made it before), ``adopted`` when it already existed without
secretsboot's record. The record lives where each system allows it:

- Kubernetes: the annotation ``secretsboot.dev/ownership``
- Azure managed identities: the tag ``secretsboot-ownership`` (role assignments,
  federated credentials and access policies are recognised by their deterministic
  names and their identity: secretsboot only ever creates them)
- Vault: the marker line of the service's policy, which records the policy's and the
  role's ownership (Vault roles carry no metadata)

``--prune`` deletes what secretsboot created and releases what it adopted.

>>> policy_marker("dd", "orders", "created", "adopted")
'# managed-by: secretsboot; spec: dd; service: orders; ownership: created; role-ownership: adopted'
>>> parse_policy_marker(policy_marker("dd", "orders", "created", "adopted") + "\\npath ...")
{'spec': 'dd', 'service': 'orders', 'ownership': 'created', 'role-ownership': 'adopted'}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from secretsboot.provision.model import (
    AZURE_MANAGED_BY_TAG,
    AZURE_OWNERSHIP_TAG,
    AZURE_SPEC_TAG,
    MANAGED_BY_LABEL,
    OWNERSHIP_ANNOTATION,
    SERVICE_LABEL,
    SPEC_LABEL,
    Desired,
    Observed,
    Ownership,
    ResourceKey,
    System,
    ownership_of,
)

_MARKER_HEAD = "# managed-by: secretsboot;"

#: Kubernetes marks removed when an adopted object is released (None deletes in a merge patch).
KUBE_MARKS = {
    "labels": (MANAGED_BY_LABEL, SPEC_LABEL, SERVICE_LABEL),
    "annotations": (OWNERSHIP_ANNOTATION, "secretsboot.dev/placeholder"),
}
AZURE_MARKS = (AZURE_MANAGED_BY_TAG, AZURE_SPEC_TAG, AZURE_OWNERSHIP_TAG)


def policy_marker(spec: str, service: str, ownership: str, role_ownership: str) -> str:
    """The first line of a service's Vault policy: whose it is and who made what."""
    return (
        f"{_MARKER_HEAD} spec: {spec}; service: {service}; ownership: {ownership}; "
        f"role-ownership: {role_ownership}"
    )


def parse_policy_marker(text: str) -> dict[str, str] | None:
    """The fields of a policy's marker line; None when the policy carries none."""
    first = text.split("\n", 1)[0].strip()
    if not first.startswith(_MARKER_HEAD):
        return None
    out: dict[str, str] = {}
    for part in first[len(_MARKER_HEAD) :].split(";"):
        name, sep, value = part.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def without_marker(text: str) -> str:
    """A policy's text with secretsboot's marker line removed (releasing it)."""
    if parse_policy_marker(text) is None:
        return text
    return text.split("\n", 1)[1] if "\n" in text else ""


def known(value: str | None) -> Ownership | None:
    """``created``/``adopted`` from a record; None for anything else (no record)."""
    try:
        return Ownership(value) if value else None
    except ValueError:
        return None


def stamp(objects: Iterable[Desired], observed: Mapping[ResourceKey, Observed]) -> None:
    """Write each desired object's ownership into the fields that record it."""
    for d in objects:
        owner = ownership_of(observed.get(d.key)).value
        if d.system == System.KUBERNETES and d.key.kind != "Namespace":
            meta = d.body.setdefault("metadata", {})
            meta.setdefault("annotations", {})[OWNERSHIP_ANNOTATION] = owner
        elif d.system == System.AZURE and d.key.kind == "managed-identity":
            d.body.setdefault("tags", {})[AZURE_OWNERSHIP_TAG] = owner
        elif d.system == System.VAULT and d.key.kind == "policy":
            role_key = d.extra.get("role_key")
            role_owner = ownership_of(observed.get(role_key) if role_key else None).value
            text = str(d.body["policy"])
            body = text.split("\n", 1)[1] if "\n" in text else ""
            marker = policy_marker(d.extra["spec"], d.extra["service"], owner, role_owner)
            d.body["policy"] = marker + "\n" + body


def released_tags(tags: Mapping[str, Any]) -> dict[str, Any]:
    """An Azure resource's tags without secretsboot's."""
    return {k: v for k, v in tags.items() if k not in AZURE_MARKS}
