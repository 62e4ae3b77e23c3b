"""The audit's detectors: one small module per family, each documenting its rule ids.

Registered explicitly in :data:`FAMILIES` (no import-time discovery). Rule ids are
stable; :data:`RULES` holds their metadata for the reports (SARIF ``rules``)::

    SB1xx secrets in the wrong place   env_secrets, literal_credentials, committed_secrets,
                                       duplicate_keys
    SB2xx identity and secret zero     secret_zero, deprecated, workload_identity, injectors
    SB3xx ServiceAccounts and tokens   service_accounts
    SB4xx RBAC                         rbac
    SB5xx pod security and images      pod_security, images
    SB9xx governance                   governance (raised by secretsboot.audit.policy)

>>> sorted(RULES)[:3]
['SB101', 'SB102', 'SB103']
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType
from typing import Any

from secretsboot.audit.findings import (
    committed_secrets,
    deprecated,
    duplicate_keys,
    env_secrets,
    governance,
    images,
    injectors,
    literal_credentials,
    pod_security,
    rbac,
    secret_zero,
    service_accounts,
    workload_identity,
)
from secretsboot.audit.findings._base import Context, PodFacts, Rule, build_context
from secretsboot.audit.findings._suppress import Inlines, apply_inline
from secretsboot.audit.model import Finding, Manifest, Workload
from secretsboot.audit.resolve import Index

__all__ = [
    "FAMILIES",
    "RULES",
    "Rule",
    "build_context",
    "run_detectors",
    "sort_findings",
]

FAMILIES: tuple[ModuleType, ...] = (
    env_secrets,
    literal_credentials,
    committed_secrets,
    duplicate_keys,
    secret_zero,
    deprecated,
    workload_identity,
    injectors,
    service_accounts,
    rbac,
    pod_security,
    images,
)

RULES: dict[str, Rule] = {
    rule.id: rule for module in (*FAMILIES, governance) for rule in module.RULES
}


def _manifests(index: Any) -> list[Manifest]:
    """Every object the index holds, whatever its container shape."""
    for attr in ("manifests", "objects"):
        held = getattr(index, attr, None)
        if held is not None:
            index = held() if callable(held) else held
            break
    if isinstance(index, dict):
        index = index.values()
    return [m for m in index if isinstance(m, Manifest)]


def sort_findings(findings: Iterable[Finding]) -> list[Finding]:
    """Deterministic order: file, line, rule, object, path."""
    return sorted(findings, key=Finding.sort_key)


def run_detectors(
    index: Any,
    workloads: Iterable[Workload],
    *,
    trusted_registries: Iterable[str] | None = None,
    disabled: Iterable[str] = (),
    reported: list[Manifest] | None = None,
    facts: PodFacts | None = None,
    inlines: Inlines | None = None,
) -> list[Finding]:
    """Run every detector family; findings sorted, one per fingerprint, workload and file.

    ``index`` is the resolver's :class:`~secretsboot.audit.resolve.Index` (or any
    iterable of :class:`Manifest`); ``trusted_registries`` turns on SB507 (default:
    the index's own ``trusted_registries``, else none: SB507 off); ``disabled`` rule
    ids are not reported. Inline ``secretsboot.dev/suppress`` annotations are applied
    here (findings come back ``suppressed``, kind ``inSource``), unreadable ones
    reported as SB903.

    One shard of a large audit (:mod:`secretsboot.audit._sharded`) reports on
    ``reported`` (its files' objects) and looks up in ``index`` (every supporting
    object of the input), with ``facts`` and ``inlines`` gathered over the whole input.

    >>> from secretsboot.audit.resolve import Index
    >>> run_detectors(Index([]), [])
    []
    """
    if trusted_registries is None:
        trusted_registries = getattr(index, "trusted_registries", ())
    if reported is None:  # a whole audit: it reports on what it looks up
        source: list[Manifest] | Index = index if isinstance(index, Index) else _manifests(index)
    else:
        source = reported
    ctx: Context = build_context(
        source,
        workloads,
        trusted_registries=trusted_registries or (),
        lookup=index if reported is not None else None,
        facts=facts,
        inlines=inlines,
    )
    off = set(disabled)
    # one finding per fingerprint (its parts), workload and file: the same object may be
    # written in two files (overlays, variants), and both count. Keyed by the hash of
    # those parts (an int, not a tuple per finding: 350,000 findings at 100k workloads),
    # the parts compared on a shared hash
    seen: dict[int, Finding | list[Finding]] = {}
    out: list[Finding] = []
    for module in FAMILIES:
        for finding in module.detect(ctx):
            if finding.rule_id in off:
                continue
            key = _dedup_key(finding)
            h = hash(key)
            held = seen.get(h)
            if held is None:
                seen[h] = finding
            else:
                group = held if isinstance(held, list) else [held]
                if any(_dedup_key(f) == key for f in group):
                    continue
                group.append(finding)
                seen[h] = group
            out.append(finding)
    del seen
    unreadable = apply_inline(ctx, out)
    del ctx
    out += [f for f in unreadable if f.rule_id not in off]
    out.sort(key=Finding.sort_key)
    return out


def _dedup_key(f: Finding) -> tuple[str, str, str, str, str, str, int]:
    e = f.evidence
    return (f.rule_id, e.object, e.path, e.detail, f.workload_id, e.file, e.doc)


def attach(workloads: Iterable[Workload], findings: Iterable[Finding]) -> None:
    """Give each workload its own findings (``Workload.findings``), replacing what it held:
    matched by identity (file, document, Kind/namespace/name), never by name alone."""
    by_uid: dict[str, list[Finding]] = {}
    for f in findings:
        if f.workload_id:
            by_uid.setdefault(f.workload_id, []).append(f)
    for w in workloads:
        w.findings = by_uid.get(w.uid, [])
