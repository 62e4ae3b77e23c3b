"""Governance of an audit: a policy file, suppressions (inline and in a file), a baseline.

Policy file (YAML)::

    apiVersion: secretsboot/v1
    kind: AuditPolicy
    severityThreshold: high          # counted findings at or above fail the audit (exit 11)
    trustedRegistries: [mcr.microsoft.com, "*.azurecr.io"]   # turns on SB507
    disabledRules: [SB508]
    severityOverrides: {SB301: info}
    allowedApproaches:               # namespace glob -> approach ids; first match wins
      payments: [workload-identity, keyvault-csi]
      "team-*": [workload-identity, keyvault-csi, vault-agent-injector]
      "*": [workload-identity, keyvault-csi, vault-csi, vault-agent-injector, k8s-secret-volume]
    disallowedApproachSeverity: high # severity of SB901

A workload whose manifest names no namespace is matched as ``default``; a
namespace no pattern matches allows every approach.

Suppressions, inline: the annotation ``secretsboot.dev/suppress: "SB101,SB203: reason"``
on the object a finding points at, on the workload, or on its pod template
(``*`` stands for every rule; one clause per line), applied by the detectors
(:mod:`secretsboot.audit.findings._suppress`). In a file::

    apiVersion: secretsboot/v1
    kind: AuditSuppressions
    suppressions:
      - rule: SB101                  # or a list, or "*"
        object: "Deployment/shop/*"  # glob on the finding's object or workload
        reason: "migrating to the CSI driver, tracked in SHOP-42"
        expires: 2026-12-31          # from that day on it no longer applies (SB902, info)

A baseline (``write_baseline``) lists finding fingerprints: findings in it are
marked ``baseline=True``, reported and not counted. A malformed policy,
suppressions or baseline file raises :class:`PolicyFileError` (a
:class:`~secretsboot.errors.BadInputError`) naming the file, line, field and fix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsboot._fs import atomic_write_text
from secretsboot._yaml import YAMLError, load_with_lines
from secretsboot.audit.findings import RULES, attach, sort_findings
from secretsboot.audit.findings.governance import SB901, SB902
from secretsboot.audit.model import (
    AuditResult,
    Evidence,
    Finding,
    Severity,
    Workload,
)
from secretsboot.errors import SpecError

API_VERSION = "secretsboot/v1"
BASELINE_SCHEMA = "secretsboot.audit/baseline-v1"
_RULE_ID = re.compile(r"^SB\d{3}$")
_APPROACH_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


class PolicyFileError(SpecError):
    """A policy, suppressions or baseline file we cannot use: ``file:line field: why; fix``."""


# --- policy -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamespaceRule:
    pattern: str
    allowed: frozenset[str]
    line: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed ``AuditPolicy``; the default policy allows everything and changes nothing."""

    threshold: Severity | None = None
    trusted_registries: tuple[str, ...] = ()
    disabled_rules: frozenset[str] = frozenset()
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)
    allowed_approaches: tuple[NamespaceRule, ...] = ()
    disallowed_severity: Severity = SB901.severity
    file: str = ""

    def rule_for(self, namespace: str) -> NamespaceRule | None:
        """The first namespace rule matching (exact names before globs, then file order)."""
        ns = namespace or "default"
        for rule in self.allowed_approaches:
            if rule.pattern == ns:
                return rule
        for rule in self.allowed_approaches:
            if fnmatch.fnmatchcase(ns, rule.pattern):
                return rule
        return None


_POLICY_KEYS = {
    "apiVersion",
    "kind",
    "severityThreshold",
    "trustedRegistries",
    "disabledRules",
    "severityOverrides",
    "allowedApproaches",
    "disallowedApproachSeverity",
}


