#!/usr/bin/env python3
"""Benchmark ``secretsboot audit`` against Checkov on the same generated manifests.

    .venv/bin/python scripts/bench_audit.py --workloads 1000            # ours and Checkov
    .venv/bin/python scripts/bench_audit.py --workloads 100000 --no-checkov

Generates N workloads with mixed secret-delivery approaches (deterministic, seeded:
Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, with ServiceAccounts,
SecretProviderClasses, AzureIdentityBindings, ExternalSecrets, AzureKeyVaultSecrets
beside them) into ``--files`` files in a temp dir, then runs, one after the other:

- ours:    ``python -m secretsboot audit DIR -o json --report-only``
- Checkov: ``checkov -d DIR --framework kubernetes --skip-download -o json``, the
  binary given by ``--checkov PATH`` or the ``CHECKOV`` environment variable, else
  ``checkov`` on the PATH. Checkov is never installed into the project's environment;
  give it its own::

      python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install checkov
      CHECKOV=/tmp/checkov-venv/bin/checkov .venv/bin/python scripts/bench_audit.py

  When it cannot be found the script says so, runs ours only and exits 3 (CI does not
  run benchmarks).

Wall time and the largest process's peak RSS come from ``/usr/bin/time -v`` when
present, else from ``resource.getrusage(RUSAGE_CHILDREN)`` around each child. Beside
it, a sampler sums the PSS of the whole process tree every 20 ms (worker processes
included, pages they share counted once): the memory figure judged against the
targets is the larger of the two. ``--stages`` also runs
the pipeline stage by stage in one process (load, classify, detect, govern, render
to /dev/null) and prints the time and peak RSS after each. Targets: at 1,000
workloads at least 50x faster than Checkov with at most a tenth of its memory;
100,000 workloads within 40 s and 400 MB (issue 14). The audit key is taken from
``SECRETSBOOT_AUDIT_KEY`` when set (else the per-machine key file).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

APPROACHES = (
    "workload-identity+keyvault-csi",
    "aad-pod-identity",
    "vault-agent-injector",
    "k8s-secret-env",
    "k8s-secret-volume",
    "literal-credential",
    "external-secrets",
    "akv2k8s",
    "keyvault-flexvolume",
    "none",
)
KINDS = ("Deployment",) * 6 + ("StatefulSet", "DaemonSet", "Job", "CronJob")


def _pod(name: str, ns: str, approach: str, rng: random.Random) -> tuple[str, str, list[str]]:
    """(pod metadata yaml, pod spec yaml, supporting documents) at template indentation 0."""
    labels = [f"app: {name}", f"tier: {rng.choice(['web', 'api', 'worker'])}"]
    annotations: list[str] = []
    env = [
        "- name: LOG_LEVEL\n  value: info",
        f"- name: SERVICE_NAME\n  value: {name}",
        '- name: PORT\n  value: "8080"',
    ]
    volumes: list[str] = []
    mounts: list[str] = []
    extra: list[str] = []
    sa = "default"
    if approach == "workload-identity+keyvault-csi":
        sa = name
        labels.append('azure.workload.identity/use: "true"')
        extra.append(
            f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {sa}\n  namespace: {ns}\n"
            f"  annotations:\n    azure.workload.identity/client-id: "
            f"{rng.getrandbits(32):08x}-0000-4000-8000-{rng.getrandbits(48):012x}\n"
        )
        extra.append(
            "apiVersion: secrets-store.csi.x-k8s.io/v1\nkind: SecretProviderClass\n"
            f"metadata:\n  name: {name}-kv\n  namespace: {ns}\nspec:\n  provider: azure\n"
            f"  parameters:\n    clientID: {rng.getrandbits(32):08x}-0000-4000-8000-000000000000\n"
            f"    keyvaultName: kv-{ns}\n    tenantId: 00000000-0000-0000-0000-000000000000\n"
            "    objects: |\n      array:\n        - |\n          objectName: db-password\n"
            "          objectType: secret\n"
        )
        volumes.append(
            "- name: kv\n  csi:\n    driver: secrets-store.csi.k8s.io\n    readOnly: true\n"
            f"    volumeAttributes:\n      secretProviderClass: {name}-kv"
        )
        mounts.append("- name: kv\n  mountPath: /mnt/secrets\n  readOnly: true")
    elif approach == "aad-pod-identity":
        labels.append(f"aadpodidbinding: {name}")
        extra.append(
            "apiVersion: aadpodidentity.k8s.io/v1\nkind: AzureIdentityBinding\n"
            f"metadata:\n  name: {name}-binding\n  namespace: {ns}\n"
            f"spec:\n  azureIdentity: {name}-id\n  selector: {name}\n"
        )
    elif approach == "vault-agent-injector":
        annotations += [
            'vault.hashicorp.com/agent-inject: "true"',
            f"vault.hashicorp.com/role: {name}",
            f"vault.hashicorp.com/agent-inject-secret-db: database/creds/{name}",
        ]
    elif approach == "k8s-secret-env":
        env.append(
            f"- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: {name}-db\n"
            "      key: password"
        )
    elif approach == "k8s-secret-volume":
        volumes.append(f"- name: tls\n  secret:\n    secretName: {name}-tls")
        mounts.append("- name: tls\n  mountPath: /etc/tls\n  readOnly: true")
    elif approach == "literal-credential":
        env.append(f"- name: DB_PASSWORD\n  value: Pa55-{rng.getrandbits(40):010x}")
    elif approach == "external-secrets":
        env.append(f"- name: API_KEY\n  valueFrom:\n    secretKeyRef: {{name: {name}-es, key: k}}")
        extra.append(
            "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\n"
            f"metadata:\n  name: {name}\n  namespace: {ns}\nspec:\n"
            "  secretStoreRef: {name: azure-store, kind: ClusterSecretStore}\n"
            f"  target:\n    name: {name}-es\n  data:\n    - secretKey: k\n"
            "      remoteRef: {key: api-key}\n"
        )
    elif approach == "akv2k8s":
        env.append(f"- name: API_KEY\n  value: {name}-api-key@azurekeyvault")
    elif approach == "keyvault-flexvolume":
        volumes.append(
            "- name: kv\n  flexVolume:\n    driver: azure/kv\n    options:\n"
            '      usepodidentity: "false"\n      keyvaultname: kv1\n'
            "      keyvaultobjectnames: db-password\n      keyvaultobjecttypes: secret"
        )
        mounts.append("- name: kv\n  mountPath: /kvmnt")
    meta = "labels:\n" + "".join(f"  {x}\n" for x in labels)
    if annotations:
        meta += "annotations:\n" + "".join(f"  {x}\n" for x in annotations)
    container = (
        f"- name: {name}\n  image: myacr.azurecr.io/{name}:{rng.randint(1, 40)}.0\n"
        "  ports:\n  - containerPort: 8080\n"
        "  resources:\n    requests: {cpu: 100m, memory: 128Mi}\n"
        "    limits: {cpu: 500m, memory: 256Mi}\n"
        "  securityContext:\n    runAsNonRoot: true\n    allowPrivilegeEscalation: false\n"
        "    readOnlyRootFilesystem: true\n"
        "  env:\n" + _indent("\n".join(env), 2) + "\n"
    )
    if mounts:
        container += "  volumeMounts:\n" + _indent("\n".join(mounts), 2) + "\n"
    spec = f"serviceAccountName: {sa}\ncontainers:\n" + container
    if volumes:
        spec += "volumes:\n" + "\n".join(volumes) + "\n"
    return meta, spec, extra


def _indent(text: str, n: int) -> str:
    pad = " " * n
    return "\n".join(pad + line if line else line for line in text.splitlines())


def workload_yaml(i: int, rng: random.Random) -> str:
    ns = f"team-{i % 50}"
    name = f"svc-{i}"
    kind = KINDS[i % len(KINDS)]
    approach = APPROACHES[rng.randrange(len(APPROACHES))]
    meta, spec, extra = _pod(name, ns, approach, rng)
    pod = "metadata:\n" + _indent(meta, 2) + "\nspec:\n" + _indent(spec, 2) + "\n"
    api = {"Job": "batch/v1", "CronJob": "batch/v1"}.get(kind, "apps/v1")
    head = f"apiVersion: {api}\nkind: {kind}\nmetadata:\n  name: {name}\n  namespace: {ns}\n"
    if kind == "CronJob":
        body = (
            'spec:\n  schedule: "0 * * * *"\n  jobTemplate:\n    spec:\n      template:\n'
            + _indent(pod.replace("spec:\n", "spec:\n  restartPolicy: OnFailure\n", 1), 8)
            + "\n"
        )
    elif kind == "Job":
        body = (
            "spec:\n  template:\n"
            + _indent(pod.replace("spec:\n", "spec:\n  restartPolicy: Never\n", 1), 4)
            + "\n"
        )
    else:
        selector = f"  selector:\n    matchLabels:\n      app: {name}\n"
        replicas = "  replicas: 2\n" if kind != "DaemonSet" else ""
        body = "spec:\n" + replicas + selector + "  template:\n" + _indent(pod, 4) + "\n"
    return "---\n".join([head + body, *extra])


def generate(directory: Path, workloads: int, files: int, seed: int) -> int:
    """Write the manifests; returns the total size in bytes."""
    rng = random.Random(seed)
    files = max(1, min(files, workloads))
    per_file = [workloads // files + (1 if f < workloads % files else 0) for f in range(files)]
    total = 0
    i = 0
    for f, count in enumerate(per_file):
        docs = []
        for _ in range(count):
            docs.append(workload_yaml(i, rng))
            i += 1
        text = "---\n".join(docs)
        sub = directory / f"team-{f % 50}"
        sub.mkdir(exist_ok=True)
        (sub / f"app-{f}.yaml").write_text(text)
        total += len(text)
    return total


@dataclass
class Measure:
    wall_s: float
    rss_mb: float  # the largest single process's peak RSS (what time -v reports)
    code: int
    cpu_s: float = float("nan")  # user + system, children included
    tree_mb: float = float("nan")  # peak of the whole process tree's PSS, sampled

    @property
    def memory_mb(self) -> float:
        """What the audit costs the machine: the tree's peak (worker processes included,
        shared pages counted once), never less than the largest process."""
        return max(self.rss_mb, self.tree_mb) if self.tree_mb == self.tree_mb else self.rss_mb


def _children(pid: int) -> list[int]:
    out: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(c) for c in fh.read().split())
    return out


def _pss_kb(pid: int) -> int:
    with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup") as fh:
        for line in fh:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


class TreeSampler(threading.Thread):
    """Samples the summed PSS of a process and all its descendants every 20 ms (Linux):
    a sharded audit's memory is its workers' too, and time -v shows the largest only."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak_kb, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            pids, seen = [self.pid], 0
            total = 0
            while seen < len(pids):
                total += _pss_kb(pids[seen])
                pids.extend(_children(pids[seen]))
                seen += 1
            self.peak_kb = max(self.peak_kb, total)


