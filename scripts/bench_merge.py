#!/usr/bin/env python3
"""Benchmark ``secretsboot audit merge``: 100 cluster reports of 10,000 workloads each.

    .venv/bin/python scripts/bench_merge.py                        # 100 x 10,000, html + sarif
    .venv/bin/python scripts/bench_merge.py --reports 10 --workloads 1000

Makes one real JSON report: ``secretsboot audit -o json`` of ``--workloads``
generated workloads (the generator of ``scripts/bench_audit.py``), then writes
``--reports`` copies of it, each with its own ``source.name`` (a cluster), and
times ``secretsboot audit merge`` over all of them for each ``--formats``, with
wall time, CPU time and peak RSS of the child processes (``/usr/bin/time -v`` when
present, else ``getrusage``). The merge reads large inputs in worker processes;
``--compare-serial`` also times it with ``SECRETSBOOT_NO_PARALLEL=1`` (one process)
side by side, checks that both wrote the same bytes and prints the ratio. Target
(issue 16): 100 reports of 10,000 workloads each in at most 60 s and 500 MB.
``--work DIR`` keeps the reports in DIR and reuses them on the next run.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_audit import Measure, generate, load_average, measure  # noqa: E402


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


def reports_in(work: Path, reports: int, workloads: int) -> list[Path]:
    """The reports kept in ``work`` by an earlier run with the same sizes, else new ones."""
    stamp = work / "sizes.txt"
    wanted = f"{reports} x {workloads}\n"
    paths = [work / f"aks-{i:03d}.json" for i in range(reports)]
    if stamp.exists() and stamp.read_text() == wanted and all(p.exists() for p in paths):
        return paths
    if any(work.iterdir()):
        raise SystemExit(f"{work} holds other files: give --work an empty or new folder")
    paths = make_reports(work, reports, workloads)
    stamp.write_text(wanted)
    return paths


def run_merge(paths: list[Path], fmt: str, out: Path, *, serial: bool) -> Measure:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if serial:
        env["SECRETSBOOT_NO_PARALLEL"] = "1"
    cmd = [sys.executable, "-m", "secretsboot", "audit", "merge", *map(str, paths)]
    return measure([*cmd, "-o", fmt, "--out", str(out), "-q"], env)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reports", type=int, default=100)
    ap.add_argument("--workloads", type=int, default=10_000)
    ap.add_argument("--formats", default="html,sarif")
    ap.add_argument("--work", type=Path, default=None, help="keep (and reuse) the reports here")
    ap.add_argument("--compare-serial", action="store_true", help="also time the one-process merge")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-merge-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        paths = reports_in(work, args.reports, args.workloads)
        size = sum(p.stat().st_size for p in paths)
        print(
            f"{args.reports} reports of {args.workloads:,} workloads "
            f"({size / 1e6:,.0f} MB) ready in {time.perf_counter() - t:.1f} s"
        )
        failed = False
        for fmt in args.formats.split(","):
            out = Path(tmp) / f"fleet.{fmt}"
            m = run_merge(paths, fmt, out, serial=False)
            ok = m.code == 0 and m.wall_s <= 60 and m.rss_mb <= 500
            failed = failed or m.code != 0
            print(
                f"merge -o {fmt}: {m.wall_s:.1f} s wall, {m.cpu_s:.1f} s cpu, "
                f"peak {m.rss_mb:.0f} MB, {out.stat().st_size / 1e6:.1f} MB written "
                f"({'within' if ok else 'OVER'} 60 s / 500 MB; {load_average()})"
            )
            if not args.compare_serial:
                continue
            one = Path(tmp) / f"fleet-serial.{fmt}"
            s = run_merge(paths, fmt, one, serial=True)
            same = filecmp.cmp(out, one, shallow=False)
            failed = failed or s.code != 0 or not same
            print(
                f"  serial:   {s.wall_s:.1f} s wall, {s.cpu_s:.1f} s cpu, peak {s.rss_mb:.0f} MB; "
                f"parallel {s.wall_s / m.wall_s:.2f}x faster, "
                f"{'the same bytes' if same else 'OUTPUT DIFFERS'} ({load_average()})"
            )
            one.unlink()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
