"""Label and field selectors, parsed as the API server parses them.

>>> sel = parse_label_selector("app=web,tier in (front, back),!legacy")
>>> sel.matches({"app": "web", "tier": "front"})
True
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsboot.sandbox.kube.resources import bad_request

_KEY = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_./]*)?[A-Za-z0-9]$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        # "!=" and "notin" match objects without the key too
        return not present or value not in self.values


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


def _split_top(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts if p.strip()]


def _check_key(key: str, selector: str) -> str:
    if not _KEY.match(key):
        raise bad_request(f'unable to parse requirement: invalid label key "{key}" in "{selector}"')
    return key


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` (400 BadRequest when malformed)."""
    reqs: list[Requirement] = []
    for part in _split_top(text or ""):
        m = re.match(r"^(\S+)\s+(in|notin)\s*\((.*)\)$", part)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            reqs.append(Requirement(_check_key(m.group(1), text or ""), m.group(2), values))
            continue
        m = re.match(r"^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$", part)
        if m:
            op = "!=" if m.group(2) == "!=" else "="
            reqs.append(
                Requirement(_check_key(m.group(1), text or ""), op, frozenset({m.group(3)}))
            )
            continue
        if part.startswith("!"):
            reqs.append(Requirement(_check_key(part[1:].strip(), text or ""), "!"))
            continue
        reqs.append(Requirement(_check_key(part, text or ""), "exists"))
    return LabelSelector(tuple(reqs))


_FIELDS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "metadata.name": lambda o: o.get("metadata", {}).get("name"),
    "metadata.namespace": lambda o: o.get("metadata", {}).get("namespace"),
}
_KIND_FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], Any]]] = {
    "secrets": {"type": lambda o: o.get("type")},
    "pods": {
        "status.phase": lambda o: o.get("status", {}).get("phase"),
        "spec.nodeName": lambda o: o.get("spec", {}).get("nodeName"),
        "spec.serviceAccountName": lambda o: o.get("spec", {}).get("serviceAccountName"),
    },
}


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[Callable[[dict[str, Any]], Any], bool, str], ...]

    def matches(self, obj: dict[str, Any]) -> bool:
        return all((str(get(obj) or "") == value) == eq for get, eq, value in self.terms)


def parse_field_selector(text: str | None, plural: str) -> FieldSelector:
    """Parse ``metadata.name=x,metadata.namespace!=y`` (and a few per-kind fields)."""
    terms = []
    fields = {**_FIELDS, **_KIND_FIELDS.get(plural, {})}
    for part in _split_top(text or ""):
        m = re.match(r"^([^=!]+)(==|=|!=)(.*)$", part)
        if not m:
            raise bad_request(f'invalid field selector: "{part}"')
        name = m.group(1).strip()
        if name not in fields:
            raise bad_request(f"field label not supported: {name}")
        terms.append((fields[name], m.group(2) != "!=", m.group(3).strip()))
    return FieldSelector(tuple(terms))