_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
_CPU = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")
_WALL = re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)")


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Measure:
    timer = shutil.which("time") and Path("/usr/bin/time").exists()
    if timer:
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            start = time.perf_counter()
            proc = subprocess.Popen(
                ["/usr/bin/time", "-v", "-o", report.name, *cmd],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
            )
            sampler = TreeSampler(proc.pid)
            sampler.start()
            _, err = proc.communicate()
            wall = time.perf_counter() - start
            sampler.done.set()
            sampler.join()
            text = Path(report.name).read_text()
        rss = _RSS.search(text)
        if proc.returncode not in (0, 1) and err:
            sys.stderr.write(err.decode(errors="replace")[-2000:])
        cpu = sum(float(x) for x in _CPU.findall(text))
        return Measure(
            wall,
            int(rss.group(1)) / 1024 if rss else float("nan"),
            proc.returncode,
            cpu,
            sampler.peak_kb / 1024 if sampler.peak_kb else float("nan"),
        )
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    start = time.perf_counter()
    proc = subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False
    )
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    # RUSAGE_CHILDREN keeps the maximum over all children: run the smaller process first
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    return Measure(wall, max(usage.ru_maxrss, before) / 1024, proc.returncode, cpu)


STAGES = """
import os, resource, sys, time
from secretsboot.audit import engine, policy
from secretsboot.audit.loader import load, no_gc
from secretsboot.audit.model import AuditResult
from secretsboot.audit.report import render_to
from secretsboot.audit.resolve import Index

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

def stage(name, start):
    print(f"  {name:<9} {time.perf_counter() - start:6.2f} s   peak RSS {peak():7.1f} MB")
    return time.perf_counter()

t = time.perf_counter()
loaded = load([sys.argv[1]])
t = stage("load", t)
with no_gc():
    index = Index(loaded.manifests)
    workloads = engine.classify_all(index, loaded)
    t = stage("classify", t)
    findings = engine._detect(index, workloads)
    t = stage("detect", t)
    result = policy.govern(
        AuditResult(workloads, findings, loaded.errors, loaded.coverage),
        policy=policy.Policy(), suppressions=[], baseline=frozenset(), threshold=None,
    )
    t = stage("govern", t)
    loaded.manifests = []
    del index
    for w in result.workloads:
        w.manifest = None
    with open(os.devnull, "w", encoding="utf-8") as out:
        render_to(result, sys.argv[2], out)
    stage("render", t)
"""


