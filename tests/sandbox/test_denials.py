"""The denial table: each denial of the sandbox, produced by the condition that produces it
in the real service, carries the real service's status and code.

==========================  ===========================================  ======================
denial                      condition                                    answer
==========================  ===========================================  ======================
Key Vault RBAC              RBAC vault, no data role at vault/secret     403 ForbiddenByRbac
Key Vault RBAC, fresh       role assigned over ARM, not yet propagated   403 ForbiddenByRbac
Key Vault access policy     access-policy vault, no ``get`` permission   403 AccessDenied
Key Vault firewall          network rules exclude the caller             403 ForbiddenByFirewall
Key Vault disabled secret   ``attributes.enabled: false``                403 SecretDisabled
Entra, no credential        the identity has no FIC                      401 AADSTS70021
Entra, issuer               no FIC has the token's issuer                401 AADSTS700211
Entra, audience             issuer and subject match, audience differs   401 AADSTS700212
Entra, subject              issuer matches, subject differs              401 AADSTS700213
Entra, subject case         subjects equal only when case is ignored     401 AADSTS7002138
Entra, fresh credential     FIC written over ARM, not yet propagated     401 AADSTS700213
Kubernetes RBAC             service account without a RoleBinding        403 Forbidden
Vault role binding          role bound to another service account        403 (OpenBao's own)
==========================  ===========================================  ======================

(Key Vault: outer code ``Forbidden``, the inner code shown; Entra: ``invalid_client``.)
Clients are the official ones (azure-keyvault-secrets, kubernetes, hvac) or, for the
token endpoint, the very form post azure-identity's WorkloadIdentityCredential sends.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER
from secretsboot.sandbox.stack import TEST_PROPAGATION

from .azure_helpers import read_or_denial, sp_principal, sp_secret_client

EXCHANGE = "api://AzureADTokenExchange"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CANARY = "CANARY-denial-" + uuid.uuid4().hex[:8]


def _name(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:8]


def _service_accounts(sb: Any, ns: str, *names: str) -> None:
    """Namespace ``ns`` with service accounts ``names`` in the Kubernetes fake."""
    store = sb.kube.store
    store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    for sa in names:
        store.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": sa, "namespace": ns},
            }
        )


@pytest.fixture
def sb(sandbox: Any) -> Iterator[Any]:
    if sandbox.azure is None or sandbox.kube is None or sandbox.vault is None:
        pytest.skip("the denial table needs the whole sandbox")
    yield sandbox
    sandbox.azure.set_propagation(*TEST_PROPAGATION)


# ---- Key Vault ------------------------------------------------------------------------


def _kv_denial(sb: Any, mode: str, setup: Callable[[Any, str, str], None]) -> tuple[int, str]:
    az = sb.azure
    vault = _name("deny")
    az.create_keyvault(vault, mode=mode)
    az.set_secret(vault, "db", CANARY)
    app_id, oid = sp_principal(az)
    setup(az, vault, oid)
    try:
        with sp_secret_client(az, sb.ca_path, vault, app_id) as client:
            return read_or_denial(client, "db")
    finally:
        az.set_keyvault_firewall(vault, closed=False)


def _no_role(az: Any, vault: str, oid: str) -> None:
    az.assign_role(az.vault_id(vault), oid, "acdd72a7-3385-48ef-bd42-f606fba81ae7")  # Reader


def _fresh_role(az: Any, vault: str, oid: str) -> None:
    az.set_propagation(30.0, 30.0)
    az.state.assign_role(az.vault_id(vault), oid, KEY_VAULT_SECRETS_USER, propagate=True)


def _policy_without_get(az: Any, vault: str, oid: str) -> None:
    az.assign_role(az.vault_id(vault), oid, KEY_VAULT_SECRETS_USER)  # ignored in this mode
    az.add_access_policy(vault, oid, ["list", "set"])


def _firewall(az: Any, vault: str, oid: str) -> None:
    az.assign_role(az.vault_id(vault), oid, KEY_VAULT_SECRETS_USER)
    az.set_keyvault_firewall(vault, closed=True)


def _disabled(az: Any, vault: str, oid: str) -> None:
    az.assign_role(az.vault_id(vault), oid, KEY_VAULT_SECRETS_USER)
    az.state.get_vault(vault).secrets["db"][-1].enabled = False


KEY_VAULT_ROWS = [
    ("rbac-no-role", "rbac", _no_role, "ForbiddenByRbac"),
    ("rbac-fresh-grant", "rbac", _fresh_role, "ForbiddenByRbac"),
    ("access-policy-no-get", "access-policy", _policy_without_get, "AccessDenied"),
    ("firewall", "rbac", _firewall, "ForbiddenByFirewall"),
    ("disabled-secret", "rbac", _disabled, "SecretDisabled"),
]


@pytest.mark.parametrize(
    ("mode", "setup", "inner"),
    [row[1:] for row in KEY_VAULT_ROWS],
    ids=[row[0] for row in KEY_VAULT_ROWS],
)
def test_key_vault_denials(
    sb: Any, mode: str, setup: Callable[[Any, str, str], None], inner: str
) -> None:
    assert _kv_denial(sb, mode, setup) == (403, inner)


# ---- Entra ID ---------------------------------------------------------------------------


def _exchange(sb: Any, client_id: str, assertion: str) -> tuple[int, dict[str, Any]]:
    """The client-credentials request WorkloadIdentityCredential sends."""
    az = sb.azure
    resp = requests.post(
        f"{az.authority_host}/{az.tenant_id}/oauth2/v2.0/token",
        data={
            "client_id": client_id,
            "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default",
            "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion,
        },
        verify=str(sb.ca_path),
        timeout=10,
    )
    return resp.status_code, resp.json()


def _entra_denial(sb: Any, fic: dict[str, Any] | None, token_audience: str = EXCHANGE) -> Any:
    az, kube = sb.azure, sb.kube
    ns, sa = _name("ns-"), "reader"
    _service_accounts(sb, ns, sa)
    mi = az.create_identity("rg", _name("deny-"))
    if fic is not None:
        propagate = fic.pop("propagate", False)
        values = {"issuer": kube.oidc_issuer, "subject": f"system:serviceaccount:{ns}:{sa}"}
        values.update({k: v.format(ns=ns, sa=sa) for k, v in fic.items()})
        az.state.add_federated_credential(
            mi.id, "fic", values["issuer"], values["subject"], [EXCHANGE], propagate=propagate
        )
    return _exchange(sb, mi.client_id, kube.mint_token(ns, sa, [token_audience]))


ENTRA_ROWS: list[tuple[str, dict[str, Any] | None, str, int]] = [
    ("no-credential", None, EXCHANGE, 70021),
    ("issuer", {"issuer": "https://oidc.example.invalid/other-cluster"}, EXCHANGE, 700211),
    ("audience", {}, "api://SomethingElse", 700212),
    ("subject", {"subject": "system:serviceaccount:{ns}:writer"}, EXCHANGE, 700213),
    ("subject-case", {"subject": "system:serviceaccount:{ns}:Reader"}, EXCHANGE, 7002138),
    ("fresh-credential", {"propagate": True}, EXCHANGE, 700213),
]


@pytest.mark.parametrize(
    ("fic", "audience", "code"),
    [row[1:] for row in ENTRA_ROWS],
    ids=[row[0] for row in ENTRA_ROWS],
)
def test_entra_federated_credential_denials(
    sb: Any, fic: dict[str, Any] | None, audience: str, code: int
) -> None:
    if fic is not None and fic.get("propagate"):
        sb.azure.set_propagation(30.0, 30.0)
    status, body = _entra_denial(sb, dict(fic) if fic is not None else None, audience)
    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def test_entra_accepts_the_matching_credential(sb: Any) -> None:
    """The control row: the same setup with everything matching gets a token."""
    status, body = _entra_denial(sb, {})
    assert status == 200 and body["token_type"] == "Bearer"


# ---- Kubernetes RBAC and Vault role binding -------------------------------------------


def test_kubernetes_rbac_denial(sb: Any) -> None:
    from kubernetes import client as k8s

    ns, sa = _name("ns-"), "nobody"
    _service_accounts(sb, ns, sa)
    config = k8s.Configuration()
    config.host = sb.kube.url
    config.ssl_ca_cert = str(sb.ca_path)
    config.api_key = {"authorization": "Bearer " + sb.kube.app.mint_token(ns, sa, None, 600)}
    with k8s.ApiClient(config) as api, pytest.raises(k8s.ApiException) as info:
        k8s.CoreV1Api(api).read_namespaced_secret("db", ns)
    assert info.value.status == 403
    status = json.loads(info.value.body)
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403)
    assert status["message"] == (
        f'secrets "db" is forbidden: User "system:serviceaccount:{ns}:{sa}" cannot get '
        f'resource "secrets" in API group "" in the namespace "{ns}"'
    )


def test_vault_role_binding_denial(sb: Any) -> None:
    import hvac
    import hvac.exceptions

    ns = _name("ns-")
    _service_accounts(sb, ns, "bound", "other")
    role = _name("role-")
    sb.vault.request(
        "POST",
        f"auth/kubernetes/role/{role}",
        {
            "bound_service_account_names": ["bound"],
            "bound_service_account_namespaces": [ns],
            "token_policies": ["default"],
            "ttl": "1m",
        },
    )
    client = hvac.Client(url=sb.vault.address, verify=str(sb.ca_path))
    bound = client.auth.kubernetes.login(role, sb.kube.app.mint_token(ns, "bound", None, 600))
    assert bound["auth"]["client_token"]
    with pytest.raises(hvac.exceptions.Forbidden) as info:
        client.auth.kubernetes.login(role, sb.kube.app.mint_token(ns, "other", None, 600))
    assert "service account name not authorized" in str(info.value)


def test_the_firewall_fault_closes_every_vault_until_opened(sb: Any) -> None:
    """``secretsboot sandbox fault keyvault --firewall closed|open`` (the control command)."""
    from secretsboot.sandbox.stack import apply_fault

    def closed(az: Any, vault: str, oid: str) -> None:
        _granted(az, vault, oid)
        apply_fault(sb, {"component": "keyvault", "action": "firewall", "closed": True})

    try:
        assert _kv_denial(sb, "rbac", closed) == (403, "ForbiddenByFirewall")
    finally:
        apply_fault(sb, {"component": "keyvault", "action": "firewall", "closed": False})
    assert _kv_denial(sb, "rbac", _granted) == (200, "allowed")  # opened again


def _granted(az: Any, vault: str, oid: str) -> None:
    az.assign_role(az.vault_id(vault), oid, KEY_VAULT_SECRETS_USER)
