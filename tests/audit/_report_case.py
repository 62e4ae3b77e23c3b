"""The golden scenario as an AuditResult: manifests -> detectors -> governance.

Approaches are given here (not classified) so the goldens depend only on the
detectors, governance and formatters.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from _audit_case import manifests, workloads

from secretsboot.audit.findings import run_detectors
from secretsboot.audit.model import Approach, AuditResult, Coverage, Evidence, LoadError
from secretsboot.audit.policy import govern, load_policy, load_suppressions

GOLDEN = Path(__file__).parent / "golden"
TODAY = dt.date(2026, 6, 1)
VERSION = "0.0.0-golden"

APPROACHES = {
    "orders": [("workload-identity", "workload-identity"), ("keyvault-csi", "workload-identity")],
    "billing": [("k8s-secret-env", ""), ("literal-credential", "")],
    "delivery": [("aad-pod-identity", ""), ("keyvault-flexvolume", "pod-identity")],
}


def scenario(text: str | None = None, file: str = "k8s/shop.yaml") -> AuditResult:
    text = text if text is not None else (GOLDEN / "scenario.yaml").read_text()
    items = manifests(text, file=file)
    wls = workloads(items)
    for w in wls:
        ev = (Evidence(object=w.ref, path="spec.template.spec", file=w.file, line=w.line),)
        w.approaches = [Approach(a, ev, mode) for a, mode in APPROACHES.get(w.name, [])]
    policy = dataclasses.replace(load_policy(GOLDEN / "policy.yaml"), file="policy.yaml")
    sups = [
        dataclasses.replace(s, file="suppressions.yaml")
        for s in load_suppressions(GOLDEN / "suppressions.yaml")
    ]
    findings = run_detectors(items, wls, trusted_registries=policy.trusted_registries)
    result = AuditResult(
        workloads=wls,
        findings=findings,
        errors=[LoadError("k8s/broken.yaml", 1, 7, "unrendered Helm template: render it first")],
        coverage=Coverage(
            files=2,
            documents=len(items) + 2,
            objects=len(items),
            workloads=len(wls),
            skipped={"not an object (a scalar)": 1},
        ),
        tool_version=VERSION,
    )
    baseline = frozenset(
        f.fingerprint for f in findings if f.rule_id == "SB503" and "billing" in f.workload
    )
    return govern(result, policy=policy, suppressions=sups, baseline=baseline, today=TODAY)
