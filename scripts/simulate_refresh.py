"""Load that ``fetch --refresh`` puts on each store, for N pods x M secrets x INTERVAL.

Usage::

    python scripts/simulate_refresh.py --pods 1000 --secrets 10 --interval 5m
    python scripts/simulate_refresh.py --table          # the README table (100/1,000/10,000 pods)

What one pod does per cycle (see secretsboot/fetch/refresh.py):

- **with version checks** (what secretsboot does): one small request per distinct
  store object (a Key Vault secret, a Vault KV path, a Kubernetes Secret; several
  keys of one object share it), plus a full read for each object that changed, plus
  token upkeep: a Vault ``renew-self`` at 2/3 of the token TTL, an Entra token
  exchange a minute before each access token expires (Key Vault).
- **without version checks** (a naive loop that re-runs a whole fetch each cycle, as
  an init container restarted on a timer would): a Vault login, every read, a
  ``revoke-self``; an Entra token exchange and every Key Vault read.

The counts are the same for an unchanged Key Vault or Kubernetes secret either way
(their version check is itself one GET, and Key Vault counts every GET as one
transaction): what versions save there is the bytes, the writes and the app's
restarts. For Vault they save the login and the revoke of every cycle.

Published limits used (checked December 2026; each can be overridden by a flag):

- Key Vault: 4,000 "all other transactions" (secret GET) per 10 s per vault per
  region, and a subscription-wide cap of 5x that across vaults. Source:
  https://learn.microsoft.com/en-us/azure/key-vault/general/service-limits and
  https://learn.microsoft.com/en-us/azure/key-vault/general/overview-throttling
  (also /work/shared/REFERENCE.md section 6). Excess gets 429 + Retry-After.
- Vault / OpenBao: no rate limit by default. Rate-limit quotas are opt-in
  (``sys/quotas/rate-limit``), apply per client IP per node, so one pod's own
  M/INTERVAL requests never meet a sane quota; the aggregate is a capacity
  question. Source: https://developer.hashicorp.com/vault/docs/concepts/resource-quotas
  The budget below (``--vault-budget``, default 1,000 req/s for refresh traffic) is
  an ASSUMPTION to replace with your cluster's measured headroom.
- Kubernetes API: API Priority and Fairness (on by default since 1.20, GA in 1.29).
  Pods' service accounts fall in the ``service-accounts`` FlowSchema -> the
  ``workload-low`` priority level. Server concurrency = --max-requests-inflight (400)
  + --max-mutating-requests-inflight (200) = 600 seats, shared in proportion to the
  default nominal shares: system 30, node-high 40, leader-election 10,
  workload-high 40, workload-low 100, global-default 20, catch-all 5 (sum 245), so
  workload-low gets ceil(600 * 100 / 245) = 245 seats. Sources:
  https://kubernetes.io/docs/concepts/cluster-administration/flow-control/ and
  kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/apis/flowcontrol/bootstrap/default.go.
  Seats are concurrency, not a rate: req/s = seats / service time. With an
  ASSUMED 10 ms per Secret GET (``--kube-service-ms``) and refresh traffic allowed
  at most 10 % of the level (``--kube-share``; the level is shared with every
  other pod and operator), the budget is 245 * 0.10 / 0.010 = 2,450 req/s.

"Safe" means at most ``--headroom`` (default 50 %) of each limit, leaving room for
rollouts (every new pod's first fetch) and other clients.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

KV_TX_PER_10S = 4000
KV_SUBSCRIPTION_FACTOR = 5
APF_SERVER_SEATS = 400 + 200
APF_SHARES = {
    "system": 30,
    "node-high": 40,
    "leader-election": 10,
    "workload-high": 40,
    "workload-low": 100,
    "global-default": 20,
    "catch-all": 5,
}
INTERVALS = [10, 30, 60, 120, 300, 600, 900, 1800, 3600]


def workload_low_seats(server_seats: int = APF_SERVER_SEATS) -> int:
    """NominalCL(workload-low) = ceil(ServerCL * NCS / sum NCS)."""
    return math.ceil(server_seats * APF_SHARES["workload-low"] / sum(APF_SHARES.values()))


@dataclass
class Load:
    """Requests per second each store sees from the whole fleet."""

    keyvault: float
    vault: float
    kubernetes: float
    entra: float


@dataclass
class Scenario:
    pods: int
    secrets: int  # per pod, per store
    interval: float  # seconds
    keys_per_object: int = 1  # secrets sharing one store object (Vault path, k8s Secret)
    change_rate: float = 0.001  # fraction of objects that change per cycle
    vault_ttl: float = 3600.0  # Vault token TTL
    entra_lifetime: float = 3600.0  # Entra access token lifetime (Key Vault)

    @property
    def objects(self) -> float:
        return math.ceil(self.secrets / self.keys_per_object)

    def with_versions(self) -> Load:
        per_cycle = self.objects * (1 + self.change_rate)
        kv_cycle = self.secrets * (1 + self.change_rate)  # every Key Vault secret is an object
        vault_upkeep = 1 / (self.vault_ttl * 2 / 3)  # renew-self at 2/3 of the TTL
        entra_upkeep = 1 / max(60.0, self.entra_lifetime - 60)
        return Load(
            keyvault=self.pods * kv_cycle / self.interval,
            vault=self.pods * (per_cycle / self.interval + vault_upkeep),
            kubernetes=self.pods * per_cycle / self.interval,
            entra=self.pods * entra_upkeep,
        )

    def without_versions(self) -> Load:
        return Load(
            keyvault=self.pods * self.secrets / self.interval,
            vault=self.pods * (self.secrets + 2) / self.interval,  # login + reads + revoke
            kubernetes=self.pods * self.secrets / self.interval,
            entra=self.pods / self.interval,  # a fresh process has no token cache
        )


@dataclass
class Limits:
    keyvault_rps: float = KV_TX_PER_10S / 10  # per vault
    vaults: int = 1  # vaults the pods' secrets are spread over
    vault_budget: float = 1000.0
    kube_service_ms: float = 10.0
    kube_share: float = 0.10
    headroom: float = 0.5

    @property
    def keyvault(self) -> float:
        per_vault = self.keyvault_rps * self.vaults
        return min(per_vault, self.keyvault_rps * KV_SUBSCRIPTION_FACTOR)

    @property
    def kubernetes(self) -> float:
        return workload_low_seats() * self.kube_share / (self.kube_service_ms / 1000)

    def of(self, store: str) -> float:
        return {"keyvault": self.keyvault, "vault": self.vault_budget,
                "kubernetes": self.kubernetes}[store]  # fmt: skip


STORES = ("keyvault", "vault", "kubernetes")


def shortest_safe_interval(base: Scenario, limits: Limits, store: str) -> float | None:
    """The shortest interval in :data:`INTERVALS` keeping ``store`` under headroom x limit."""
    for interval in INTERVALS:
        s = Scenario(**{**base.__dict__, "interval": float(interval)})
        if getattr(s.with_versions(), store) <= limits.of(store) * limits.headroom:
            return float(interval)
    return None


def human(seconds: float | None) -> str:
    if seconds is None:
        return "none <= 1h"
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def parse_interval(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    text = text.strip().lower()
    if text[-1:] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def report(s: Scenario, limits: Limits) -> str:
    withv, without = s.with_versions(), s.without_versions()
    lines = [
        f"{s.pods} pods x {s.secrets} secrets per store, every {human(s.interval)} "
        f"(change rate {s.change_rate:.2%} per cycle, {s.keys_per_object} keys per object)",
        f"{'store':<11} {'with versions':>14} {'without':>10} {'limit':>10} {'use':>7}",
    ]
    for store in STORES:
        limit = limits.of(store)
        w, wo = getattr(withv, store), getattr(without, store)
        lines.append(f"{store:<11} {w:>12.1f}/s {wo:>8.1f}/s {limit:>8.0f}/s {w / limit:>6.1%}")
    lines.append(f"{'entra':<11} {withv.entra:>12.2f}/s {without.entra:>8.1f}/s  (token requests)")
    return "\n".join(lines)


def table(secrets: int, limits: Limits) -> str:
    """The README table: req/s per store at 5 minutes, and the shortest safe interval."""
    head = (
        "| pods | Key Vault req/s at 5m | Vault req/s at 5m (without versions) | "
        "Kubernetes req/s at 5m | shortest safe interval: Key Vault / Vault / Kubernetes |"
    )
    rows = [head, "|---:|---:|---:|---:|---|"]
    for pods in (100, 1000, 10000):
        s = Scenario(pods=pods, secrets=secrets, interval=300.0)
        w, wo = s.with_versions(), s.without_versions()
        safe = " / ".join(human(shortest_safe_interval(s, limits, st)) for st in STORES)
        rows.append(
            f"| {pods:,} | {w.keyvault:,.1f} | {w.vault:,.1f} ({wo.vault:,.1f}) | "
            f"{w.kubernetes:,.1f} | {safe} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pods", type=int, default=1000)
    ap.add_argument("--secrets", type=int, default=10, help="secrets per pod (per store)")
    ap.add_argument("--interval", default="5m")
    ap.add_argument("--keys-per-object", type=int, default=1)
    ap.add_argument("--change-rate", type=float, default=0.001)
    ap.add_argument("--vault-ttl", default="1h")
    ap.add_argument("--vaults", type=int, default=1, help="Key Vaults the load is spread over")
    ap.add_argument("--vault-budget", type=float, default=1000.0)
    ap.add_argument("--kube-service-ms", type=float, default=10.0)
    ap.add_argument("--kube-share", type=float, default=0.10)
    ap.add_argument("--headroom", type=float, default=0.5)
    ap.add_argument("--table", action="store_true", help="print the README table")
    args = ap.parse_args(argv)
    limits = Limits(
        vaults=args.vaults,
        vault_budget=args.vault_budget,
        kube_service_ms=args.kube_service_ms,
        kube_share=args.kube_share,
        headroom=args.headroom,
    )
    if args.table:
        print(table(args.secrets, limits))
        print(
            f"\n{args.secrets} secrets per pod in each store; limits: Key Vault "
            f"{limits.keyvault:,.0f}/s ({args.vaults} vault(s)), "
            f"Vault {limits.vault_budget:,.0f}/s (assumed budget), "
            f"Kubernetes {limits.kubernetes:,.0f}/s "
            f"({workload_low_seats()} workload-low seats x {limits.kube_share:.0%} / "
            f"{limits.kube_service_ms:g} ms); safe = {limits.headroom:.0%} of each."
        )
        return 0
    scenario = Scenario(
        pods=args.pods,
        secrets=args.secrets,
        interval=parse_interval(args.interval),
        keys_per_object=args.keys_per_object,
        change_rate=args.change_rate,
        vault_ttl=parse_interval(args.vault_ttl),
    )
    print(report(scenario, limits))
    for store in STORES:
        print(f"shortest safe interval for {store}: "
              f"{human(shortest_safe_interval(scenario, limits, store))}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
