"""The ARM fake through the management SDKs' own flows: Key Vault soft delete, recover and
purge; managed identity + federated credential CRUD; role assignment CRUD; systemData;
and the propagation delay of grants written over ARM (endpoint, credential and CA only)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.keyvault import models as kvm
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER, AzureFakes
from secretsboot.sandbox.pki import CertificateAuthority

from . import azure_helpers
from .azure_helpers import read_or_denial, sp_credential, sp_principal, sp_secret_client

azure_dir, ca, az = azure_helpers.azure_dir, azure_helpers.ca, azure_helpers.az

ARM_SCOPE = "https://management.azure.com/.default"
CANARY = "CANARY-arm-" + uuid.uuid4().hex[:8]
ISSUER = "https://oidc.example.invalid/cluster"  # stored only


@pytest.fixture(scope="module")
def admin_app(az: AzureFakes) -> str:
    return sp_principal(az)[0]


@pytest.fixture(scope="module")
def mgmt(az: AzureFakes, ca: CertificateAuthority, admin_app: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "base_url": az.arm_url,
        "credential_scopes": [ARM_SCOPE],
        "connection_verify": str(ca.ca_path),
        "retry_total": 0,
    }
    cred = sp_credential(az, ca.ca_path, admin_app)
    return {
        "kv": KeyVaultManagementClient(cred, az.subscription_id, **kwargs),
        "msi": ManagedServiceIdentityClient(cred, az.subscription_id, **kwargs),
        "authz": AuthorizationManagementClient(cred, az.subscription_id, **kwargs),
    }


@pytest.fixture
def propagation(az: AzureFakes) -> Iterator[tuple[float, float]]:
    window = (0.3, 0.6)
    az.set_propagation(*window)
    yield window
    az.set_propagation(0.0, 0.0)


def _create_vault(client: KeyVaultManagementClient, az: AzureFakes, name: str, **props: Any) -> Any:
    return client.vaults.begin_create_or_update(
        "rg",
        name,
        kvm.VaultCreateOrUpdateParameters(
            location="eastus",
            properties=kvm.VaultProperties(
                tenant_id=az.tenant_id, sku=kvm.Sku(family="A", name="standard"), **props
            ),
        ),
        polling_interval=0,
    ).result()


def test_deleted_vault_keeps_its_name_until_purged(
    az: AzureFakes, mgmt: dict[str, Any], admin_app: str
) -> None:
    client: KeyVaultManagementClient = mgmt["kv"]
    vault = _create_vault(client, az, "soft-kv", enable_rbac_authorization=True)
    assert vault.system_data.created_by == admin_app
    assert vault.system_data.created_by_type == "Application"
    assert vault.system_data.created_at is not None
    client.vaults.delete("rg", "soft-kv")
    with pytest.raises(ResourceNotFoundError):
        client.vaults.get("rg", "soft-kv")

    deleted = {d.name: d for d in client.vaults.list_deleted()}
    assert deleted["soft-kv"].properties.vault_id == (
        f"/subscriptions/{az.subscription_id}/resourceGroups/rg"
        "/providers/Microsoft.KeyVault/vaults/soft-kv"
    )
    one = client.vaults.get_deleted("soft-kv", "eastus")
    assert one.properties.location == "eastus"
    assert one.properties.deletion_date and one.properties.scheduled_purge_date

    with pytest.raises(HttpResponseError) as taken:  # the name is held
        _create_vault(client, az, "soft-kv", enable_rbac_authorization=True)
    assert taken.value.status_code == 409
    assert taken.value.error is not None and taken.value.error.code == "ConflictError"
    assert "already exists in deleted state" in str(taken.value)

    client.vaults.begin_purge_deleted("soft-kv", "eastus", polling_interval=0).result()
    assert "soft-kv" not in {d.name for d in client.vaults.list_deleted()}
    again = _create_vault(client, az, "soft-kv", enable_rbac_authorization=True)
    assert again.name == "soft-kv"


def test_recovered_vault_comes_back_with_its_secrets(
    az: AzureFakes, mgmt: dict[str, Any], ca: CertificateAuthority
) -> None:
    client: KeyVaultManagementClient = mgmt["kv"]
    _create_vault(client, az, "recover-kv", enable_rbac_authorization=True)
    app_id, oid = sp_principal(az)
    az.assign_role(az.vault_id("recover-kv"), oid, KEY_VAULT_SECRETS_USER)
    az.set_secret("recover-kv", "db", CANARY)
    client.vaults.delete("rg", "recover-kv")
    recovered = _create_vault(client, az, "recover-kv", create_mode="recover")
    assert recovered.name == "recover-kv"
    with sp_secret_client(az, ca.ca_path, "recover-kv", app_id) as secrets:
        assert secrets.get_secret("db").value == CANARY


def test_managed_identity_and_federated_credential_flow(
    mgmt: dict[str, Any], admin_app: str
) -> None:
    msi: ManagedServiceIdentityClient = mgmt["msi"]
    created = msi.user_assigned_identities.create_or_update(
        "rg", "flow-mi", Identity(location="eastus", tags={"app": "flow"})
    )
    assert created.system_data.created_by == admin_app
    updated = msi.user_assigned_identities.update("rg", "flow-mi", {"tags": {"app": "flow2"}})
    assert updated.tags == {"app": "flow2"}
    assert "flow-mi" in {i.name for i in msi.user_assigned_identities.list_by_subscription()}
    assert "flow-mi" in {i.name for i in msi.user_assigned_identities.list_by_resource_group("rg")}

    fic = msi.federated_identity_credentials.create_or_update(
        "rg",
        "flow-mi",
        "flow-fic",
        FederatedIdentityCredential(
            issuer=ISSUER,
            subject="system:serviceaccount:shop:flow",
            audiences=["api://AzureADTokenExchange"],
        ),
    )
    assert fic.system_data.created_by == admin_app
    got = msi.federated_identity_credentials.get("rg", "flow-mi", "flow-fic")
    assert (got.issuer, got.subject) == (ISSUER, "system:serviceaccount:shop:flow")
    assert [f.name for f in msi.federated_identity_credentials.list("rg", "flow-mi")] == [
        "flow-fic"
    ]
    msi.federated_identity_credentials.delete("rg", "flow-mi", "flow-fic")
    assert list(msi.federated_identity_credentials.list("rg", "flow-mi")) == []
    msi.user_assigned_identities.delete("rg", "flow-mi")
    with pytest.raises(ResourceNotFoundError):
        msi.user_assigned_identities.get("rg", "flow-mi")


def test_role_assignment_flow(az: AzureFakes, mgmt: dict[str, Any]) -> None:
    authz: AuthorizationManagementClient = mgmt["authz"]
    scope = f"/subscriptions/{az.subscription_id}/resourceGroups/rg"
    found = list(authz.role_definitions.list(scope, filter="roleName eq 'Key Vault Secrets User'"))
    assert [d.name for d in found] == [KEY_VAULT_SECRETS_USER]
    oid = az.add_service_principal(str(uuid.uuid4()), "unused")
    name = str(uuid.uuid4())
    created = authz.role_assignments.create(
        scope,
        name,
        RoleAssignmentCreateParameters(
            role_definition_id=found[0].id, principal_id=oid, principal_type="ServicePrincipal"
        ),
    )
    assert created.name == name and created.principal_id == oid
    assert authz.role_assignments.get(scope, name).role_definition_id == found[0].id
    listed = list(authz.role_assignments.list_for_scope(scope, filter=f"principalId eq '{oid}'"))
    assert [a.name for a in listed] == [name]
    authz.role_assignments.delete(scope, name)
    with pytest.raises(ResourceNotFoundError):
        authz.role_assignments.get(scope, name)


def _denied_then_read(
    az: AzureFakes, ca: CertificateAuthority, vault: str, app_id: str, inner: str
) -> float:
    """The first read is denied with ``inner``; then reads are retried until one
    succeeds (within 5 s). Returns the seconds from the denial to the read."""
    with sp_secret_client(az, ca.ca_path, vault, app_id) as secrets:
        assert read_or_denial(secrets, "db") == (403, inner)
        t0 = time.monotonic()
        while read_or_denial(secrets, "db") != (200, "allowed"):
            assert time.monotonic() - t0 < 5.0, "the grant never took effect"
            time.sleep(0.05)
        assert secrets.get_secret("db").value == CANARY
        return time.monotonic() - t0


def test_a_role_assignment_over_arm_takes_effect_after_the_propagation_delay(
    az: AzureFakes,
    ca: CertificateAuthority,
    mgmt: dict[str, Any],
    propagation: tuple[float, float],
) -> None:
    az.create_keyvault("late-rbac-kv")
    az.set_secret("late-rbac-kv", "db", CANARY)
    app_id, oid = sp_principal(az)
    authz: AuthorizationManagementClient = mgmt["authz"]
    role = authz.role_definitions.get(az.vault_id("late-rbac-kv"), KEY_VAULT_SECRETS_USER)
    t0 = time.monotonic()
    authz.role_assignments.create(
        az.vault_id("late-rbac-kv"),
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id=role.id, principal_id=oid),
    )
    _denied_then_read(az, ca, "late-rbac-kv", app_id, "ForbiddenByRbac")
    assert propagation[0] <= time.monotonic() - t0 <= propagation[1] + 3.0


def test_an_access_policy_over_arm_takes_effect_after_the_propagation_delay(
    az: AzureFakes,
    ca: CertificateAuthority,
    mgmt: dict[str, Any],
    propagation: tuple[float, float],
) -> None:
    client: KeyVaultManagementClient = mgmt["kv"]
    _create_vault(client, az, "late-policy-kv", enable_rbac_authorization=False)
    az.set_secret("late-policy-kv", "db", CANARY)
    app_id, oid = sp_principal(az)
    client.vaults.update_access_policy(
        "rg",
        "late-policy-kv",
        "add",
        kvm.VaultAccessPolicyParameters(
            properties=kvm.VaultAccessPolicyProperties(
                access_policies=[
                    kvm.AccessPolicyEntry(
                        tenant_id=az.tenant_id,
                        object_id=oid,
                        permissions=kvm.Permissions(secrets=["get"]),
                    )
                ]
            )
        ),
    )
    # ARM shows the policy at once; Key Vault honours it only after the delay
    policies = client.vaults.get("rg", "late-policy-kv").properties.access_policies
    assert [p.object_id for p in policies] == [oid]
    assert _denied_then_read(az, ca, "late-policy-kv", app_id, "AccessDenied") <= (
        propagation[1] + 3.0
    )


def test_a_fresh_identity_needs_principal_type_until_its_principal_replicates(
    az: AzureFakes,
    ca: CertificateAuthority,
    mgmt: dict[str, Any],
    admin_app: str,
    propagation: tuple[float, float],
) -> None:
    """ARM's replication delay: assigning a role to a just-created identity with a body
    that has no ``principalType`` (a REST caller's; the SDK's model always sends one) is
    400 PrincipalNotFound; with it (as provision does) it is accepted."""
    msi: ManagedServiceIdentityClient = mgmt["msi"]
    authz: AuthorizationManagementClient = mgmt["authz"]
    az.set_propagation(10.0, 10.0)  # far longer than the next requests, even under load
    mi = msi.user_assigned_identities.create_or_update(
        "rg", "fresh-mi", Identity(location="eastus")
    )
    scope = f"/subscriptions/{az.subscription_id}/resourceGroups/rg"
    role = authz.role_definitions.get(scope, KEY_VAULT_SECRETS_USER)
    token = sp_credential(az, ca.ca_path, admin_app).get_token(ARM_SCOPE).token
    url = (
        f"{az.arm_url}{scope}/providers/Microsoft.Authorization/roleAssignments/"
        f"{uuid.uuid4()}?api-version=2022-04-01"
    )
    body = {"properties": {"roleDefinitionId": role.id, "principalId": mi.principal_id}}
    refused = requests.put(
        url,
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(ca.ca_path),
        timeout=10,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "PrincipalNotFound"
    assert "replication delay" in refused.json()["error"]["message"]
    created = authz.role_assignments.create(
        scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=role.id,
            principal_id=mi.principal_id,
            principal_type="ServicePrincipal",
        ),
    )
    assert created.principal_id == mi.principal_id
