"""The Key Vault fake driven by azure-keyvault-secrets' own sample flows (hello world, list
operations, recover and purge, backup and restore), changed only in endpoint,
credential and CA; plus attributes, expiry, firewall and access-policy denials."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.keyvault.secrets import SecretClient

from secretsboot.sandbox.azure import KEY_VAULT_SECRETS_OFFICER, KEY_VAULT_SECRETS_USER, AzureFakes
from secretsboot.sandbox.pki import CertificateAuthority

from . import azure_helpers
from .azure_helpers import sp_principal, sp_secret_client

azure_dir, ca, az = azure_helpers.azure_dir, azure_helpers.ca, azure_helpers.az

CANARY = "CANARY-kv-" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def client(az: AzureFakes, ca: CertificateAuthority) -> Iterator[SecretClient]:
    """A Secrets Officer on an RBAC vault of its own."""
    az.create_keyvault("samples-kv")
    app_id, oid = sp_principal(az)
    az.assign_role(az.vault_id("samples-kv"), oid, KEY_VAULT_SECRETS_OFFICER)
    with sp_secret_client(az, ca.ca_path, "samples-kv", app_id) as c:
        yield c


def test_hello_world_sample(client: SecretClient) -> None:
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=365)
    secret = client.set_secret("helloWorldSecretName", CANARY, expires_on=expires)
    assert secret.name == "helloWorldSecretName"
    assert secret.properties.expires_on == expires
    secret = client.get_secret(secret.name)
    assert secret.value == CANARY
    assert secret.properties.expires_on == expires
    assert secret.properties.recovery_level == "Recoverable+Purgeable"
    assert secret.properties.created_on and secret.properties.updated_on

    later = expires + dt.timedelta(days=365)
    updated = client.update_secret_properties(
        secret.name, content_type="text/plain", expires_on=later
    )
    assert updated.content_type == "text/plain"
    assert updated.expires_on == later
    assert client.get_secret(secret.name).properties.expires_on == later

    deleted = client.begin_delete_secret(secret.name).result()
    assert deleted.name == secret.name
    assert deleted.deleted_date is not None and deleted.scheduled_purge_date is not None
    assert deleted.recovery_id and deleted.recovery_id.endswith("/deletedsecrets/" + secret.name)
    assert deleted.properties.expires_on == later  # attributes travel with the deleted secret


def test_list_operations_sample(client: SecretClient) -> None:
    expires = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=365)
    bank = client.set_secret("listOpsBankSecretName", CANARY + "-1", expires_on=expires)
    storage = client.set_secret("listOpsStorageSecretName", CANARY + "-2")
    listed = {p.name: p for p in client.list_properties_of_secrets()}
    assert {bank.name, storage.name} <= set(listed)
    assert listed[bank.name].expires_on == expires
    assert listed[storage.name].expires_on is None
    for name in (bank.name, storage.name):
        assert client.get_secret(name).value.startswith(CANARY)  # type: ignore[union-attr]

    updated = client.set_secret(bank.name, CANARY + "-new")
    versions = {p.version for p in client.list_properties_of_secret_versions(bank.name)}
    assert versions == {bank.properties.version, updated.properties.version}

    client.begin_delete_secret(bank.name).wait()
    client.begin_delete_secret(storage.name).wait()
    deleted = {d.name: d for d in client.list_deleted_secrets()}
    assert {bank.name, storage.name} <= set(deleted)
    assert all(d.deleted_date and d.recovery_id for d in deleted.values())
    assert bank.name not in {p.name for p in client.list_properties_of_secrets()}


def test_recover_and_purge_sample(client: SecretClient) -> None:
    bank = client.set_secret("recoverBankSecret", CANARY)
    storage = client.set_secret("purgeStorageSecret", CANARY)
    client.begin_delete_secret(bank.name).wait()
    client.begin_delete_secret(storage.name).wait()
    # the name stays taken until it is recovered or purged
    with pytest.raises(ResourceExistsError) as held:
        client.set_secret(storage.name, CANARY)
    assert held.value.status_code == 409
    assert held.value.error is not None and held.value.error.code == "Conflict"
    assert held.value.error.innererror == {"code": "ObjectIsDeletedButRecoverable"}

    recovered = client.begin_recover_deleted_secret(bank.name).result()
    assert recovered.name == bank.name
    assert client.get_secret(bank.name).value == CANARY
    client.purge_deleted_secret(storage.name)
    with pytest.raises(ResourceNotFoundError):
        client.get_deleted_secret(storage.name)
    assert client.set_secret(storage.name, CANARY + "-again").name == storage.name


def test_backup_and_restore_sample(client: SecretClient) -> None:
    secret = client.set_secret("backupRestoreSecret", CANARY, content_type="text/plain")
    client.set_secret(secret.name, CANARY + "-v2", tags={"team": "shop"})
    backup = client.backup_secret(secret.name)
    assert isinstance(backup, bytes) and CANARY.encode() not in backup  # opaque
    with pytest.raises(ResourceExistsError):  # the name is still in use
        client.restore_secret_backup(backup)
    client.begin_delete_secret(secret.name).wait()
    client.purge_deleted_secret(secret.name)

    restored = client.restore_secret_backup(backup)
    assert restored.name == secret.name
    assert restored.tags == {"team": "shop"}
    assert client.get_secret(secret.name).value == CANARY + "-v2"
    versions = list(client.list_properties_of_secret_versions(secret.name))
    assert len(versions) == 2
    with pytest.raises(HttpResponseError) as corrupt:
        client.restore_secret_backup(backup[:-4] + b"xxxx")
    assert corrupt.value.status_code == 400


def test_expired_and_not_yet_valid_secrets_are_served_disabled_ones_are_not(
    client: SecretClient,
) -> None:
    """Key Vault does not enforce ``exp``/``nbf`` on secrets (a GET answers 200 with the
    dates); a disabled secret is 403 Forbidden / SecretDisabled."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    expired = client.set_secret("expiredSecret", CANARY, expires_on=now - dt.timedelta(days=1))
    early = client.set_secret("earlySecret", CANARY, not_before=now + dt.timedelta(days=1))
    got = client.get_secret(expired.name)
    assert got.value == CANARY and got.properties.expires_on == now - dt.timedelta(days=1)
    got = client.get_secret(early.name)
    assert got.value == CANARY and got.properties.not_before == now + dt.timedelta(days=1)

    client.set_secret("disabledSecret", CANARY, enabled=False)
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("disabledSecret")
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    assert info.value.error.innererror == {"code": "SecretDisabled"}
    assert CANARY not in str(info.value)