class _Reader:
    """Located reading of one YAML file: every complaint names file, line, field and fix."""

    def __init__(self, path: str | Path, kind: str) -> None:
        self.file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise PolicyFileError(
                f"cannot read the {kind} file ({exc.strerror or exc})",
                file=self.file,
                hint="check the path",
            ) from None
        try:
            data, self.lines = load_with_lines(text)
        except YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise PolicyFileError(
                f"not valid YAML: {getattr(exc, 'problem', None) or 'parse error'}",
                file=self.file,
                line=mark.line + 1 if mark is not None else None,
                hint="fix the YAML syntax",
            ) from None
        if not isinstance(data, dict):
            raise self.error(
                (), f"a {kind} file must be a YAML mapping", f"start with kind: {kind}"
            )
        self.data: dict[str, Any] = data
        self.kind = kind
        if data.get("apiVersion") != API_VERSION:
            raise self.error(
                ("apiVersion",),
                f"apiVersion is {data.get('apiVersion')!r}",
                f"set apiVersion: {API_VERSION}",
            )
        if data.get("kind") != kind:
            raise self.error(("kind",), f"kind is {data.get('kind')!r}", f"set kind: {kind}")

    def error(self, path: tuple[str | int, ...], message: str, hint: str) -> PolicyFileError:
        line = None
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                line = self.lines[path[:end]]
                break
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return PolicyFileError(message, file=self.file, line=line, field=where or None, hint=hint)

    def line(self, path: tuple[str | int, ...]) -> int:
        return self.lines.get(path, 0)

    def severity(self, path: tuple[str | int, ...], value: object) -> Severity:
        try:
            return Severity.parse(str(value))
        except ValueError:
            labels = ", ".join(s.label for s in Severity)
            raise self.error(path, f"unknown severity {value!r}", f"use one of {labels}") from None

    def strings(self, path: tuple[str | int, ...], value: object) -> list[str]:
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(path, "expected a list of strings", "write it as [a, b]")
        return list(value)

    def rule_ids(self, path: tuple[str | int, ...], value: object, *, star: bool) -> list[str]:
        ids = self.strings(path, value)
        for i, rid in enumerate(ids):
            if star and rid == "*":
                continue
            if not _RULE_ID.match(rid) or rid not in RULES:
                raise self.error(
                    (*path, i) if isinstance(value, list) else path,
                    f"unknown rule id {rid!r}",
                    f"use one of {', '.join(sorted(RULES))}",
                )
        return ids


def load_policy(path: str | Path) -> Policy:
    """Read and validate an ``AuditPolicy`` file.

    >>> load_policy("missing.yaml")
    Traceback (most recent call last):
    ...
    secretsboot.audit.policy.PolicyFileError: missing.yaml: cannot read the AuditPolicy file ...
    """
    r = _Reader(path, "AuditPolicy")
    d = r.data
    for key in d:
        if key not in _POLICY_KEYS:
            close = [k for k in sorted(_POLICY_KEYS) if k.lower() == str(key).lower()]
            raise r.error(
                (str(key),),
                f"unknown field {key!r}",
                f"did you mean {close[0]}?"
                if close
                else f"use one of {', '.join(sorted(_POLICY_KEYS))}",
            )
    threshold = (
        r.severity(("severityThreshold",), d["severityThreshold"])
        if d.get("severityThreshold") is not None
        else None
    )
    overrides_raw = d.get("severityOverrides") or {}
    if not isinstance(overrides_raw, dict):
        raise r.error(("severityOverrides",), "expected a mapping", "write it as {SB301: info}")
    overrides = {}
    for rid, sev in overrides_raw.items():
        r.rule_ids(("severityOverrides", str(rid)), str(rid), star=False)
        overrides[str(rid)] = r.severity(("severityOverrides", str(rid)), sev)
    allowed_raw = d.get("allowedApproaches") or {}
    if not isinstance(allowed_raw, dict):
        raise r.error(
            ("allowedApproaches",),
            "expected a mapping of namespace pattern to approach ids",
            'write it as {payments: [workload-identity, keyvault-csi], "*": [...]}',
        )
    rules = []
    for pattern, ids in allowed_raw.items():
        where = ("allowedApproaches", str(pattern))
        approaches = r.strings(where, ids)
        for i, a in enumerate(approaches):
            if not _APPROACH_ID.match(a):
                raise r.error(
                    (*where, i),
                    f"{a!r} is not an approach id",
                    "use ids such as workload-identity, keyvault-csi, k8s-secret-env",
                )
        rules.append(NamespaceRule(str(pattern), frozenset(approaches), r.line(where)))
    severity = d.get("disallowedApproachSeverity")
    return Policy(
        threshold=threshold,
        trusted_registries=tuple(
            r.strings(("trustedRegistries",), d.get("trustedRegistries") or [])
        ),
        disabled_rules=frozenset(
            r.rule_ids(("disabledRules",), d.get("disabledRules") or [], star=False)
        ),
        severity_overrides=overrides,
        allowed_approaches=tuple(rules),
        disallowed_severity=(
            r.severity(("disallowedApproachSeverity",), severity)
            if severity is not None
            else SB901.severity
        ),
        file=r.file,
    )


def approach_findings(workloads: Iterable[Workload], policy: Policy) -> list[Finding]:
    """SB901 for each approach a workload uses that its namespace's rule does not allow."""
    out = []
    for w in workloads:
        rule = policy.rule_for(w.namespace)
        if rule is None:
            continue
        for approach in w.approaches:
            if approach.id in rule.allowed:
                continue
            ev = approach.evidence[0] if approach.evidence else None
            out.append(
                SB901.finding(
                    evidence=Evidence(
                        object=ev.object if ev else w.ref,
                        path=ev.path if ev else "",
                        file=ev.file if ev else w.file,
                        line=ev.line if ev else w.line,
                        detail=approach.id,
                        doc=w.doc_index,
                    ),
                    message=(
                        f"uses {approach.id}, not allowed in namespace "
                        f"'{w.namespace or 'default'}' (policy rule '{rule.pattern}' allows "
                        f"{', '.join(sorted(rule.allowed)) or 'nothing'})"
                    ),
                    workload=w.ref,
                    workload_id=w.uid,
                    severity=policy.disallowed_severity,
                )
            )
    return out


