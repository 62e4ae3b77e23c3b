"""A tiny stand-in for the loader + classifier, so detector tests start from YAML text.

``case(yaml_text)`` -> (manifests, workloads). Workloads carry no approaches
(the detectors read the pod spec themselves); lines come from secretsboot._yaml.
"""

from __future__ import annotations

import textwrap

from secretsboot._yaml import load_all_with_lines
from secretsboot.audit.findings import run_detectors
from secretsboot.audit.findings._base import pod_paths
from secretsboot.audit.model import Finding, Manifest, Workload
from secretsboot.audit.resolve import WORKLOAD_KINDS


def manifests(text: str, file: str = "app.yaml") -> list[Manifest]:
    out = []
    for i, (body, lines) in enumerate(load_all_with_lines(textwrap.dedent(text))):
        if isinstance(body, dict):
            out.append(Manifest(file, i, lines.get(("kind",), 1), body, lines))
    return out


def workloads(items: list[Manifest]) -> list[Workload]:
    out = []
    for m in items:
        if m.kind not in WORKLOAD_KINDS:
            continue
        spec_path, _ = pod_paths(m.kind)
        spec: object = m.body
        for part in spec_path:
            spec = spec.get(str(part), {}) if isinstance(spec, dict) else {}
        sa = spec.get("serviceAccountName") if isinstance(spec, dict) else None
        out.append(Workload(m.kind, m.namespace, m.name, m.file, m.line, str(sa or "default")))
    return out


def run(text: str, **kwargs: object) -> list[Finding]:
    items = manifests(text)
    return run_detectors(items, workloads(items), **kwargs)  # type: ignore[arg-type]


def rule_hits(text: str, rule_id: str, **kwargs: object) -> list[Finding]:
    return [f for f in run(text, **kwargs) if f.rule_id == rule_id]


def deployment(
    pod_spec: str, *, name: str = "api", namespace: str = "shop", labels: str = ""
) -> str:
    """A Deployment around an indented pod spec body (written at 6 spaces)."""
    label_block = (
        f"\n      labels:\n{textwrap.indent(textwrap.dedent(labels), ' ' * 8)}" if labels else ""
    )
    return (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
        f"  name: {name}\n  namespace: {namespace}\n"
        "spec:\n  template:\n    metadata:\n      annotations: {}"
        f"{label_block}\n"
        "    spec:\n" + textwrap.indent(textwrap.dedent(pod_spec), " " * 6)
    )
