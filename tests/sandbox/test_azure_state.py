"""The pure state model behind the Azure fakes: scopes, roles, FICs, policies, IMDS choice."""

from __future__ import annotations

import pytest

from secretsboot.sandbox.azure.state import (
    CONTRIBUTOR,
    KEY_VAULT_READER,
    KEY_VAULT_SECRETS_OFFICER,
    KEY_VAULT_SECRETS_USER,
    OWNER,
    AccessPolicy,
    AzureState,
    StateError,
    scope_contains,
)
from secretsboot.secret import SecretValue

GET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
SET = "Microsoft.KeyVault/vaults/secrets/setSecret/action"
LIST = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


@pytest.mark.parametrize(
    ("outer", "inner", "contains"),
    [
        ("/subscriptions/s", "/subscriptions/s/resourceGroups/rg", True),
        ("/subscriptions/S/resourceGroups/RG", "/subscriptions/s/resourcegroups/rg/x", True),
        ("/subscriptions/s/resourceGroups/rg", "/subscriptions/s/resourceGroups/rg2", False),
        ("/subscriptions/s/resourceGroups/rg/", "/subscriptions/s/resourceGroups/rg", True),
        ("/", "/subscriptions/s", True),
        ("/subscriptions/s/x/secrets/a", "/subscriptions/s/x", False),
    ],
)
def test_scope_contains(outer: str, inner: str, contains: bool) -> None:
    assert scope_contains(outer, inner) is contains


@pytest.mark.parametrize(
    ("role", "action", "allowed"),
    [
        (KEY_VAULT_SECRETS_USER, GET, True),
        (KEY_VAULT_SECRETS_USER, LIST, True),
        (KEY_VAULT_SECRETS_USER, SET, False),
        (KEY_VAULT_SECRETS_OFFICER, SET, True),
        (KEY_VAULT_READER, GET, False),
        (KEY_VAULT_READER, LIST, True),
        (OWNER, GET, False),  # control-plane roles carry no data actions
        (CONTRIBUTOR, GET, False),
    ],
)
def test_data_actions_of_builtin_roles(role: str, action: str, allowed: bool) -> None:
    state = AzureState()
    vault = state.create_vault("kv-roles")
    mi = state.create_identity("rg", "mi")
    state.assign_role(vault.id, mi.principal_id, role)
    assert state.data_action_allowed(mi.principal_id, vault.id + "/secrets/x", action) is allowed


def test_contributor_cannot_write_role_assignments() -> None:
    contributor = AzureState().role_definition(CONTRIBUTOR)
    assert contributor.allows("Microsoft.KeyVault/vaults/write")
    assert not contributor.allows("Microsoft.Authorization/roleAssignments/write")


def test_role_assignment_rules() -> None:
    state = AzureState()
    vault = state.create_vault("kv-ra")
    mi = state.create_identity("rg", "mi")
    first = state.assign_role(vault.id, mi.principal_id, KEY_VAULT_SECRETS_USER)
    # deterministic name: the same triple twice is the same assignment
    assert state.assign_role(vault.id, mi.principal_id, KEY_VAULT_SECRETS_USER) is first
    with pytest.raises(StateError) as exists:
        state.assign_role(
            vault.id,
            mi.principal_id,
            KEY_VAULT_SECRETS_USER,
            name="00000000-0000-0000-0000-000000000001",
        )
    assert (exists.value.status, exists.value.code) == (409, "RoleAssignmentExists")
    with pytest.raises(StateError) as unknown_role:
        state.assign_role(vault.id, mi.principal_id, "11111111-2222-3333-4444-555555555555")
    assert unknown_role.value.code == "RoleDefinitionDoesNotExist"
    with pytest.raises(StateError) as other_sub:
        state.assign_role(
            "/subscriptions/00000000-0000-0000-0000-000000000000",
            mi.principal_id,
            KEY_VAULT_SECRETS_USER,
        )
    assert other_sub.value.code == "SubscriptionNotFound"
    with pytest.raises(StateError) as no_vault:
        state.assign_role(
            vault.id.replace("kv-ra", "kv-missing"), mi.principal_id, KEY_VAULT_SECRETS_USER
        )
    assert no_vault.value.code == "ResourceNotFound"


def test_federated_credential_cap_and_matching() -> None:
    state = AzureState()
    mi = state.create_identity("rg", "capped")
    issuer = "https://issuer.example/"
    for i in range(20):
        state.add_federated_credential(mi.id, f"fic-{i}", issuer, f"system:serviceaccount:n:{i}")
    with pytest.raises(StateError) as cap:
        state.add_federated_credential(mi.id, "fic-20", issuer, "system:serviceaccount:n:20")
    assert cap.value.status == 400
    # matching is exact and case-sensitive, the audience must be one of the FIC's
    aud = ["api://AzureADTokenExchange"]
    assert state.matching_federated_credential(mi, issuer, "system:serviceaccount:n:3", aud)
    assert not state.matching_federated_credential(
        mi, issuer.rstrip("/"), "system:serviceaccount:n:3", aud
    )
    assert not state.matching_federated_credential(mi, issuer, "system:serviceaccount:N:3", aud)
    assert not state.matching_federated_credential(
        mi, issuer, "system:serviceaccount:n:3", ["api://other"]
    )
    with pytest.raises(StateError):
        state.add_federated_credential(mi.id, "fic-0", "http://plain.example", "x")


def test_access_policy_add_remove_replace() -> None:
    state = AzureState()
    vault = state.create_vault("kv-ap", mode="access-policy")
    oid = "4f6c0a1e-0000-0000-0000-000000000001"
    tid = state.tenant_id
    state.update_access_policies(vault, "add", [AccessPolicy(tid, oid, ["get"])])
    state.update_access_policies(vault, "add", [AccessPolicy(tid, oid, ["list", "get"])])
    assert vault.access_policies[0].secrets == ["get", "list"]
    assert state.access_policy_allows(vault, oid.upper(), "list")
    state.update_access_policies(vault, "remove", [AccessPolicy(tid, oid, ["get"])])
    assert not state.access_policy_allows(vault, oid, "get")
    state.update_access_policies(vault, "replace", [AccessPolicy(tid, oid, ["set"])])
    assert vault.access_policies[0].secrets == ["set"]
    state.update_access_policies(vault, "remove", [AccessPolicy(tid, oid, ["set"])])
    assert vault.access_policies == []


def test_secret_values_are_held_as_secret_values() -> None:
    state = AzureState()
    state.create_vault("kv-sv")
    version = state.set_secret("kv-sv", "db", "CANARY-state")
    assert isinstance(version.value, SecretValue)
    assert "CANARY-state" not in repr(state.get_vault("kv-sv"))
    assert len(version.version) == 32


def test_imds_identity_choice_by_selector() -> None:
    state = AzureState()
    node = state.create_identity("rg", "kubelet")
    pod = state.create_identity("rg", "orders")
    state.bind_pod_identity(node.id)
    state.bind_pod_identity(pod.id, "orders")
    assert state.imds_identities(None) == [node]
    assert state.imds_identities("orders") == [pod]
    assert state.imds_identities("payments") == []