# --- suppressions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Suppression:
    """One entry of a suppressions file."""

    rules: frozenset[str]  # rule ids, or {"*"}
    object: str  # glob on Finding.evidence.object or Finding.workload
    reason: str
    expires: dt.date | None = None
    file: str = ""
    line: int = 0
    index: int = 0

    def matches(self, f: Finding) -> bool:
        if "*" not in self.rules and f.rule_id not in self.rules:
            return False
        return any(
            ref and fnmatch.fnmatchcase(ref, self.object) for ref in (f.evidence.object, f.workload)
        )

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and today >= self.expires


def load_suppressions(path: str | Path) -> list[Suppression]:
    """Read and validate an ``AuditSuppressions`` file."""
    r = _Reader(path, "AuditSuppressions")
    for key in r.data:
        if key not in {"apiVersion", "kind", "suppressions"}:
            raise r.error((str(key),), f"unknown field {key!r}", "only suppressions: [...] is read")
    items = r.data.get("suppressions")
    if not isinstance(items, list):
        raise r.error(("suppressions",), "suppressions must be a list", "write suppressions: [...]")
    out = []
    for i, item in enumerate(items):
        where: tuple[str | int, ...] = ("suppressions", i)
        if not isinstance(item, dict):
            raise r.error(where, "each suppression is a mapping", "give rule, object, reason")
        for key in item:
            if key not in {"rule", "rules", "object", "reason", "expires"}:
                raise r.error(
                    (*where, str(key)),
                    f"unknown field {key!r}",
                    "use rule, object, reason, expires",
                )
        rules = r.rule_ids((*where, "rule"), item.get("rule", item.get("rules")), star=True)
        obj = item.get("object")
        if not isinstance(obj, str) or not obj.strip():
            raise r.error(
                (*where, "object"),
                "object is missing",
                'name the object or workload, e.g. "Deployment/shop/api" or "Deployment/shop/*"',
            )
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise r.error((*where, "reason"), "reason is missing", "say why this is acceptable")
        expires = _date(r, (*where, "expires"), item.get("expires"))
        out.append(
            Suppression(
                rules=frozenset(rules),
                object=obj.strip(),
                reason=reason.strip(),
                expires=expires,
                file=r.file,
                line=r.line(where),
                index=i,
            )
        )
    return out


def _date(r: _Reader, where: tuple[str | int, ...], value: object) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return dt.date.fromisoformat(value.strip())
    raise r.error(where, f"expires {value!r} is not a date", "use YYYY-MM-DD")


def expired_findings(suppressions: Iterable[Suppression], today: dt.date) -> list[Finding]:
    """SB902 (info) for each suppression past its expiry date."""
    out = []
    for s in suppressions:
        if s.expired(today):
            rules = ",".join(sorted(s.rules))
            out.append(
                SB902.finding(
                    evidence=Evidence(
                        object=f"AuditSuppressions/{Path(s.file).name}",
                        path=f"suppressions[{s.index}]",
                        file=s.file,
                        line=s.line,
                        detail=f"{rules} {s.object}",
                    ),
                    message=(
                        f"suppression of {rules} for '{s.object}' expired on "
                        f"{s.expires.isoformat() if s.expires else '?'} and no longer applies"
                    ),
                )
            )
    return out


# --- baseline -----------------------------------------------------------------------------------


def load_baseline(path: str | Path) -> frozenset[str]:
    """The fingerprints of a baseline written by :func:`write_baseline`."""
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyFileError(
            f"cannot read the baseline ({exc.strerror or exc})",
            file=file,
            hint="write one with `secretsboot audit --write-baseline FILE`",
        ) from None
    except ValueError as exc:
        raise PolicyFileError(
            f"the baseline is not JSON ({exc})",
            file=file,
            hint="regenerate it with `secretsboot audit --write-baseline FILE`",
        ) from None
    if not isinstance(data, dict) or data.get("schema") != BASELINE_SCHEMA:
        raise PolicyFileError(
            "not a secretsboot baseline",
            file=file,
            field="schema",
            hint=f'expected "schema": "{BASELINE_SCHEMA}"; regenerate it with --write-baseline',
        )
    items = data.get("findings")
    if not isinstance(items, list):
        raise PolicyFileError(
            "findings must be a list", file=file, field="findings", hint="regenerate the baseline"
        )
    out = set()
    for i, item in enumerate(items):
        fp = item.get("fingerprint") if isinstance(item, dict) else None
        if not isinstance(fp, str) or not re.fullmatch(r"[0-9a-f]{32}", fp):
            raise PolicyFileError(
                "a finding has no valid fingerprint (32 hex digits)",
                file=file,
                field=f"findings[{i}].fingerprint",
                hint="regenerate the baseline",
            )
        out.add(fp)
    return frozenset(out)