def test_invalid_secret_name_is_400_bad_parameter(client: SecretClient) -> None:
    with pytest.raises(HttpResponseError) as info:
        client.get_secret("not_valid")
    assert info.value.status_code == 400
    assert info.value.error is not None and info.value.error.code == "BadParameter"


def test_firewall_knob_gives_forbidden_by_firewall(az: AzureFakes, client: SecretClient) -> None:
    client.set_secret("behindFirewall", CANARY)
    az.set_keyvault_firewall("samples-kv", closed=True)
    try:
        with pytest.raises(HttpResponseError) as info:
            client.get_secret("behindFirewall")
    finally:
        az.set_keyvault_firewall("samples-kv", closed=False)
    assert info.value.status_code == 403
    assert info.value.error is not None and info.value.error.code == "Forbidden"
    assert info.value.error.innererror == {"code": "ForbiddenByFirewall"}
    assert "Client address is not authorized" in str(info.value)
    assert client.get_secret("behindFirewall").value == CANARY


def test_access_policy_denial_is_access_denied_per_permission(
    az: AzureFakes, ca: CertificateAuthority
) -> None:
    az.create_keyvault("policy-kv", mode="access-policy")
    az.set_secret("policy-kv", "db", CANARY)
    app_id, oid = sp_principal(az)
    az.assign_role(az.vault_id("policy-kv"), oid, KEY_VAULT_SECRETS_USER)  # ignored in this mode
    az.add_access_policy("policy-kv", oid, ["list"])
    with sp_secret_client(az, ca.ca_path, "policy-kv", app_id) as c:
        assert [p.name for p in c.list_properties_of_secrets()] == ["db"]
        with pytest.raises(HttpResponseError) as info:
            c.get_secret("db")
        assert info.value.status_code == 403
        assert info.value.error is not None and info.value.error.code == "Forbidden"
        assert info.value.error.innererror == {"code": "AccessDenied"}
        assert "does not have secrets get permission" in str(info.value)
        az.add_access_policy("policy-kv", oid, ["get"])
        assert c.get_secret("db").value == CANARY
        with pytest.raises(HttpResponseError) as backup:
            c.backup_secret("db")
        assert backup.value.error is not None
        assert backup.value.error.innererror == {"code": "AccessDenied"}
