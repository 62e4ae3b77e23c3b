"""The ARM fake driven by the official management clients (endpoint and CA only)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import requests
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
)
from azure.identity import ClientSecretCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.mgmt.keyvault import KeyVaultManagementClient
from azure.mgmt.keyvault import models as kvm
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential, Identity

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_USER, AzureFakes
from secretsboot.sandbox.pki import CertificateAuthority

from . import azure_helpers

# the shared module-scoped fixtures (pytest finds fixtures by their module-level name)
azure_dir, ca, az, clear_faults = (
    azure_helpers.azure_dir,
    azure_helpers.ca,
    azure_helpers.az,
    azure_helpers.clear_faults,
)

ARM_SCOPE = "https://management.azure.com/.default"
ISSUER = "https://oidc.example.invalid/cluster"  # a FIC only stores it: never fetched here


@pytest.fixture(scope="module")
def admin(az: AzureFakes, ca: CertificateAuthority) -> Iterator[ClientSecretCredential]:
    app_id = str(uuid.uuid4())
    az.add_service_principal(app_id, "admin-secret")
    cred = ClientSecretCredential(
        az.tenant_id,
        app_id,
        "admin-secret",
        authority=az.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(ca.ca_path),
    )
    yield cred
    cred.close()


def mgmt_kwargs(az: AzureFakes, ca: CertificateAuthority) -> dict[str, object]:
    return {
        "base_url": az.arm_url,
        "credential_scopes": [ARM_SCOPE],
        "connection_verify": str(ca.ca_path),
        "retry_total": 0,
    }


@pytest.fixture(scope="module")
def msi(
    az: AzureFakes, ca: CertificateAuthority, admin: ClientSecretCredential
) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(admin, az.subscription_id, **mgmt_kwargs(az, ca))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def authz(
    az: AzureFakes, ca: CertificateAuthority, admin: ClientSecretCredential
) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(admin, az.subscription_id, **mgmt_kwargs(az, ca))  # type: ignore[arg-type]


def test_identity_and_federated_credentials_up_to_the_cap(
    az: AzureFakes, msi: ManagedServiceIdentityClient
) -> None:
    created = msi.user_assigned_identities.create_or_update(
        "rg", "payments", Identity(location="westeurope")
    )
    assert created.client_id and created.principal_id
    assert created.tenant_id == az.tenant_id
    assert created.id == az.state.identity_id("rg", "payments")
    again = msi.user_assigned_identities.get("rg", "payments")
    assert again.client_id == created.client_id  # idempotent PUT keeps the ids
    assert "payments" in [i.name for i in msi.user_assigned_identities.list_by_resource_group("rg")]

    for i in range(20):
        fic = msi.federated_identity_credentials.create_or_update(
            "rg",
            "payments",
            f"fic-{i:02d}",
            FederatedIdentityCredential(
                issuer=ISSUER,
                subject=f"system:serviceaccount:ns{i}:payments",
                audiences=["api://AzureADTokenExchange"],
            ),
        )
        assert fic.subject == f"system:serviceaccount:ns{i}:payments"
    with pytest.raises(HttpResponseError) as info:
        msi.federated_identity_credentials.create_or_update(
            "rg",
            "payments",
            "fic-20",
            FederatedIdentityCredential(
                issuer=ISSUER,
                subject="system:serviceaccount:ns20:payments",
                audiences=["api://AzureADTokenExchange"],
            ),
        )
    assert info.value.status_code == 400
    assert "at most 20 Federated Identity Credentials" in str(info.value)
    listed = list(msi.federated_identity_credentials.list("rg", "payments"))
    assert len(listed) == 20
    # updating an existing one is not a 21st
    msi.federated_identity_credentials.create_or_update(
        "rg",
        "payments",
        "fic-00",
        FederatedIdentityCredential(
            issuer=ISSUER,
            subject="system:serviceaccount:moved:payments",
            audiences=["api://AzureADTokenExchange"],
        ),
    )
    assert msi.federated_identity_credentials.get("rg", "payments", "fic-00").subject.startswith(
        "system:serviceaccount:moved"
    )
    msi.federated_identity_credentials.delete("rg", "payments", "fic-19")
    with pytest.raises(ResourceNotFoundError):
        msi.federated_identity_credentials.get("rg", "payments", "fic-19")
    msi.user_assigned_identities.delete("rg", "payments")
    with pytest.raises(ResourceNotFoundError) as gone:
        msi.user_assigned_identities.get("rg", "payments")
    assert gone.value.error is not None and gone.value.error.code == "ResourceNotFound"


def test_missing_resource_group_is_resource_group_not_found(
    msi: ManagedServiceIdentityClient,
) -> None:
    with pytest.raises(ResourceNotFoundError) as info:
        msi.user_assigned_identities.get("no-such-rg", "x")
    assert info.value.error is not None and info.value.error.code == "ResourceGroupNotFound"


def test_role_definitions_and_assignments(
    az: AzureFakes, authz: AuthorizationManagementClient
) -> None:
    vault = az.create_keyvault("authz-kv")
    mi = az.create_identity("rg", "reader")
    definition = authz.role_definitions.get(vault.id, KEY_VAULT_SECRETS_USER)
    assert definition.role_name == "Key Vault Secrets User"
    assert (
        "Microsoft.KeyVault/vaults/secrets/getSecret/action"
        in definition.permissions[0].data_actions
    )
    by_name = list(
        authz.role_definitions.list(
            f"/subscriptions/{az.subscription_id}", filter="roleName eq 'Key Vault Secrets Officer'"
        )
    )
    assert [d.name for d in by_name] == ["b86a8fe4-44ce-4948-aee5-eccb2c155cd7"]

    name = str(uuid.uuid4())
    params = RoleAssignmentCreateParameters(
        role_definition_id=definition.id,
        principal_id=mi.principal_id,
        principal_type="ServicePrincipal",
    )
    ra = authz.role_assignments.create(vault.id, name, params)
    assert ra.name == name and ra.scope == vault.id
    assert ra.role_definition_id.endswith(KEY_VAULT_SECRETS_USER)
    assert (
        authz.role_assignments.create(vault.id, name, params).name == name
    )  # same name: idempotent
    with pytest.raises(ResourceExistsError) as info:
        authz.role_assignments.create(vault.id, str(uuid.uuid4()), params)
    assert info.value.status_code == 409
    assert info.value.error is not None and info.value.error.code == "RoleAssignmentExists"

    subscription = f"/subscriptions/{az.subscription_id}"
    reader_role = az.state.role_definition_id("acdd72a7-3385-48ef-bd42-f606fba81ae7")
    above = authz.role_assignments.create(
        subscription,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(
            role_definition_id=reader_role, principal_id=mi.principal_id
        ),
    )
    # atScope(): at the scope and above it, never below
    at_vault = {r.name for r in authz.role_assignments.list_for_scope(vault.id, filter="atScope()")}
    assert {name, above.name} <= at_vault
    at_sub = {
        r.name for r in authz.role_assignments.list_for_scope(subscription, filter="atScope()")
    }
    assert above.name in at_sub and name not in at_sub
    # principalId eq: that principal's assignments at, above and below the scope
    for_principal = {
        r.name
        for r in authz.role_assignments.list_for_scope(
            subscription, filter=f"principalId eq '{mi.principal_id}'"
        )
    }
    assert for_principal == {name, above.name}
    authz.role_assignments.delete(subscription, above.name)
    assert authz.role_assignments.get(vault.id, name).principal_id == mi.principal_id
    authz.role_assignments.delete(vault.id, name)
    with pytest.raises(ResourceNotFoundError):
        authz.role_assignments.get(vault.id, name)


def test_role_assignment_at_secret_scope_and_bad_input(
    az: AzureFakes, authz: AuthorizationManagementClient
) -> None:
    vault = az.create_keyvault("scope-kv")
    mi = az.create_identity("rg", "scoped-reader")
    secret_scope = vault.id + "/secrets/db-password"
    role_id = az.state.role_definition_id(KEY_VAULT_SECRETS_USER)
    assert role_id == (
        f"/subscriptions/{az.subscription_id}/providers/Microsoft.Authorization"
        f"/roleDefinitions/{KEY_VAULT_SECRETS_USER}"
    )
    ra = authz.role_assignments.create(
        secret_scope,
        str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id=role_id, principal_id=mi.principal_id),
    )
    assert ra.scope == secret_scope
    assert az.state.data_action_allowed(
        mi.principal_id, secret_scope, "Microsoft.KeyVault/vaults/secrets/getSecret/action"
    )
    assert not az.state.data_action_allowed(
        mi.principal_id,
        vault.id + "/secrets/other",
        "Microsoft.KeyVault/vaults/secrets/getSecret/action",
    )
    with pytest.raises(HttpResponseError) as not_guid:
        authz.role_assignments.create(
            vault.id,
            "not-a-guid",
            RoleAssignmentCreateParameters(
                role_definition_id=role_id, principal_id=mi.principal_id
            ),
        )
    assert (
        not_guid.value.error is not None and not_guid.value.error.code == "InvalidRoleAssignmentId"
    )
    with pytest.raises(HttpResponseError) as ghost:
        authz.role_assignments.create(
            vault.id,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=role_id,
                principal_id=str(uuid.uuid4()),
                principal_type=None,  # without it ARM looks the principal up in the directory
            ),
        )
    assert ghost.value.error is not None and ghost.value.error.code == "PrincipalNotFound"


def test_caller_without_permission_gets_authorization_failed(
    az: AzureFakes, authz: AuthorizationManagementClient, clear_faults: None
) -> None:
    vault = az.create_keyvault("denied-kv")
    mi = az.create_identity("rg", "denied")
    az.deny_arm_action("Microsoft.Authorization/roleAssignments/write")
    with pytest.raises(HttpResponseError) as info:
        authz.role_assignments.create(
            vault.id,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=az.state.role_definition_id(KEY_VAULT_SECRETS_USER),
                principal_id=mi.principal_id,
            ),
        )
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "AuthorizationFailed"
    assert "'Microsoft.Authorization/roleAssignments/write'" in str(info.value)
    assert list(authz.role_assignments.list_for_scope(vault.id)) == []  # reads still allowed


def test_keyvault_management_creates_vault_and_access_policies(
    az: AzureFakes, ca: CertificateAuthority, admin: ClientSecretCredential
) -> None:
    client = KeyVaultManagementClient(admin, az.subscription_id, **mgmt_kwargs(az, ca))  # type: ignore[arg-type]
    oid = az.add_service_principal("reader-app", "reader-secret")
    poller = client.vaults.begin_create_or_update(
        "rg",
        "mgmt-kv",
        kvm.VaultCreateOrUpdateParameters(
            location="eastus",
            properties=kvm.VaultProperties(
                tenant_id=az.tenant_id,
                sku=kvm.Sku(family="A", name="standard"),
                enable_rbac_authorization=False,
                access_policies=[],
            ),
        ),
        polling_interval=0,
    )
    vault = poller.result()
    assert vault.properties.vault_uri.rstrip("/") == az.keyvault_url("mgmt-kv")
    assert vault.properties.enable_rbac_authorization is False
    client.vaults.update_access_policy(
        "rg",
        "mgmt-kv",
        "add",
        kvm.VaultAccessPolicyParameters(
            properties=kvm.VaultAccessPolicyProperties(
                access_policies=[
                    kvm.AccessPolicyEntry(
                        tenant_id=az.tenant_id,
                        object_id=oid,
                        permissions=kvm.Permissions(secrets=["get", "list"]),
                    )
                ]
            )
        ),
    )
    fetched = client.vaults.get("rg", "mgmt-kv")
    assert [
        (p.object_id, sorted(p.permissions.secrets)) for p in fetched.properties.access_policies
    ] == [(oid, ["get", "list"])]
    # the data plane of a vault created over ARM works with the granted policy
    az.set_secret("mgmt-kv", "token", "CANARY-mgmt")
    reader = ClientSecretCredential(
        az.tenant_id,
        "reader-app",
        "reader-secret",
        authority=az.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(ca.ca_path),
    )
    secrets = SecretClient(
        az.keyvault_url("mgmt-kv"),
        reader,
        verify_challenge_resource=False,
        connection_verify=str(ca.ca_path),
    )
    assert secrets.get_secret("token").value == "CANARY-mgmt"
    client.vaults.update_access_policy(
        "rg",
        "mgmt-kv",
        "remove",
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
    with pytest.raises(HttpResponseError) as info:
        secrets.get_secret("token")
    assert info.value.status_code == 403
    assert "mgmt-kv" in [v.name for v in client.vaults.list_by_resource_group("rg")]
    client.close()


def test_arm_requires_a_management_token(
    az: AzureFakes, ca: CertificateAuthority, admin: ClientSecretCredential
) -> None:
    url = (
        f"{az.arm_url}/subscriptions/{az.subscription_id}/resourceGroups/rg"
        "/providers/Microsoft.ManagedIdentity/userAssignedIdentities"
    )
    params = {"api-version": "2024-11-30"}
    anonymous = requests.get(url, params=params, verify=str(ca.ca_path), timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"
    vault_token = admin.get_token("https://vault.azure.net/.default").token
    wrong_aud = requests.get(
        url,
        params=params,
        headers={"Authorization": f"Bearer {vault_token}"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert wrong_aud.status_code == 401
    assert wrong_aud.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    arm_token = admin.get_token(ARM_SCOPE).token
    forged = arm_token[:-8] + ("A" * 8 if not arm_token.endswith("A" * 8) else "B" * 8)
    bad_sig = requests.get(
        url,
        params=params,
        headers={"Authorization": f"Bearer {forged}"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert bad_sig.status_code == 401
    assert bad_sig.json()["error"]["code"] == "InvalidAuthenticationToken"
    no_version = requests.get(
        url, headers={"Authorization": f"Bearer {arm_token}"}, verify=str(ca.ca_path), timeout=5
    )
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    other_sub = requests.get(
        url.replace(az.subscription_id, str(uuid.uuid4())),
        params=params,
        headers={"Authorization": f"Bearer {arm_token}"},
        verify=str(ca.ca_path),
        timeout=5,
    )
    assert other_sub.status_code == 404
    assert other_sub.json()["error"]["code"] == "SubscriptionNotFound"


def test_arm_faults_reach_the_sdk(
    az: AzureFakes, ca: CertificateAuthority, msi: ManagedServiceIdentityClient, clear_faults: None
) -> None:
    msi.user_assigned_identities.create_or_update("rg", "flaky", Identity(location="eastus"))
    az.faults("arm").fail_next(1, status=503)
    with pytest.raises(HttpResponseError) as info:
        msi.user_assigned_identities.get("rg", "flaky")
    assert info.value.status_code == 503
    az.faults("arm").throttle(rate_per_s=1, retry_after_s=3)
    with pytest.raises(HttpResponseError) as throttled:
        for _ in range(3):
            msi.user_assigned_identities.get("rg", "flaky")
    assert throttled.value.status_code == 429
    assert throttled.value.response is not None
    assert throttled.value.response.headers["Retry-After"] == "3"


def test_entra_refuses_unknown_resource(az: AzureFakes, admin: ClientSecretCredential) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS500011"):
        admin.get_token("https://unknown.example.invalid/.default")


def test_concurrent_fic_writes_on_one_identity_conflict(
    az: AzureFakes, msi: ManagedServiceIdentityClient
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    msi.user_assigned_identities.create_or_update("rg", "busy", Identity(location="eastus"))

    def write(i: int) -> str:
        try:
            msi.federated_identity_credentials.create_or_update(
                "rg",
                "busy",
                f"busy-{i}",
                FederatedIdentityCredential(
                    issuer=ISSUER,
                    subject=f"system:serviceaccount:busy:{i}",
                    audiences=["api://AzureADTokenExchange"],
                ),
            )
        except ResourceExistsError as exc:
            assert exc.error is not None
            return exc.error.code or ""
        return "ok"

    az.set_fic_write_latency(1.0)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            first = pool.submit(write, 0)
            deadline = time.monotonic() + 5
            while not az.state.fic_writes_in_flight() and time.monotonic() < deadline:
                time.sleep(0.005)
            second = write(1)  # while the first write is still in flight
            assert first.result() == "ok"
    finally:
        az.set_fic_write_latency(0)
    assert second == "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
    assert write(1) == "ok"  # one after the other is fine


# ---- Microsoft.Authorization/permissions ----------------------------------------------


class Caller:
    """A fresh service principal with its own ARM clients (closed by the fixture)."""

    def __init__(self, az: AzureFakes, ca: CertificateAuthority) -> None:
        self.az, self.ca = az, ca
        app_id = str(uuid.uuid4())
        self.oid = az.add_service_principal(app_id, "caller-secret")
        self.cred = ClientSecretCredential(
            az.tenant_id,
            app_id,
            "caller-secret",
            authority=az.authority_host,
            disable_instance_discovery=True,
            connection_verify=str(ca.ca_path),
        )
        kwargs = mgmt_kwargs(az, ca)
        self.authz = AuthorizationManagementClient(self.cred, az.subscription_id, **kwargs)  # type: ignore[arg-type]
        self.msi = ManagedServiceIdentityClient(self.cred, az.subscription_id, **kwargs)  # type: ignore[arg-type]

    def at_rg(self, rg: str) -> list[dict[str, list[str]]]:
        return [_entry(p) for p in self.authz.permissions.list_for_resource_group(rg)]

    def at_vault(self, rg: str, vault: str) -> list[dict[str, list[str]]]:
        got = self.authz.permissions.list_for_resource(
            rg, "Microsoft.KeyVault", "", "vaults", vault
        )
        return [_entry(p) for p in got]

    def at_subscription(self) -> list[dict[str, list[str]]]:
        """The subscription scope (no SDK operation for it in 2022-04-01): plain GET."""
        token = self.cred.get_token(ARM_SCOPE).token
        got = requests.get(
            f"{self.az.arm_url}/subscriptions/{self.az.subscription_id}"
            "/providers/Microsoft.Authorization/permissions",
            params={"api-version": "2022-04-01"},
            headers={"Authorization": f"Bearer {token}"},
            verify=str(self.ca.ca_path),
            timeout=5,
        )
        assert got.status_code == 200, got.text
        value: list[dict[str, list[str]]] = got.json()["value"]
        return value

    def close(self) -> None:
        self.authz.close()
        self.msi.close()
        self.cred.close()


def _entry(p: object) -> dict[str, list[str]]:
    return {
        "actions": list(getattr(p, "actions", None) or []),
        "notActions": list(getattr(p, "not_actions", None) or []),
        "dataActions": list(getattr(p, "data_actions", None) or []),
        "notDataActions": list(getattr(p, "not_data_actions", None) or []),
    }


OWNER_ENTRY = {"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}


@pytest.fixture
def caller(az: AzureFakes, ca: CertificateAuthority) -> Iterator[Caller]:
    c = Caller(az, ca)
    try:
        yield c
    finally:
        az.clear_arm_denials()  # also ends restrict_arm_caller
        c.close()


def test_permissions_of_a_default_caller_are_an_owners_at_every_scope(
    az: AzureFakes, caller: Caller
) -> None:
    vault = az.create_keyvault("perm-owner-kv", resource_group="rg-perm")
    assert caller.at_subscription() == [OWNER_ENTRY]
    assert caller.at_rg("rg-perm") == [OWNER_ENTRY]
    assert caller.at_vault("rg-perm", vault.name) == [OWNER_ENTRY]
    # a role held at the vault shows as its own entry there, not at the group above it
    az.assign_role(vault.id, caller.oid, KEY_VAULT_SECRETS_USER)
    at_vault = caller.at_vault("rg-perm", vault.name)
    assert at_vault[0] == OWNER_ENTRY
    assert at_vault[1]["actions"] == []
    assert "Microsoft.KeyVault/vaults/secrets/getSecret/action" in at_vault[1]["dataActions"]
    assert caller.at_rg("rg-perm") == [OWNER_ENTRY]
    # scopes that do not exist are ARM's 404s
    with pytest.raises(ResourceNotFoundError) as no_rg:
        caller.at_rg("rg-perm-missing")
    assert no_rg.value.error is not None and no_rg.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as no_vault:
        caller.at_vault("rg-perm", "perm-missing-kv")
    assert no_vault.value.error is not None and no_vault.value.error.code == "ResourceNotFound"


def test_a_denied_action_shows_in_not_actions_and_matches_the_write(
    az: AzureFakes, caller: Caller, admin: ClientSecretCredential
) -> None:
    from secretsboot.provision.azure import _permits

    vault = az.create_keyvault("perm-deny-kv", resource_group="rg-perm")
    mi = az.create_identity("rg-perm", "perm-deny")
    write = "Microsoft.Authorization/roleAssignments/write"
    az.deny_arm_action(write, caller.oid)
    az.deny_arm_action("Microsoft.ManagedIdentity/*", caller.oid)
    for entries in (caller.at_rg("rg-perm"), caller.at_vault("rg-perm", vault.name)):
        assert entries == [
            {
                "actions": ["*"],
                "notActions": [write, "Microsoft.ManagedIdentity/*"],
                "dataActions": [],
                "notDataActions": [],
            }
        ]
    perms = caller.authz.permissions.list_for_resource_group("rg-perm")
    entry = next(iter(perms))
    assert not _permits(entry, write)
    assert not _permits(entry, "Microsoft.ManagedIdentity/userAssignedIdentities/write")
    assert _permits(entry, "Microsoft.Authorization/roleAssignments/read")
    assert _permits(entry, "Microsoft.KeyVault/vaults/accessPolicies/write")
    # what the permissions API says is what the writes meet
    with pytest.raises(HttpResponseError) as info:
        caller.authz.role_assignments.create(
            vault.id,
            str(uuid.uuid4()),
            RoleAssignmentCreateParameters(
                role_definition_id=az.state.role_definition_id(KEY_VAULT_SECRETS_USER),
                principal_id=mi.principal_id,
            ),
        )
    assert info.value.status_code == 403
    with pytest.raises(HttpResponseError) as mi_write:
        caller.msi.user_assigned_identities.create_or_update(
            "rg-perm", "perm-deny-2", Identity(location="eastus")
        )
    assert mi_write.value.status_code == 403
    assert list(caller.authz.role_assignments.list_for_scope(vault.id)) == []  # read allowed
    # the denial was for this caller only: another caller is still an Owner
    other = AuthorizationManagementClient(admin, az.subscription_id, **mgmt_kwargs(az, caller.ca))  # type: ignore[arg-type]
    with other:
        assert [_entry(p) for p in other.permissions.list_for_resource_group("rg-perm")] == [
            OWNER_ENTRY
        ]


def test_a_restricted_caller_gets_what_its_roles_grant(az: AzureFakes, caller: Caller) -> None:
    from secretsboot.provision.azure import _permits
    from secretsboot.sandbox.azure.state import CONTRIBUTOR, READER

    az.state.ensure_resource_group("rg-perm-reader")
    rg_id = f"/subscriptions/{az.subscription_id}/resourceGroups/rg-perm-reader"
    az.state.restrict_arm_caller(caller.oid)
    assert caller.at_rg("rg-perm-reader") == []  # no role: nothing at all
    with pytest.raises(HttpResponseError) as nothing:
        list(caller.msi.user_assigned_identities.list_by_resource_group("rg-perm-reader"))
    assert nothing.value.status_code == 403
    reader = az.assign_role(rg_id, caller.oid, READER)
    assert caller.at_rg("rg-perm-reader") == [
        {"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}
    ]
    assert caller.at_subscription() == []  # the role is held below the subscription
    assert list(caller.msi.user_assigned_identities.list_by_resource_group("rg-perm-reader")) == []
    with pytest.raises(HttpResponseError) as write:
        caller.msi.user_assigned_identities.create_or_update(
            "rg-perm-reader", "perm-reader", Identity(location="eastus")
        )
    assert write.value.status_code == 403
    assert "Microsoft.ManagedIdentity/userAssignedIdentities/write" in str(write.value)
    # Contributor at the group: anything but Microsoft.Authorization writes, and a denial
    # on top of it subtracts from every entry
    contributor = az.assign_role(rg_id, caller.oid, CONTRIBUTOR)
    try:
        entries = caller.at_rg("rg-perm-reader")
        assert [e["actions"] for e in entries] == [["*/read"], ["*"]]
        ra_write = "Microsoft.Authorization/roleAssignments/write"
        mi_write = "Microsoft.ManagedIdentity/userAssignedIdentities/write"
        perms = list(caller.authz.permissions.list_for_resource_group("rg-perm-reader"))
        assert any(_permits(p, mi_write) for p in perms)
        assert not any(_permits(p, ra_write) for p in perms)  # notActions .../*/Write
        made = caller.msi.user_assigned_identities.create_or_update(
            "rg-perm-reader", "perm-contrib", Identity(location="eastus")
        )
        assert made.name == "perm-contrib"
        az.deny_arm_action(mi_write, caller.oid)
        perms = list(caller.authz.permissions.list_for_resource_group("rg-perm-reader"))
        assert all(mi_write in (p.not_actions or []) for p in perms)
        assert not any(_permits(p, mi_write) for p in perms)
        with pytest.raises(HttpResponseError) as denied:
            caller.msi.user_assigned_identities.create_or_update(
                "rg-perm-reader", "perm-contrib-2", Identity(location="eastus")
            )
        assert denied.value.status_code == 403
    finally:
        for ra in (reader, contributor):
            az.state.delete_role_assignment(ra.scope, ra.name)