def baseline_document(result: AuditResult) -> dict[str, Any]:
    """What :func:`write_baseline` writes: every unsuppressed finding, sorted, no timestamps."""
    entries = {
        f.fingerprint: {
            "fingerprint": f.fingerprint,
            "rule_id": f.rule_id,
            "object": f.evidence.object,
            "path": f.evidence.path,
            "workload_id": f.workload_id or None,
        }
        for f in result.findings
        if not f.suppressed
    }
    return {
        "schema": BASELINE_SCHEMA,
        "tool_version": result.tool_version,
        "findings": [entries[k] for k in sorted(entries)],
    }


def baseline_text(result: AuditResult) -> str:
    """The baseline file's text (JSON, sorted, ending with a newline)."""
    return json.dumps(baseline_document(result), indent=2) + "\n"


def write_baseline(result: AuditResult, path: str | Path) -> int:
    """Write the baseline atomically (temp file + rename); returns how many findings it holds."""
    doc = baseline_document(result)
    text = baseline_text(result)
    atomic_write_text(path, text, what="baseline")
    return len(doc["findings"])


# --- putting it together ------------------------------------------------------------------------


def govern(
    result: AuditResult,
    *,
    policy: Policy | None = None,
    policy_path: str | Path | None = None,
    suppressions: Iterable[Suppression] = (),
    suppressions_path: str | Path | None = None,
    baseline: frozenset[str] = frozenset(),
    baseline_path: str | Path | None = None,
    threshold: Severity | None = None,
    today: dt.date | None = None,
) -> AuditResult:
    """Apply policy, file suppressions and baseline to ``result`` (in place) and return it.

    Each input comes as an object or as a path to read (``policy_path`` ...; a bad
    file raises :class:`PolicyFileError`). Order: SB901 for disallowed approaches;
    SB902 for expired suppressions; severity overrides; disabled rules dropped;
    unexpired file suppressions mark findings (``external``) that inline annotations
    (applied by the detectors, ``inSource``) left alone; the baseline marks what it
    holds; the threshold is ``threshold`` if given, else the policy's, else left as
    is. Workloads get their findings attached.

    The policy's ``trustedRegistries`` act on the detectors (SB507), which run
    before governance: pass ``load_policy(path).trusted_registries`` to
    :class:`~secretsboot.audit.resolve.Index` (or ``run_detectors``).
    """
    if policy is None:
        policy = load_policy(policy_path) if policy_path is not None else Policy()
    sups = list(suppressions)
    if suppressions_path is not None:
        sups += load_suppressions(suppressions_path)
    if baseline_path is not None:
        baseline = baseline | load_baseline(baseline_path)
    today = today or dt.date.today()

    active = [s for s in sups if not s.expired(today)]
    findings = judge(
        [*result.findings, *expired_findings(sups, today)],
        result.workloads,
        policy=policy,
        active=active,
        baseline=baseline,
    )
    result.findings = sort_findings(findings)
    result.threshold = effective_threshold(result.threshold, threshold, policy)
    attach(result.workloads, result.findings)
    return result


def effective_threshold(given: Severity, flag: Severity | None, policy: Policy) -> Severity:
    """The threshold a run counts against: the flag's, else the policy's, else ``given``."""
    if flag is not None:
        return flag
    return policy.threshold if policy.threshold is not None else given


def judge(
    findings: list[Finding],
    workloads: Iterable[Workload],
    *,
    policy: Policy,
    active: list[Suppression],
    baseline: frozenset[str],
) -> list[Finding]:
    """What governance does finding by finding (so one shard of an audit can do it for
    its own): SB901 for ``workloads``, severity overrides, disabled rules dropped,
    unexpired file suppressions (``active``) and the baseline marked."""
    if policy.allowed_approaches:
        findings = [*findings, *approach_findings(workloads, policy)]
    for f in findings:
        if f.rule_id in policy.severity_overrides:
            f.severity = policy.severity_overrides[f.rule_id]
    findings = [f for f in findings if f.rule_id not in policy.disabled_rules]
    for f in findings:
        if f.suppressed:
            continue
        for s in active:
            if s.matches(f):
                f.suppressed, f.suppression_reason, f.suppression_kind = True, s.reason, "external"
                break
    for f in findings:
        f.baseline = bool(baseline) and f.fingerprint in baseline
    return findings
