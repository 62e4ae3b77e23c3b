"""Propagation windows in the shared sandbox: a federated credential and a role assignment
written over ARM (with the official management clients, as the operator) take effect
only after a random delay, and ``secretsboot fetch`` started right away rides the window
out with its propagation retries (Entra's AADSTS700213, then Key Vault's ForbiddenByRbac)
and succeeds. The fakes' request logs show the denials that were retried."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity import ClientSecretCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

from secretsboot.errors import BadInputError
from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER
from secretsboot.sandbox.stack import TEST_PROPAGATION, parse_propagation

CANARY = "CANARY-propagation-" + uuid.uuid4().hex[:8]
# longer than a fetch process takes to start, and the role assignment's later than the
# credential's: both denials (Entra's, then Key Vault's) are certain
FIC_WINDOW = (1.5, 2.0)
ROLE_WINDOW = (3.0, 3.5)


@pytest.fixture
def azure(sandbox: Any) -> Iterator[Any]:
    if sandbox.azure is None or sandbox.kube is None:
        pytest.skip("the sandbox has no Azure or Kubernetes fakes")
    assert sandbox.azure.state.propagation_range == TEST_PROPAGATION  # on by default
    sandbox.azure.set_propagation(*FIC_WINDOW)
    try:
        yield sandbox.azure
    finally:
        sandbox.azure.set_propagation(*TEST_PROPAGATION)


def _mgmt(sb: Any) -> tuple[ManagedServiceIdentityClient, AuthorizationManagementClient]:
    az, op = sb.azure, sb.operator
    cred = ClientSecretCredential(
        az.tenant_id,
        op.client_id,
        op.client_secret,
        authority=az.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(sb.ca_path),
    )
    kwargs: dict[str, Any] = {
        "base_url": az.arm_url,
        "credential_scopes": ["https://management.azure.com/.default"],
        "connection_verify": str(sb.ca_path),
    }
    return (
        ManagedServiceIdentityClient(cred, az.subscription_id, **kwargs),
        AuthorizationManagementClient(cred, az.subscription_id, **kwargs),
    )


def _pod(sb: Any, tmp: Path) -> tuple[str, str, dict[str, str]]:
    ns, sa = "prop-" + uuid.uuid4().hex[:8], "reader"
    sb.kube.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sb.kube.store.create(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa, "namespace": ns}}
    )
    token = tmp / "azure-identity-token"
    token.write_text(sb.kube.mint_token(ns, sa, ["api://AzureADTokenExchange"]))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "SSL_CERT_FILE": str(sb.ca_path),
        "AZURE_FEDERATED_TOKEN_FILE": str(token),
        "AZURE_TENANT_ID": sb.azure.tenant_id,
        "AZURE_AUTHORITY_HOST": sb.azure.authority_host,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return ns, sa, env


def test_fetch_right_after_provisioning_over_arm_retries_until_the_grants_propagate(
    sandbox: Any, azure: Any, tmp_path: Path
) -> None:
    ns, sa, env = _pod(sandbox, tmp_path)
    vault = "prop" + uuid.uuid4().hex[:8]
    azure.create_keyvault(vault)
    azure.set_secret(vault, "db", CANARY)
    msi, authz = _mgmt(sandbox)
    name = "prop-" + uuid.uuid4().hex[:8]
    mi = msi.user_assigned_identities.create_or_update("rg", name, Identity(location="eastus"))
    msi.federated_identity_credentials.create_or_update(
        "rg",
        name,
        "fic",
        FederatedIdentityCredential(
            issuer=sandbox.kube.oidc_issuer,
            subject=f"system:serviceaccount:{ns}:{sa}",
            audiences=["api://AzureADTokenExchange"],
        ),
    )
    azure.set_propagation(*ROLE_WINDOW)
    role = authz.role_definitions.get(azure.vault_id(vault), KEY_VAULT_SECRETS_USER)
    authz.role_assignments.create(
        azure.vault_id(vault),
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=role.id,
            principal_id=mi.principal_id,
            principal_type="ServicePrincipal",
        ),
    )
    granted = time.monotonic()
    entra_before, kv_app = len(azure.entra.calls), azure.apps[f"keyvault-{vault}"]
    env["AZURE_CLIENT_ID"] = mi.client_id
    config = tmp_path / "fetch.json"
    config.write_text(
        json.dumps(
            {
                "apiVersion": "secretsboot/v1",
                "kind": "FetchConfig",
                "namespace": ns,
                "serviceAccount": sa,
                "identity": "workload-identity",
                "secrets": [{"name": "db", "from": f"keyvault://{vault}/db"}],
                "azure": {
                    "tenantId": azure.tenant_id,
                    "authorityHost": azure.authority_host,
                    "keyVaults": {vault: azure.keyvault_url(vault)},
                },
            }
        )
    )
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "secretsboot", "fetch", "-c", str(config), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - granted
    assert done.returncode == 0, done.stderr
    assert (out / "db").read_text() == CANARY
    assert CANARY not in done.stdout + done.stderr
    # the token exchange was refused while the FIC propagated (AADSTS700213: 401), then not
    token_calls = [c.status for c in azure.entra.calls[entra_before:] if c.path.endswith("/token")]
    assert 401 in token_calls and token_calls[-1] == 200, token_calls
    # Key Vault answered 403 at least once before the role assignment propagated, then 200
    reads = [c.status for c in kv_app.calls if c.path.startswith("/secrets/db") and c.status != 401]
    assert 403 in reads and reads[-1] == 200, reads
    assert took >= ROLE_WINDOW[0], took


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1-8", (1.0, 8.0)), ("0", (0.0, 0.0)), ("0.2-1", (0.2, 1.0)), ("3", (3.0, 3.0))],
)
def test_propagation_ranges_parse(text: str, expected: tuple[float, float]) -> None:
    assert parse_propagation(text) == expected


@pytest.mark.parametrize("text", ["8-1", "-1", "soon", "1-x", "99999"])
def test_a_bad_propagation_range_is_bad_input(text: str) -> None:
    with pytest.raises(BadInputError, match="--propagation"):
        parse_propagation(text)
