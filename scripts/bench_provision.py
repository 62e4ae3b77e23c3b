"""Benchmark ``provision`` on the in-process sandbox: 200 services, mixed approaches.

Measures the first apply (wall time, API calls per service from the fakes' call
logs plus the Vault backend's own count, since OpenBao keeps no log we can read),
then a second plan (wall time, writes). Targets: first apply <= 30 s, the
no-change plan <= 5 s with 0 writes, <= 12 API calls per service.

    .venv/bin/python scripts/bench_provision.py [--services 200] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from secretsboot.provision.apply import Options, Provisioner
from secretsboot.sandbox import Sandbox
from secretsboot.spec import load_spec

WRITES = {"PUT", "POST", "PATCH", "DELETE"}
PROVISIONER_ID = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
PROVISIONER_SECRET = "bench-provisioner-secret"  # a sandbox-only credential
RBAC_VAULTS = ["kvbench-a", "kvbench-b", "kvbench-c", "kvbench-d"]
LEGACY_VAULT = "kvbench-legacy"
NAMESPACES = ["team-a", "team-b", "team-c", "team-d", "team-e"]


def generate(sb: Any, n: int) -> dict[str, Any]:
    services = []
    for i in range(n):
        ns = NAMESPACES[i % len(NAMESPACES)]
        vault = RBAC_VAULTS[i % len(RBAC_VAULTS)]
        name = f"svc-{i:03d}"
        flavour = i % 10
        svc: dict[str, Any] = {"name": name, "namespace": ns}
        if flavour in (0, 1, 2, 3):  # workload identity -> Key Vault, init container
            svc["secrets"] = [
                {"name": "db", "from": f"keyvault://{vault}/{name}-db"},
                {"name": "api", "from": f"keyvault://{RBAC_VAULTS[0]}/{name}-api"},
            ]
        elif flavour == 4:  # workload identity + a Kubernetes Secret fallback
            svc["secrets"] = [
                {
                    "name": "db",
                    "from": f"keyvault://{vault}/{name}-db",
                    "fallback": [f"k8s://{name}-fallback#db"],
                }
            ]
        elif flavour in (5, 6):  # CSI driver
            svc["delivery"] = "csi"
            svc["secrets"] = [{"name": "db", "from": f"keyvault://{vault}/{name}-db"}]
        elif flavour == 7:  # Vault, kubernetes auth
            svc["identity"] = "none"
            svc["secrets"] = [{"name": "db", "from": f"vault://secret/bench/{name}#db"}]
        elif flavour == 8:  # Vault, jwt auth
            svc["identity"] = "none"
            svc["vaultAuth"] = "jwt"
            svc["secrets"] = [{"name": "db", "from": f"vault://secret/bench/{name}#db"}]
        else:  # legacy pod identity -> access-policy vault
            svc["identity"] = "pod-identity"
            svc["secrets"] = [{"name": "db", "from": f"keyvault://{LEGACY_VAULT}/{name}-db"}]
        services.append(svc)
    return {
        "apiVersion": "secretsboot/v1",
        "kind": "SecretsbootSpec",
        "metadata": {"name": "bench"},
        "azure": {
            "tenantId": sb.azure.tenant_id,
            "subscriptionId": sb.azure.subscription_id,
            "resourceGroup": "rg-bench",
            "location": "eastus2",
            "oidcIssuer": sb.kube.oidc_issuer,
            "keyVaults": [{"name": v} for v in RBAC_VAULTS]
            + [{"name": LEGACY_VAULT, "mode": "access-policy"}],
        },
        "vault": {
            "address": sb.vault.address,
            "auth": {"kubernetes": {"mount": "kubernetes"}, "jwt": {"mount": "jwt"}},
        },
        "kubernetes": {"namespace": "default"},
        "services": services,
    }


def calls(sb: Any) -> tuple[int, int]:
    """(all requests, writes) seen by the Kubernetes, ARM and Entra fakes."""
    logs = [sb.kube.app.calls, sb.azure.arm.calls, sb.azure.entra.calls]
    total = sum(len(log) for log in logs)
    writes = sum(
        1
        for log in logs[:2]
        for c in log
        if c.method in WRITES and "selfsubjectaccessreviews" not in c.path  # a question
    )
    return total, writes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, Sandbox.start(Path(tmp)) as sb:
        for v in RBAC_VAULTS:
            sb.azure.create_keyvault(v, resource_group="rg-bench")
        sb.azure.create_keyvault(LEGACY_VAULT, mode="access-policy", resource_group="rg-bench")
        sb.azure.add_service_principal(PROVISIONER_ID, PROVISIONER_SECRET)
        os.environ.update(sb.env())
        os.environ["AZURE_CLIENT_ID"] = PROVISIONER_ID
        os.environ["AZURE_CLIENT_SECRET"] = PROVISIONER_SECRET
        path = Path(tmp) / "bench.yaml"
        path.write_text(yaml.safe_dump(generate(sb, args.services), sort_keys=False))
        spec = load_spec(path)

        c0, w0 = calls(sb)
        t0 = time.perf_counter()
        with Provisioner.connect(spec, Options(workers=16)) as prov:
            plan = prov.plan()
            plan_s = time.perf_counter() - t0
            result = prov.apply(plan)
            vault_calls_1 = prov.calls.get("vault", 0)
        first_s = time.perf_counter() - t0
        c1, w1 = calls(sb)

        t1 = time.perf_counter()
        with Provisioner.connect(spec, Options()) as prov:
            again = prov.plan()
            vault_calls_2 = prov.calls.get("vault", 0)
        second_s = time.perf_counter() - t1
        c2, w2 = calls(sb)

    first_calls = (c1 - c0) + vault_calls_1
    report = {
        "services": args.services,
        "objects": len(plan.changes),
        "first_apply_s": round(first_s, 2),
        "first_apply_plan_part_s": round(plan_s, 2),
        "first_apply_writes": result.writes,
        "first_apply_api_calls": first_calls,
        "api_calls_per_service": round(first_calls / args.services, 2),
        "second_plan_s": round(second_s, 2),
        "second_plan_changes": len(again.pending),
        "second_plan_writes": (w2 - w1),
        "second_plan_api_calls": (c2 - c1) + vault_calls_2,
        "fake_writes_first_apply": w1 - w0,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for k, v in report.items():
            print(f"{k:28} {v}")
    ok = (
        first_s <= 30
        and second_s <= 5
        and (w2 - w1) == 0
        and not again.has_changes
        and first_calls / args.services <= 12
    )
    print("targets met" if ok else "TARGETS MISSED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
