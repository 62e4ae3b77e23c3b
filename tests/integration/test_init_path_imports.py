"""The init container's path stays lean (issue: one house, right way up).

``secretsboot fetch --help``, ``secretsboot run --help`` and a real fetch from all
three stores (Key Vault through workload identity, Vault through kubernetes auth,
a Kubernetes Secret) run under ``python -X importtime``; none imports the sandbox,
the other faces, the CLI frameworks, pydantic, any SDK, or the standard modules
whose import cost was measured and avoided.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fetch_support import (  # the one module instance (its unique() counter) the others use
    Pod,
    config,
    keyvault,
    make_pod,
    put_vault,
    unique,
    vault_role,
    workload_identity,
)

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

#: top-level packages (and secretsboot parts) the init path must never import
FORBIDDEN = (
    "secretsboot.sandbox",
    "secretsboot.provision",
    "secretsboot.audit",
    "secretsboot.inject",
    "secretsboot.demo",
    "secretsboot.spec",
    "typer",
    "click",
    "rich",
    "pydantic",
    "azure",
    "msal",
    "hvac",
    "kubernetes",
    "requests",
    "urllib3",
    # measured costs at pod start (scripts/bench_fetch.py): the email package that
    # http.client parses headers with (13 ms of CPU), shutil with bz2 and lzma, which
    # argparse loads for the terminal width (4 ms), the IDNA codec (3 ms)
    "http.client",
    "email",
    "shutil",
    "bz2",
    "lzma",
    "encodings.idna",
)


IMPORT_LINE = re.compile(r"import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)")


def imported_modules(stderr: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    return set(IMPORT_LINE.findall(stderr))


def forbidden_in(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN))


#: runs ``python -m secretsboot ARGS`` and, at exit, lists every module loaded by any
#: thread (``fetch``/``run`` end with ``os._exit``, which skips atexit: both are caught)
PROBE = (
    "import atexit, os, runpy, sys\n"
    "out = sys.argv.pop(1)\n"
    "def dump():\n"
    "    with open(out, 'w') as fh:\n"
    "        fh.write('\\n'.join(sorted(sys.modules)))\n"
    "atexit.register(dump)\n"
    "_exit = os._exit\n"
    "def exit_after_dump(code):\n"
    "    dump()\n"
    "    _exit(code)\n"
    "os._exit = exit_after_dump\n"
    "sys.argv[0] = 'secretsboot'\n"
    "runpy.run_module('secretsboot', run_name='__main__', alter_sys=True)\n"
)


def run_importtime(args: list[str], env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secretsboot", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def grant_secret_read(sb: Any, pod: Pod, name: str) -> None:
    """A Role reading the one Secret, bound to the pod's service account."""
    meta = {"name": f"read-{name}", "namespace": pod.namespace}
    rbac = "rbac.authorization.k8s.io/v1"
    rule = {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": ["get"]}
    sb.kube.store.create({"apiVersion": rbac, "kind": "Role", "metadata": meta, "rules": [rule]})
    sb.kube.store.create(
        {
            "apiVersion": rbac,
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": meta["name"],
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": pod.service_account, "namespace": pod.namespace}
            ],
        }
    )


@pytest.mark.parametrize("command", ["fetch", "run"])
def test_help_of_the_init_commands_imports_nothing_heavy(command: str) -> None:
    done = run_importtime([command, "--help"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"usage: secretsboot {command}" in done.stdout
    names = imported_modules(done.stderr)
    assert "secretsboot.fetch._cli" in names  # the probe sees our own modules
    assert forbidden_in(names) == []


def test_a_real_three_store_fetch_imports_nothing_heavy(sandbox: Any, tmp_path: Path) -> None:
    sb = sandbox
    pod: Pod = make_pod(sb, tmp_path)
    # Key Vault through workload identity
    vault = keyvault(sb)
    sb.azure.set_secret(vault, "db-password", "canary-kv-Hh31")
    workload_identity(sb, pod, vault)
    # Vault through kubernetes auth
    path = unique("imp")
    put_vault(sb, f"{path}/api", {"token": "canary-vault-Jj72"})
    vault_role(sb, pod, [f"secret/data/{path}/*"])
    # a Kubernetes Secret the service account may read
    name = unique("cache")
    sb.kube.store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": pod.namespace},
            "data": {"password": base64.b64encode(b"canary-k8s-Kk93").decode()},
        }
    )
    grant_secret_read(sb, pod, name)
    cfg = pod.write_config(
        config(
            pod,
            [
                {"name": "db", "from": f"keyvault://{vault}/db-password"},
                {"name": "api", "from": f"vault://secret/{path}/api#token"},
                {"name": "cache", "from": f"k8s://{name}#password"},
            ],
            sb=sb,
            identity="workload-identity",
        )
    )
    done = run_importtime(
        ["fetch", "--config", str(cfg), "--out", str(pod.out), "--timeout", "60"], pod.env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (pod.out / "db").read_text() == "canary-kv-Hh31"
    assert (pod.out / "api").read_text() == "canary-vault-Jj72"
    assert (pod.out / "cache").read_text() == "canary-k8s-Kk93"
    names = imported_modules(done.stderr)
    # the probe sees the fetch's own floors (what worker threads import may be missing
    # from -X importtime's log, so sys.modules is checked at exit too, below)
    assert {"secretsboot.fetch.runtime", "secretsboot.transport.client"} <= names
    assert forbidden_in(names) == []
    assert "canary" not in done.stderr
    # and every module any thread loaded, in the process itself
    listing = tmp_path / "modules.txt"
    again = subprocess.run(
        [sys.executable, "-c", PROBE, str(listing), "fetch", "--config", str(cfg),
         "--out", str(pod.out), "--timeout", "60"],
        env=pod.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    loaded = set(listing.read_text().split())
    assert {"secretsboot.backends.keyvault", "secretsboot.backends.vault"} <= loaded
    assert forbidden_in(loaded) == []
