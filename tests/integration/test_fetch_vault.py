"""``secretsboot fetch`` against the real OpenBao of the sandbox (kubernetes and jwt auth)."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest
from fetch_support import config, listing, make_pod, put_vault, run_cli, unique, vault_role

pytestmark = [pytest.mark.integration, pytest.mark.openbao]


def _token_count(sb: Any) -> int:
    reply = sb.vault.request("LIST", "auth/token/accessors")
    return len(reply["data"]["keys"])


def test_kubernetes_auth_kv2_files_modes_and_token_revoked(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("app")
    vault_role(sandbox, pod, [f"secret/data/{base}/*"])
    canaries = {f"s{i}": f"CANARY-7f3a-{base}-{i}" for i in range(4)}
    for name, value in canaries.items():
        put_vault(sandbox, f"{base}/{name}", {"password": value})
    secrets = [{"name": n, "from": f"vault://secret/{base}/{n}#password"} for n in canaries]
    secrets[1]["mode"] = "0440"
    cfg = pod.write_config(config(pod, secrets, sb=sandbox))
    before = _token_count(sandbox)

    result = run_cli(["fetch", "--config", str(cfg), "--out", str(pod.out)], pod.env)

    assert result.returncode == 0, result.stderr
    assert listing(pod.out) == sorted(canaries)
    for name, value in canaries.items():
        assert (pod.out / name).read_text() == value
    assert stat.S_IMODE(os.stat(pod.out / "s0").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(pod.out / "s1").st_mode) == 0o440
    assert _token_count(sandbox) == before, "the login token must be revoked (revoke-self)"
    for value in canaries.values():
        assert value not in result.stdout + result.stderr


def test_kv_version_1(sandbox: Any, tmp_path: Path) -> None:
    mount = unique("kv1")
    sandbox.vault.request(
        "POST", f"sys/mounts/{mount}", {"type": "kv", "options": {"version": "1"}}
    )
    pod = make_pod(sandbox, tmp_path)
    vault_role(sandbox, pod, [f"{mount}/*"])
    sandbox.vault.request("POST", f"{mount}/db", {"password": "CANARY-kv1"})
    doc = config(pod, [{"name": "db", "from": f"vault://{mount}/db#password"}], sb=sandbox)
    doc["vault"]["kvVersion"] = 1
    out = pod.folder / "out"
    result = run_cli(["fetch", "-c", str(pod.write_config(doc)), "--out", str(out)], pod.env)
    assert result.returncode == 0, result.stderr
    assert (out / "db").read_text() == "CANARY-kv1"


def test_jwt_auth_with_a_service_account_token(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    # a projected token whose audience is the Vault role's ("vault")
    jwt_file = pod.folder / "vault-token"
    jwt_file.write_text(sandbox.kube.mint_token(pod.namespace, pod.service_account, ["vault"]))
    base = unique("jwt")
    vault_role(sandbox, pod, [f"secret/data/{base}/*"], mount="jwt")
    put_vault(sandbox, f"{base}/api", {"key": "CANARY-jwt"})
    doc = config(pod, [{"name": "api-key", "from": f"vault://secret/{base}/api#key"}], sb=sandbox)
    doc["vault"]["auth"] = {
        "method": "jwt",
        "mount": "jwt",
        "role": pod.service_account,
        "tokenPath": str(jwt_file),
    }
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "api-key").read_text() == "CANARY-jwt"


def test_vault_denial_names_role_and_fix_and_writes_nothing(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    base = unique("deny")
    vault_role(sandbox, pod, [f"secret/data/{base}/allowed"])
    put_vault(sandbox, f"{base}/allowed", {"v": "CANARY-ok"})
    put_vault(sandbox, f"{base}/forbidden", {"v": "CANARY-no"})
    doc = config(
        pod,
        [
            {"name": "ok", "from": f"vault://secret/{base}/allowed#v"},
            {"name": "no", "from": f"vault://secret/{base}/forbidden#v"},
        ],
        sb=sandbox,
    )
    result = run_cli(["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)], pod.env)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "secret 'no'" in lines[0]
    assert f"Vault role '{pod.service_account}'" in lines[0]
    assert "policy" in lines[0]
    assert listing(pod.out) == []
    assert "CANARY" not in result.stderr + result.stdout


def test_wrong_role_binding_fails_login_with_hint(sandbox: Any, tmp_path: Path) -> None:
    pod = make_pod(sandbox, tmp_path)
    other = make_pod(sandbox, tmp_path)
    base = unique("bind")
    vault_role(sandbox, other, [f"secret/data/{base}/*"])  # bound to another service account
    put_vault(sandbox, f"{base}/x", {"v": "CANARY-bind"})
    doc = config(pod, [{"name": "x", "from": f"vault://secret/{base}/x#v"}], sb=sandbox)
    doc["vault"]["auth"]["role"] = other.service_account
    result = run_cli(["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)], pod.env)
    assert result.returncode == 3, result.stderr
    assert "Vault login" in result.stderr
    assert "secretsboot provision" in result.stderr
    assert listing(pod.out) == []


def test_jwt_auth_with_an_entra_token_of_the_workload_identity(
    sandbox: Any, tmp_path: Path
) -> None:
    if sandbox.azure is None:
        pytest.skip("the sandbox has no Azure fakes")
    from fetch_support import keyvault, workload_identity

    azure = sandbox.azure
    issuer = f"{azure.authority_host}/{azure.tenant_id}/v2.0"
    mount = unique("jwt-entra")
    sandbox.vault.request("POST", f"sys/auth/{mount}", {"type": "jwt"})
    sandbox.vault.request(
        "POST",
        f"auth/{mount}/config",
        {"oidc_discovery_url": issuer, "oidc_discovery_ca_pem": Path(sandbox.ca_path).read_text()},
    )
    pod = make_pod(sandbox, tmp_path)
    mi = workload_identity(sandbox, pod, keyvault(sandbox), grant=False)
    base = unique("entra")
    sandbox.vault.request(
        "PUT",
        f"sys/policies/acl/{base}",
        {"policy": f'path "secret/data/{base}/*" {{ capabilities = ["read"] }}'},
    )
    sandbox.vault.request(
        "POST",
        f"auth/{mount}/role/{base}",
        {
            "role_type": "jwt",
            "bound_audiences": ["api://AzureADTokenExchange"],
            "user_claim": "oid",
            "bound_claims": {"oid": mi.principal_id},
            "token_policies": [base],
            "ttl": "5m",
        },
    )
    put_vault(sandbox, f"{base}/db", {"password": "CANARY-entra-jwt"})
    doc = config(pod, [{"name": "db", "from": f"vault://secret/{base}/db#password"}], sb=sandbox)
    doc["identity"] = "workload-identity"
    doc["azure"] = {"tenantId": azure.tenant_id, "authorityHost": azure.authority_host}
    doc["vault"]["auth"] = {"method": "jwt", "mount": mount, "role": base, "jwtSource": "entra"}
    result = run_cli(
        ["fetch", "-c", str(pod.write_config(doc)), "--out", str(pod.out)],
        pod.env,
    )
    assert result.returncode == 0, result.stderr
    assert (pod.out / "db").read_text() == "CANARY-entra-jwt"
