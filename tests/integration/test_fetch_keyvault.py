"""``secretsboot fetch`` of ``keyvault://`` sources through the Azure fakes.

Every identity path: workload identity (the webhook's four variables), pod identity
(IMDS at ``AZURE_POD_IDENTITY_AUTHORITY_HOST``), a service principal.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fetch_support import (
    KEY_VAULT_SECRETS_USER,
    config,
    keyvault,
    listing,
    make_pod,
    run_cli,
    unique,
    workload_identity,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def azure(sandbox: Any) -> Any:
    if sandbox.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    return sandbox.azure


def _secrets(sb: Any, kv: str, n: int, tag: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    values = {f"kv-{i}": f"CANARY-7f3a-{tag}-{i}" for i in range(n)}
    for name, value in values.items():
        sb.azure.set_secret(kv, name, value)
    return [{"name": n, "from": f"keyvault://{kv}/{n}"} for n in values], values


def test_workload_identity(sandbox: Any, azure: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    workload_identity(sandbox, pod, kv)
    secrets, values = _secrets(sandbox, kv, 5, unique("wi"))
    secrets[0]["env"] = "FIRST_KEY"  # env-only: goes to the bundles, not to a file
    cfg = pod.write_config(config(pod, secrets, sb=sandbox, identity="workload-identity"))
    result = run_cli(
        [
            "fetch",
            *("--config", str(cfg), "--out", str(pod.out)),
            *("--dotenv", "app.env", "--json", "bundle.json"),
        ],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert listing(pod.out) == sorted(["app.env", "bundle.json", "kv-1", "kv-2", "kv-3", "kv-4"])
    assert (pod.out / "kv-3").read_text() == values["kv-3"]
    assert f'FIRST_KEY="{values["kv-0"]}"' in (pod.out / "app.env").read_text()
    assert f'KV_1="{values["kv-1"]}"' in (pod.out / "app.env").read_text()
    assert values["kv-0"] in (pod.out / "bundle.json").read_text()
    assert not any(v in result.stdout + result.stderr for v in values.values())


def test_pod_identity_through_imds(sandbox: Any, azure: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox, mode="access-policy")
    mi = azure.create_identity("rg", unique("pid-"))
    azure.add_access_policy(kv, mi.principal_id, ["get"])
    selector = unique("sel")
    azure.bind_pod_identity(mi, selector)
    secrets, values = _secrets(sandbox, kv, 2, unique("pid"))
    doc = config(pod, secrets, sb=sandbox, identity="pod-identity")
    doc["azure"]["clientId"] = mi.client_id
    pod.env["AZURE_POD_IDENTITY_AUTHORITY_HOST"] = azure.imds_url
    pod.env.pop("AZURE_FEDERATED_TOKEN_FILE")
    azure.set_imds_caller(selector)
    try:
        result = run_cli(
            ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
            pod.env,
        )
    finally:
        azure.set_imds_caller(None)
    assert result.returncode == 0, result.stderr
    assert (pod.out / "kv-1").read_text() == values["kv-1"]


def test_service_principal(sandbox: Any, azure: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    app_id = "00000000-0000-4000-8000-" + f"{abs(hash(unique('sp'))) % 10**12:012d}"
    object_id = azure.add_service_principal(app_id, "CANARY-sp-secret")
    azure.assign_role(azure.vault_id(kv), object_id, KEY_VAULT_SECRETS_USER)
    secrets, values = _secrets(sandbox, kv, 2, unique("sp"))
    pod.env.update({"AZURE_CLIENT_ID": app_id, "AZURE_CLIENT_SECRET": "CANARY-sp-secret"})
    doc = config(pod, secrets, sb=sandbox, identity="workload-identity")
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "kv-0").read_text() == values["kv-0"]
    assert "CANARY" not in result.stderr + result.stdout


def test_denied_without_grant_names_identity_and_fix(
    sandbox: Any, azure: Any, tmp_path: Path
) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    mi = workload_identity(sandbox, pod, kv, grant=False)
    secrets, _ = _secrets(sandbox, kv, 2, unique("deny"))
    doc = config(pod, secrets, sb=sandbox, identity="workload-identity")
    result = run_cli(
        [
            "fetch",
            *("-c", str(pod.write_config(doc)), "--out", str(pod.out)),
            *("--propagation-window", "0"),
        ],
        pod.env,
    )
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2  # one line per failing secret
    assert f"Key Vault {kv} denied workload identity {mi.client_id}" in lines[0]
    assert "Key Vault Secrets User" in lines[0]
    assert "secretsboot provision" in lines[0]
    assert listing(pod.out) == []


def test_missing_federated_credential_is_explained(
    sandbox: Any, azure: Any, tmp_path: Path
) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    mi = azure.create_identity("rg", unique("nofic-"))
    pod.env["AZURE_CLIENT_ID"] = mi.client_id
    secrets, _ = _secrets(sandbox, kv, 1, unique("fic"))
    doc = config(pod, secrets, sb=sandbox, identity="workload-identity")
    started = time.monotonic()
    result = run_cli(
        [
            "fetch",
            "-c",
            str(pod.write_config(doc)),
            "--out",
            str(pod.out),
            "--propagation-window",
            "1",
        ],
        pod.env,
    )
    assert result.returncode == 3
    subject = f"system:serviceaccount:{pod.namespace}:{pod.service_account}"
    assert f"federated credential for subject {subject} not found on workload identity" in (
        result.stderr
    )
    assert mi.client_id in result.stderr
    assert "run secretsboot provision" in result.stderr
    assert time.monotonic() - started >= 1.0, "AADSTS70021 is retried for the window"


def test_throttling_storm_is_survived_within_the_deadline(
    sandbox: Any, azure: Any, tmp_path: Path
) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    workload_identity(sandbox, pod, kv)
    secrets, values = _secrets(sandbox, kv, 20, unique("storm"))
    faults = azure.faults("keyvault")
    faults.throttle(rate_per_s=8, retry_after_s=1)
    try:
        started = time.monotonic()
        result = run_cli(
            [
                "fetch",
                "-c",
                str(
                    pod.write_config(config(pod, secrets, sb=sandbox, identity="workload-identity"))
                ),
                "--out",
                str(pod.out),
                "--timeout",
                "20",
                "-v",
            ],
            pod.env,
        )
        elapsed = time.monotonic() - started
    finally:
        faults.clear()
    assert result.returncode == 0, result.stderr
    assert "retry" in result.stderr  # it was throttled, and waited
    assert not any(v in result.stderr + result.stdout for v in values.values())
    assert listing(pod.out) == sorted(values)
    assert elapsed < 20
    statuses = [c.status for c in azure.apps[f"keyvault-{kv}"].calls]
    assert 429 in statuses


def test_key_vault_that_stays_down_fails_with_nothing_written(
    sandbox: Any, azure: Any, tmp_path: Path
) -> None:
    pod = make_pod(sandbox, tmp_path)
    kv = keyvault(sandbox)
    workload_identity(sandbox, pod, kv)
    secrets, _ = _secrets(sandbox, kv, 3, unique("down"))
    doc = config(pod, secrets, sb=sandbox, identity="workload-identity")
    faults = azure.faults("keyvault")
    faults.fail_next(1000, status=503)
    try:
        started = time.monotonic()
        result = run_cli(
            ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out), "--timeout", "2"],
            pod.env,
        )
    finally:
        faults.clear()
    assert result.returncode == 5, result.stderr
    assert "answered 503" in result.stderr
    assert time.monotonic() - started < 10
    assert listing(pod.out) == []
