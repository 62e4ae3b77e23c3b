"""Kill the publisher at random moments while readers read the whole set.

Each round a child process publishes generation N of 200 secrets (as ``secretsboot
fetch`` does, under the same SIGTERM/SIGINT handling) and is sent SIGKILL, SIGTERM
or SIGINT at a random moment of its publish. Two readers loop meanwhile:

* through the per-name links (``out/s000``...): never a missing file, and one
  generation whenever ``..data`` did not move during the pass;
* through the folder ``..data`` names, opened once: always one complete generation
  (a pass whose folder was retired by a swap meanwhile is counted, not judged).

After every round the visible set is one whole generation; after SIGTERM/SIGINT
nothing is left over; after the last, unkilled publish no secret copy of an earlier
generation exists anywhere in the folder.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

N = 200
ROUNDS = 30
NAMES = [f"s{i:03d}" for i in range(N)]

CHILD = """
import sys, time
from secretsboot.fetch._cli import exit_code_of_interrupt, interruptible, Terminated
from secretsboot.fetch.writer import OutputFile, publish
from secretsboot.secret import SecretValue

out, gen = sys.argv[1], int(sys.argv[2])
files = [OutputFile(f"s{i:03d}", SecretValue(f"gen{gen}-s{i:03d}")) for i in range(N_SECRETS)]
try:
    with interruptible():
        print("ready", flush=True)
        started = time.monotonic()
        publish(out, files)
        print(f"{time.monotonic() - started:.4f}", flush=True)
except (KeyboardInterrupt, Terminated) as exc:
    sys.exit(exit_code_of_interrupt(exc))
""".replace("N_SECRETS", str(N))


@pytest.fixture
def out() -> Iterator[Path]:
    """An output folder on tmpfs (an emptyDir with ``medium: Memory``) when there is one."""
    base = Path(tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None))
    try:
        yield base / "out"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _start(out: Path, gen: int) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(out), str(gen)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "ready\n"
    return child


def _generation(values: list[str | None]) -> set[str | None]:
    return {v.split("-")[0] if v is not None else None for v in values}


class Readers:
    def __init__(self, out: Path) -> None:
        self.out = out
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.passes = {"links": 0, "links_moved": 0, "data": 0, "data_retired": 0}

    def _read(self, name: str, dir_fd: int | None = None) -> str | None:
        try:
            fd = os.open(
                name if dir_fd is not None else self.out / name, os.O_RDONLY, dir_fd=dir_fd
            )
        except FileNotFoundError:
            return None
        with os.fdopen(fd) as fh:
            return fh.read()

    def through_links(self) -> None:
        while not self.stop.is_set():
            before = os.readlink(self.out / "..data")
            values = [self._read(n) for n in NAMES]
            after = os.readlink(self.out / "..data")
            self.passes["links"] += 1
            if None in values:
                self.problems.append(f"gap: {values.count(None)} names missing")
            if before == after and len(_generation(values)) != 1:
                self.problems.append(
                    f"mix under one ..data: {sorted(map(str, _generation(values)))}"
                )
            self.passes["links_moved"] += before != after

    def through_data(self) -> None:
        """Open the folder ``..data`` names, read every file in it: one whole set. The
        publisher removes the old folder after a swap, so a pass over a folder that was
        replaced meanwhile may find files gone: that pass is retired, not judged."""
        while not self.stop.is_set():
            target = os.readlink(self.out / "..data")
            try:
                fd = os.open(self.out / target, os.O_RDONLY | os.O_DIRECTORY)
            except FileNotFoundError:
                self.passes["data_retired"] += 1
                continue
            try:
                values = [self._read(n, fd) for n in NAMES]
            finally:
                os.close(fd)
            if None in values and os.readlink(self.out / "..data") != target:
                self.passes["data_retired"] += 1
                continue
            self.passes["data"] += 1
            if None in values or len(_generation(values)) != 1:
                self.problems.append(f"..data not one whole set: {_generation(values)}")


def _visible_generation(out: Path) -> str:
    values = [(out / n).read_text() for n in NAMES]
    gens = _generation(list(values))
    assert len(gens) == 1, gens
    return str(gens.pop())


def test_kills_at_random_moments_never_show_a_mix_or_a_gap(out: Path) -> None:
    rng = random.Random(os.environ.get("SECRETSBOOT_KILL_SEED") or time.time_ns())
    started = time.monotonic()
    durations = []
    for gen in range(3):  # calibrate how long one publish takes here
        child = _start(out, gen)
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        durations.append(float(stdout))
    window = statistics.median(durations) * 1.5
    readers = Readers(out)
    threads = [
        threading.Thread(target=readers.through_links),
        threading.Thread(target=readers.through_data),
    ]
    for t in threads:
        t.start()
    outcomes = {"kept old set": 0, "new set visible": 0}
    codes: dict[str, set[int]] = {}
    committed = 2
    try:
        kinds = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT] * (ROUNDS // 3)
        rng.shuffle(kinds)
        for gen, sig in enumerate(kinds, start=3):
            before = {e for e in os.listdir(out) if e.startswith("..")}
            child = _start(out, gen)
            time.sleep(rng.uniform(0, window))
            child.send_signal(sig)
            _, stderr = child.communicate(timeout=60)
            codes.setdefault(sig.name, set()).add(child.returncode)
            assert "gen" not in stderr  # no value in any message
            visible = _visible_generation(out)
            assert visible in (f"gen{committed}", f"gen{gen}"), visible
            if visible == f"gen{gen}":
                committed = gen
                outcomes["new set visible"] += 1
            else:
                outcomes["kept old set"] += 1
            if sig != signal.SIGKILL:  # rolled back (or completed): it left nothing behind
                now = {e for e in os.listdir(out) if e.startswith("..")}
                assert now - before <= {os.readlink(out / "..data")}, now - before
    finally:
        readers.stop.set()
        for t in threads:
            t.join()
    final = ROUNDS + 3
    child = _start(out, final)
    _, stderr = child.communicate(timeout=60)
    assert child.returncode == 0, stderr
    elapsed = time.monotonic() - started
    print(f"kill test: {outcomes}, exit codes {codes}, reader passes {readers.passes}, "
          f"publish window {window * 1000:.0f} ms, {elapsed:.1f} s")  # fmt: skip

    assert readers.problems == []
    assert readers.passes["links"] > ROUNDS and readers.passes["data"] > ROUNDS
    assert codes["SIGKILL"] <= {-signal.SIGKILL, 0}
    # 143/130: interrupted and unwound; 0 or death by the signal: it came after the publish
    assert codes["SIGTERM"] <= {143, 0, -signal.SIGTERM}
    assert codes["SIGINT"] <= {130, 0, -signal.SIGINT}
    assert outcomes["kept old set"] > 0 and outcomes["new set visible"] > 0
    # no secret copy outlives the next successful publish
    copies = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert len(copies) == N
    assert {p.read_text().split("-")[0] for p in copies} == {f"gen{final}"}
    assert sorted(e for e in os.listdir(out) if e.startswith("..")) == sorted(
        ["..data", os.readlink(out / "..data")]
    )