def stages(directory: Path, fmt: str, env: dict[str, str]) -> None:
    """Each stage of the pipeline in one process: wall time and peak RSS after it."""
    print(f"stages ({fmt}), in one process:")
    subprocess.run([sys.executable, "-c", STAGES, str(directory), fmt], env=env, check=True)


CHECKOV_MISSING = 3  # exit status: ours ran, the peer could not be found


def checkov_binary(given: str | None) -> Path | None:
    """The Checkov to run: ``--checkov``, else ``$CHECKOV``, else ``checkov`` on the PATH."""
    sources = (
        ("--checkov", given),
        ("CHECKOV", os.environ.get("CHECKOV")),
        ("PATH", shutil.which("checkov")),
    )
    for source, candidate in sources:
        if not candidate:
            continue
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
        print(f"checkov ({source}): {candidate} is not an executable file", file=sys.stderr)
    return None


def checkov_version(binary: Path) -> str:
    proc = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return proc.stdout.strip() or "unknown version"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=int, default=1000)
    parser.add_argument("--files", type=int, default=None, help="default: min(workloads, 1000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-checkov", action="store_true", help="run ours only")
    parser.add_argument(
        "--checkov",
        default=None,
        help="the checkov executable (default: $CHECKOV, else checkov on the PATH)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated manifests")
    parser.add_argument(
        "--stages", action="store_true", help="also time each stage (load, classify, ...)"
    )
    args = parser.parse_args(argv)
    files = args.files or min(args.workloads, 1000)

    work = Path(tempfile.mkdtemp(prefix="secretsboot-bench-"))
    try:
        t0 = time.perf_counter()
        size = generate(work, args.workloads, files, args.seed)
        print(
            f"generated {args.workloads} workloads in {files} files "
            f"({size / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s: {work}"
        )
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        ours = measure(
            [
                sys.executable,
                "-m",
                "secretsboot",
                "audit",
                str(work),
                "-o",
                "json",
                "--report-only",
            ],
            env,
        )
        print(
            f"secretsboot: {ours.wall_s:8.2f} s wall  {ours.cpu_s:8.2f} s cpu  "
            f"{ours.rss_mb:8.1f} MB peak RSS (largest process), {ours.tree_mb:8.1f} MB peak "
            f"PSS of the process tree  exit {ours.code}  ({load_average()})"
        )
        if args.stages:
            stages(work, "json", env)
        if args.workloads >= 100_000:
            ok = ours.wall_s <= 40 and ours.memory_mb <= 400
            print(
                "target 100k in <= 40 s and <= 400 MB (the tree's, workers included): "
                f"{'met' if ok else 'NOT met'}"
            )
        if args.no_checkov:
            return 0 if ours.code == 0 else 1
        checkov = checkov_binary(args.checkov)
        if checkov is None:
            print(
                "checkov: NOT FOUND, no comparison made. Install it in its own environment "
                "(python3 -m venv /tmp/checkov-venv && /tmp/checkov-venv/bin/pip install "
                "checkov) and pass --checkov /tmp/checkov-venv/bin/checkov or set CHECKOV."
            )
            return CHECKOV_MISSING
        print(f"checkov {checkov_version(checkov)}: {checkov}")
        peer = measure(
            [
                str(checkov),
                "-d",
                str(work),
                "--framework",
                "kubernetes",
                "--skip-download",
                "-o",
                "json",
            ]
        )
        print(
            f"checkov:     {peer.wall_s:8.2f} s wall  {peer.cpu_s:8.2f} s cpu  "
            f"{peer.rss_mb:8.1f} MB peak RSS (largest process), {peer.tree_mb:8.1f} MB peak "
            f"PSS of the process tree  exit {peer.code}  ({load_average()})"
        )
        speed = peer.wall_s / ours.wall_s
        memory = ours.memory_mb / peer.memory_mb
        print(
            f"ratio: {speed:.1f}x faster (wall), {peer.cpu_s / ours.cpu_s:.1f}x less CPU, "
            f"{memory:.3f} of Checkov's memory"
        )
        print(
            "target >= 50x faster and <= 0.1 of the memory: "
            f"{'met' if speed >= 50 and memory <= 0.1 else 'NOT met'}"
        )
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
