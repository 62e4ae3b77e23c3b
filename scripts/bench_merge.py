#!/usr/bin/env python3
"""Benchmark ``secretsboot audit merge``: 100 cluster reports of 10,000 workloads each.

    .venv/bin/python scripts/bench_merge.py                        # 100 x 10,000, html + sarif
    .venv/bin/python scripts/bench_merge.py --reports 10 --workloads 1000

Makes one real JSON report: ``secretsboot audit -o json`` of ``--workloads``
generated workloads (the generator of ``scripts/bench_audit.py``), then writes
``--reports`` copies of it, each with its own ``source.name`` (a cluster), and
times ``secretsboot audit merge`` over all of them for each ``--formats``, with
wall time and peak RSS of the child process (``/usr/bin/time -v`` when present,
else ``getrusage``). Target (issue 16): 100 reports of 10,000 workloads each in
at most 60 s and 500 MB.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audit import generate, measure  # noqa: E402


def make_reports(work: Path, reports: int, workloads: int) -> list[Path]:
    manifests = work / "manifests"
    manifests.mkdir()
    generate(manifests, workloads, max(1, workloads // 100), seed=7)
    one = work / "one.json"
    env = {**os.environ, "SECRETSBOOT_AUDIT_KEY": "bench-merge-key-0123456789"}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "secretsboot",
            "audit",
            str(manifests),
            "-o",
            "json",
            "--out",
            str(one),
            "--report-only",
            "--cluster-name",
            "CLUSTER",
            "-q",
        ],
        check=True,
        env=env,
        cwd=REPO,
    )
    text = one.read_text(encoding="utf-8")
    marker = '"source":{"name":"CLUSTER"'
    if marker not in text:
        raise SystemExit("the report carries no source name: cannot make cluster copies")
    out = []
    for i in range(reports):
        path = work / f"aks-{i:03d}.json"
        path.write_text(text.replace(marker, f'"source":{{"name":"aks-{i:03d}"', 1))
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=100)
    ap.add_argument("--workloads", type=int, default=10_000)
    ap.add_argument("--formats", default="html,sarif")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        paths = make_reports(work, args.reports, args.workloads)
        size = sum(p.stat().st_size for p in paths)
        print(
            f"{args.reports} reports of {args.workloads:,} workloads "
            f"({size / 1e6:,.0f} MB) made in {time.perf_counter() - t:.1f} s"
        )
        for fmt in args.formats.split(","):
            out = work / f"fleet.{fmt}"
            cmd = [sys.executable, "-m", "secretsboot", "audit", "merge", *map(str, paths)]
            m = measure([*cmd, "-o", fmt, "--out", str(out), "-q"])
            ok = m.wall_s <= 60 and m.rss_mb <= 500
            print(
                f"merge -o {fmt}: {m.wall_s:.1f} s, peak {m.rss_mb:.0f} MB, "
                f"{out.stat().st_size / 1e6:.1f} MB written "
                f"({'within' if ok else 'OVER'} 60 s / 500 MB)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
