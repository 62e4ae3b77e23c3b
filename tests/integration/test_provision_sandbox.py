"""``provision`` against the in-process sandbox (Kubernetes fake, Azure fakes, OpenBao).

Every test provisions its own variant of ``examples/drone-delivery.yaml``
(:func:`variant`): its own spec name, resource group, namespace, Key Vaults and
service names, so tests share the session sandbox without seeing each other.
"""

from __future__ import annotations

import copy
import json
import re
import secrets as pysecrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsboot.contract import KEY_VAULT_SECRETS_USER
from secretsboot.errors import BadInputError, DeniedError
from secretsboot.provision.apply import Options, Provisioner
from secretsboot.provision.desired import role_assignment_name
from secretsboot.provision.model import Action, Change
from secretsboot.provision.render import render_text
from secretsboot.spec import Spec, load_spec

pytestmark = [pytest.mark.integration, pytest.mark.openbao]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drone-delivery.yaml"
PROVISIONER_ID = "0b7c9a8e-1f2d-4e3c-9b5a-6d7e8f9a0b1c"
PROVISIONER_SECRET = "provisioner-" + pysecrets.token_hex(8)
WRITE_METHODS = {"PUT", "POST", "PATCH", "DELETE"}
PROVISIONER: dict[str, str] = {}


@pytest.fixture(scope="module")
def sb(sandbox: Any) -> Iterator[Any]:
    if sandbox.azure is None:
        pytest.skip("the Azure fakes are not available")
    PROVISIONER["oid"] = sandbox.azure.add_service_principal(PROVISIONER_ID, PROVISIONER_SECRET)
    with pytest.MonkeyPatch.context() as mp:
        for k, v in sandbox.env().items():
            mp.setenv(k, v)
        mp.setenv("AZURE_CLIENT_ID", PROVISIONER_ID)
        mp.setenv("AZURE_CLIENT_SECRET", PROVISIONER_SECRET)
        mp.delenv("SECRETSBOOT_KUBE_CONTEXT", raising=False)
        yield sandbox


def variant(
    sb: Any,
    tmp_path: Path,
    tag: str,
    mutate: Callable[[dict[str, Any]], None] | None = None,
    *,
    seed: bool = True,
) -> tuple[Path, dict[str, str]]:
    """A copy of the example aimed at the sandbox, with names unique to ``tag``.

    Returns the spec path and the canary value of every secret (by source URI).
    """
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"]["name"] = f"dd-{tag}"
    az = doc["azure"]
    az["tenantId"] = sb.azure.tenant_id
    az["subscriptionId"] = sb.azure.subscription_id
    az["resourceGroup"] = f"rg-{tag}"
    az["oidcIssuer"] = sb.kube.oidc_issuer
    renames = {kv["name"]: kv["name"].replace("kv-dd-", f"kv{tag}-") for kv in az["keyVaults"]}
    for kv in az["keyVaults"]:
        kv["name"] = renames[kv["name"]]
    doc["vault"]["address"] = sb.vault.address
    doc["kubernetes"] = {"namespace": f"ns-{tag}"}
    for svc in doc["services"]:
        svc["name"] = f"{svc['name']}-{tag}"
        for s in svc["secrets"]:
            for old, new in renames.items():
                s["from"] = s["from"].replace(f"keyvault://{old}/", f"keyvault://{new}/")
            s["from"] = s["from"].replace(
                "vault://secret/drone-delivery/", f"vault://secret/{tag}/"
            )
    if mutate is not None:
        mutate(doc)
    path = tmp_path / f"spec-{tag}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    canaries: dict[str, str] = {}
    if seed:
        canaries = seed_sources(sb, load_spec(path))
    return path, canaries


def seed_sources(sb: Any, spec: Spec) -> dict[str, str]:
    assert spec.azure is not None
    for kv in spec.azure.key_vaults:
        if sb.azure.state.find_vault(kv.name) is None:
            rg = kv.resource_group or spec.azure.resource_group
            sb.azure.create_keyvault(kv.name, mode=kv.mode.value, resource_group=rg)
    sb.azure.state.ensure_resource_group(spec.azure.resource_group)
    canaries: dict[str, str] = {}
    kv_paths: dict[tuple[str, str], dict[str, str]] = {}
    vault = sb.vault.client()
    try:
        for svc in spec.services:
            for secret in svc.secrets:
                ref = secret.source
                value = f"CANARY-{uuid.uuid4().hex[:12]}"
                canaries[str(ref)] = value
                if ref.scheme == "keyvault":
                    sb.azure.set_secret(ref.store, ref.path, value)
                elif ref.scheme == "vault":
                    kv_paths.setdefault((ref.store, ref.path), {})[ref.key or "value"] = value
        for (mount, kv_path), data in kv_paths.items():
            vault.secrets.kv.v2.create_or_update_secret(kv_path, secret=data, mount_point=mount)
    finally:
        vault.adapter.close()
    return canaries


def provision(path: Path, **options: Any) -> tuple[Any, Any]:
    with Provisioner.connect(load_spec(path), Options(**options)) as prov:
        plan = prov.plan()
        result = prov.apply(plan)
    return plan, result


def plan_of(path: Path, **options: Any) -> Any:
    with Provisioner.connect(load_spec(path), Options(**options)) as prov:
        return prov.plan()


def write_calls(sb: Any) -> int:
    """Writes seen by the Kubernetes and ARM fakes so far."""
    kube = sum(1 for c in sb.kube.app.calls if c.method in WRITE_METHODS)
    arm = sum(1 for c in sb.azure.arm.calls if c.method in WRITE_METHODS)
    return kube + arm


def identities_in(sb: Any, rg: str) -> list[Any]:
    with sb.azure.state.lock:
        return [i for i in sb.azure.state.identities.values() if i.resource_group == rg]


# ---- end to end ----------------------------------------------------------------------


def test_drone_delivery_provisions_then_converges_with_zero_writes(sb: Any, tmp_path: Path) -> None:
    path, _ = variant(sb, tmp_path, "e2e")
    plan, result = provision(path)
    assert plan.has_changes
    assert result.writes == len(plan.pending)
    kinds = {c.key.kind for c in plan.pending}
    assert {
        "managed-identity",
        "federated-credential",
        "role-assignment",
        "access-policy",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "SecretProviderClass",
        "AzureIdentity",
        "AzureIdentityBinding",
        "ConfigMap",
        "Secret",
        "policy",
        "role",
    } <= kinds

    before = write_calls(sb)
    again = plan_of(path)
    assert not again.has_changes, [str(c.key) for c in again.pending]
    _, second = provision(path)
    assert second.writes == 0
    assert write_calls(sb) == before

    # the service accounts carry the identities' client ids; ClusterRoles are never made
    spec = load_spec(path)
    delivery = spec.services[0]
    sa = sb.kube.store.get("serviceaccounts", delivery.name, "ns-e2e")
    ident = next(i for i in identities_in(sb, "rg-e2e") if i.name == delivery.identity_name)
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == ident.client_id
    assert sa["automountServiceAccountToken"] is False
    ingestion_sa = sb.kube.store.get("serviceaccounts", spec.services[3].name, "ns-e2e")
    assert ingestion_sa["automountServiceAccountToken"] is True
    assert all(
        (i["metadata"].get("labels") or {}).get("secretsboot.dev/spec") != "dd-e2e"
        for i in sb.kube.store.list("clusterroles")["items"]
    )


def _kv_client(sb: Any, vault: str, credential: Any) -> Any:
    from azure.keyvault.secrets import SecretClient

    return SecretClient(
        sb.azure.keyvault_url(vault),
        credential,
        verify_challenge_resource=False,
        connection_verify=str(sb.ca_path),
    )


def _wi_credential(sb: Any, tmp_path: Path, ns: str, sa: str, client_id: str) -> Any:
    from azure.identity import WorkloadIdentityCredential

    token_file = tmp_path / f"{sa}.jwt"
    token_file.write_text(sb.kube.mint_token(ns, sa, ["api://AzureADTokenExchange"]))
    return WorkloadIdentityCredential(
        tenant_id=sb.azure.tenant_id,
        client_id=client_id,
        token_file_path=str(token_file),
        authority=sb.azure.authority_host,
        disable_instance_discovery=True,
        connection_verify=str(sb.ca_path),
    )


def _can_read(client: Any, name: str) -> bool:
    from azure.core.exceptions import HttpResponseError

    try:
        client.get_secret(name)
    except HttpResponseError as exc:
        assert exc.status_code == 403, exc.status_code
        return False
    return True


def test_each_identity_reads_exactly_its_secrets(sb: Any, tmp_path: Path) -> None:
    def per_secret(doc: dict[str, Any]) -> None:
        for svc in doc["services"]:
            if svc["name"].startswith("delivery"):
                svc["keyVaultScope"] = "secret"

    path, canaries = variant(sb, tmp_path, "acl", per_secret)
    provision(path)
    sb.azure.settle()  # the fresh grants propagate first, as in Azure
    spec = load_spec(path)
    delivery, package, workflow, ingestion, scheduler = spec.services
    ns = "ns-acl"
    ids = {i.name: i for i in identities_in(sb, "rg-acl")}

    # workload identity -> Key Vault, with a minted service-account token
    cred = _wi_credential(sb, tmp_path, ns, delivery.name, ids[delivery.identity_name].client_id)
    try:
        with _kv_client(sb, "kvacl-delivery", cred) as kv:
            got = kv.get_secret("delivery-cosmosdb-key")
            assert got.value == canaries["keyvault://kvacl-delivery/delivery-cosmosdb-key"]
        with _kv_client(sb, "kvacl-shared", cred) as kv:
            assert _can_read(kv, "appinsights-connection-string")
            # keyVaultScope: secret -> the grant covers its secret, not the whole vault
            assert not _can_read(kv, "package-mongodb-connection")
        with _kv_client(sb, "kvacl-legacy", cred) as kv:
            assert not _can_read(kv, "dronescheduler-cosmosdb-key")
    finally:
        cred.close()
    cred = _wi_credential(sb, tmp_path, ns, package.name, ids[package.identity_name].client_id)
    try:
        with _kv_client(sb, "kvacl-shared", cred) as kv:
            assert _can_read(kv, "package-mongodb-connection")
        with _kv_client(sb, "kvacl-delivery", cred) as kv:
            assert not _can_read(kv, "delivery-cosmosdb-key")
    finally:
        cred.close()
    # a workload-identity token of another service account does not match the credential
    from azure.core.exceptions import ClientAuthenticationError

    cred = _wi_credential(sb, tmp_path, ns, workflow.name, ids[delivery.identity_name].client_id)
    try:
        with (
            _kv_client(sb, "kvacl-delivery", cred) as kv,
            pytest.raises(ClientAuthenticationError),
        ):
            kv.get_secret("delivery-cosmosdb-key")
    finally:
        cred.close()

    # Vault kubernetes auth -> exactly the service's path
    import hvac
    import hvac.exceptions

    client = hvac.Client(url=sb.vault.address, verify=str(sb.ca_path))
    try:
        jwt = sb.kube.mint_token(ns, ingestion.service_account_name, audiences=["vault"])
        client.auth.kubernetes.login(ingestion.name, jwt, mount_point="kubernetes")
        read = client.secrets.kv.v2.read_secret_version(
            path="acl/ingestion", mount_point="secret", raise_on_deleted_version=True
        )
        assert (
            read["data"]["data"]["eventhub-key"]
            == canaries["vault://secret/acl/ingestion#eventhub-key"]
        )
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.read_secret_version(
                path="e2e/ingestion", mount_point="secret", raise_on_deleted_version=True
            )
        # the version a refreshing pod checks without reading the value; only its own
        meta = client.secrets.kv.v2.read_secret_metadata(path="acl/ingestion", mount_point="secret")
        assert meta["data"]["current_version"] >= 1
        with pytest.raises(hvac.exceptions.Forbidden):
            client.secrets.kv.v2.read_secret_metadata(path="e2e/ingestion", mount_point="secret")
        token = client.auth.token.lookup_self()["data"]
        assert token["ttl"] <= 300
        # another service account may not log in with this role
        with pytest.raises(hvac.exceptions.VaultError):
            client.auth.kubernetes.login(
                ingestion.name, sb.kube.mint_token(ns, package.name, audiences=["vault"])
            )
    finally:
        client.adapter.close()

    # service account -> its fallback Secret only (the fake's RBAC)
    sb.kube.store.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "other-secret", "namespace": ns},
            "stringData": {"k": "CANARY-other"},
        }
    )
    assert _sa_can_get_secret(sb, ns, package.name, "package-secrets")
    assert not _sa_can_get_secret(sb, ns, package.name, "other-secret")
    assert not _sa_can_get_secret(sb, ns, delivery.name, "package-secrets")
    # pod identity: the AzureIdentity names the identity; bound, it reads its vault
    azid = sb.kube.store.get("azureidentities", scheduler.identity_name, ns)
    assert azid["spec"]["clientID"] == ids[scheduler.identity_name].client_id
    assert azid["spec"]["type"] == 0
    binding = sb.kube.store.get("azureidentitybindings", f"secretsboot-{scheduler.name}", ns)
    assert binding["spec"]["selector"] == scheduler.name
    # NMI's part, played by the fake: pods labelled with the binding's selector get the
    # identity the AzureIdentity names
    from azure.identity import ManagedIdentityCredential

    sb.azure.bind_pod_identity(azid["spec"]["clientID"], selector=binding["spec"]["selector"])
    sb.azure.set_imds_caller(scheduler.name)
    cred = ManagedIdentityCredential(
        client_id=azid["spec"]["clientID"], connection_verify=str(sb.ca_path)
    )
    try:
        with _kv_client(sb, "kvacl-legacy", cred) as kv:
            got = kv.get_secret("dronescheduler-cosmosdb-key")
            assert got.value == canaries["keyvault://kvacl-legacy/dronescheduler-cosmosdb-key"]
        with _kv_client(sb, "kvacl-delivery", cred) as kv:
            assert not _can_read(kv, "delivery-cosmosdb-key")
    finally:
        sb.azure.set_imds_caller(None)
        cred.close()
    with sb.azure.state.lock:
        vault = sb.azure.state.get_vault("kvacl-legacy")
    assert sb.azure.state.access_policy_allows(
        vault, ids[scheduler.identity_name].principal_id, "get"
    )
    assert not sb.azure.state.access_policy_allows(
        vault, ids[delivery.identity_name].principal_id, "get"
    )


def _sa_can_get_secret(sb: Any, ns: str, sa: str, name: str) -> bool:
    from kubernetes import client as k8s

    config = k8s.Configuration()
    config.host = sb.kube.url
    config.ssl_ca_cert = str(sb.ca_path)
    token = sb.kube.mint_token(ns, sa, audiences=sb.kube.app.api_audiences)
    config.api_key = {"authorization": "Bearer " + token}
    with k8s.ApiClient(config) as api:
        try:
            k8s.CoreV1Api(api).read_namespaced_secret(name, ns)
        except k8s.ApiException as exc:
            assert exc.status == 403, exc.status
            return False
    return True


# ---- crash safety ----------------------------------------------------------------------


class Killed(BaseException):
    """Stands for the process dying mid-run (not an error the code could handle)."""


@pytest.mark.parametrize("kill_after", [0, 1, 2, 3, 5, 7, 9, 12, 16, 20, 25, 29])
def test_a_run_killed_after_n_writes_is_completed_without_duplicates(
    sb: Any, tmp_path: Path, kill_after: int
) -> None:
    tag = f"k{kill_after}"
    path, _ = variant(sb, tmp_path, tag)
    done = 0

    def before_write(change: Change) -> None:
        nonlocal done
        if done >= kill_after:
            raise Killed(f"killed before write {done + 1} ({change.key})")
        done += 1

    with pytest.raises(Killed):
        provision(path, before_write=before_write, workers=4)
    assert done == kill_after

    _, result = provision(path)
    assert result.writes > 0
    assert not plan_of(path).has_changes

    spec = load_spec(path)
    rg = f"rg-{tag}"
    idents = identities_in(sb, rg)
    wanted = {s.identity_name for s in spec.services if s.identity.value != "none"}
    assert sorted(i.name for i in idents) == sorted(wanted)
    for ident in idents:
        subjects = [f.subject for f in ident.federated.values()]
        assert len(subjects) == len(set(subjects)) <= 1
    principals = {i.principal_id for i in idents}
    with sb.azure.state.lock:
        grants = [
            (ra.scope.lower(), ra.principal_id, ra.role_guid)
            for ra in sb.azure.state.role_assignments.values()
            if ra.principal_id in principals
        ]
        names = [
            ra.name
            for ra in sb.azure.state.role_assignments.values()
            if ra.principal_id in principals
        ]
    assert len(grants) == len(set(grants)) == 4  # delivery x2, package, workflow
    for ra_name, (scope, principal, role) in zip(names, grants, strict=True):
        assert ra_name == role_assignment_name(scope, principal, role)


# ---- spec changes ---------------------------------------------------------------------


def test_a_spec_change_yields_a_minimal_plan(sb: Any, tmp_path: Path) -> None:
    path, _ = variant(sb, tmp_path, "chg")
    provision(path)
    doc = yaml.safe_load(path.read_text())
    original = copy.deepcopy(doc)
    # a secret added to ingestion (Vault) -> its policy and its fetch config change, nothing else
    doc["services"][3]["secrets"].append(
        {"name": "blob-key", "from": "vault://secret/chg/ingestion-extra#blob-key"}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = plan_of(path)
    pending = sorted((c.key.kind, c.action.value) for c in plan.pending)
    assert pending == [("ConfigMap", "update"), ("policy", "update")]
    policy = next(c for c in plan.pending if c.key.kind == "policy")
    assert any('"secret/data/chg/ingestion-extra"' in str(d.after) for d in policy.diffs)

    # a service removed: without --prune nothing is deleted; with --prune only its objects go
    path.write_text(yaml.safe_dump(original, sort_keys=False))
    provision(path)
    removed = original["services"].pop(2)  # workflow (csi)
    path.write_text(yaml.safe_dump(original, sort_keys=False))
    plan = plan_of(path)
    assert not plan.has_changes
    assert plan.unmanaged_extra > 0
    plan = plan_of(path, prune=True)
    deleted = sorted(str(c.key) for c in plan.pending)
    assert all(c.action is Action.DELETE for c in plan.pending)
    name = removed["name"]
    assert deleted == sorted(
        [
            "azure:federated-credential/id-" + name + "/" + _fic(plan, name),
            f"azure:managed-identity/rg-chg/id-{name}",
            f"azure:role-assignment/id-{name} -> kvchg-shared",
            f"kubernetes:SecretProviderClass/ns-chg/secretsboot-{name}",
            f"kubernetes:ServiceAccount/ns-chg/{name}",
        ]
    )
    _, result = provision(path, prune=True)
    assert result.writes == 5
    assert not plan_of(path, prune=True).has_changes
    assert f"id-{name}" not in {i.name for i in identities_in(sb, "rg-chg")}


def _fic(plan: Any, service: str) -> str:
    return next(
        c.key.name.split("/", 1)[1]
        for c in plan.pending
        if c.key.kind == "federated-credential" and service in c.key.name
    )


# ---- preflight ------------------------------------------------------------------------


def test_an_arm_403_on_a_preflight_read_aborts_with_nothing_written(
    sb: Any, tmp_path: Path
) -> None:
    path, _ = variant(sb, tmp_path, "deny")
    before = write_calls(sb)
    sb.azure.deny_arm_action("Microsoft.Authorization/roleAssignments/read")
    try:
        with pytest.raises(DeniedError) as info:
            provision(path)
    finally:
        sb.azure.clear_arm_denials()
    assert "Microsoft.Authorization/roleAssignments/read" in str(info.value)
    assert "azure" in str(info.value)
    assert write_calls(sb) == before
    assert identities_in(sb, "rg-deny") == []


RA_WRITE = "Microsoft.Authorization/roleAssignments/write"
FIC_WRITE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"


@pytest.fixture
def arm_caller(sb: Any) -> Iterator[list[Any]]:
    """Collects the role assignments a test gives the provisioner; afterwards removes them
    and every ARM denial or restriction, so the session sandbox is as before."""
    made: list[Any] = []
    try:
        yield made
    finally:
        sb.azure.clear_arm_denials()
        for ra in made:
            sb.azure.state.delete_role_assignment(ra.scope, ra.name)


def writes_by_system(sb: Any) -> dict[str, int]:
    return {
        "kubernetes": sum(1 for c in sb.kube.app.calls if c.method in WRITE_METHODS),
        "arm": sum(1 for c in sb.azure.arm.calls if c.method in WRITE_METHODS),
    }


def pending_of(path: Path) -> list[tuple[str, str]]:
    """The plan as (object, action) pairs: it changes when any system was written to."""
    return sorted((str(c.key), c.action.value) for c in plan_of(path).pending)


def vault_policies(sb: Any) -> set[str]:
    client = sb.vault.client()
    try:
        listed = client.list("sys/policies/acl")
    finally:
        client.adapter.close()
    return set(((listed or {}).get("data") or {}).get("keys") or [])


def permission_calls(sb: Any, since: int) -> list[Any]:
    return [
        c
        for c in sb.azure.arm.calls[since:]
        if c.method == "GET"
        and c.path.lower().endswith("/providers/microsoft.authorization/permissions")
    ]


def test_a_denied_role_assignment_write_fails_the_preflight_with_zero_writes(
    sb: Any,
    tmp_path: Path,
    arm_caller: list[Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from secretsboot.cli import main
    from secretsboot.errors import ExitCode

    path, _ = variant(sb, tmp_path, "pfra")
    for k, v in sb.azure.env().items():
        monkeypatch.setenv(k, v)
    spec = load_spec(path)
    plan_before = pending_of(path)
    writes_before, calls_before = writes_by_system(sb), len(sb.azure.arm.calls)
    policies_before = vault_policies(sb)
    assert any(kind.startswith("vault:") for kind, _ in plan_before)
    sb.azure.deny_arm_action(RA_WRITE, PROVISIONER["oid"])

    code = main(["provision", "-f", str(path), "--yes"])

    err = capsys.readouterr().err
    assert code == ExitCode.DENIED == 3
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: azure: the caller lacks " + RA_WRITE)
    assert "preflight" in line and "nothing was written" in line
    assert spec.azure is not None
    rbac = [kv.name for kv in spec.azure.key_vaults if kv.mode.value == "rbac"]
    assert rbac
    for name in rbac:  # each vault scope is named, with the command that fixes it
        assert f"scope '{sb.azure.vault_id(name)}'" in line
        assert (
            f'--role "Role Based Access Control Administrator" --scope {sb.azure.vault_id(name)}'
            in line
        )
    assert "role-assignment id-" in line  # the objects that need the permission
    assert "userAssignedIdentities/write" not in line  # only what is really missing
    # the preflight asked ARM, and no system saw a single write
    assert permission_calls(sb, calls_before)
    assert writes_by_system(sb) == writes_before
    assert vault_policies(sb) == policies_before
    assert identities_in(sb, "rg-pfra") == []
    assert pending_of(path) == plan_before

    sb.azure.clear_arm_denials()  # granted now: a re-run does the whole job
    provision(path)
    assert not plan_of(path).has_changes


def test_a_denied_federated_credential_write_names_permission_scope_and_fix(
    sb: Any, tmp_path: Path, arm_caller: list[Any]
) -> None:
    path, _ = variant(sb, tmp_path, "pffic")
    plan_before = pending_of(path)
    writes_before = writes_by_system(sb)
    sb.azure.deny_arm_action(FIC_WRITE)  # every caller: the wildcard-free exact action
    with pytest.raises(DeniedError) as info:
        provision(path)
    text = str(info.value)
    rg_id = f"/subscriptions/{sb.azure.subscription_id}/resourceGroups/rg-pffic"
    assert f"the caller lacks {FIC_WRITE} on scope '{rg_id}'" in text
    assert "federated-credential id-" in text
    assert f'--role "Managed Identity Contributor" --scope {rg_id}' in text
    assert RA_WRITE not in text
    assert writes_by_system(sb) == writes_before
    assert pending_of(path) == plan_before


def test_a_caller_judged_by_its_roles_is_checked_per_scope(
    sb: Any, tmp_path: Path, arm_caller: list[Any]
) -> None:
    from secretsboot.sandbox.azure.state import CONTRIBUTOR, USER_ACCESS_ADMINISTRATOR

    path, _ = variant(sb, tmp_path, "pfroles")
    spec = load_spec(path)
    assert spec.azure is not None
    plan_before = pending_of(path)
    writes_before = writes_by_system(sb)
    oid = PROVISIONER["oid"]
    sb.azure.state.restrict_arm_caller(oid)
    sub = f"/subscriptions/{sb.azure.subscription_id}"
    # Contributor may do everything but Microsoft.Authorization writes (notActions */Write)
    arm_caller.append(sb.azure.assign_role(sub, oid, CONTRIBUTOR))
    with pytest.raises(DeniedError) as info:
        provision(path)
    text = str(info.value)
    assert text.count(RA_WRITE) >= 1
    for action in (
        "Microsoft.ManagedIdentity/userAssignedIdentities/write",
        FIC_WRITE,
        "Microsoft.KeyVault/vaults/accessPolicies/write",
    ):
        assert action not in text
    assert writes_by_system(sb) == writes_before
    assert pending_of(path) == plan_before
    # User Access Administrator on each RBAC vault's group is inherited by the vault scope
    for kv in spec.azure.key_vaults:
        if kv.mode.value == "rbac":
            rg = kv.resource_group or spec.azure.resource_group
            scope = f"{sub}/resourceGroups/{rg}"
            if not any(ra.scope == scope for ra in arm_caller):
                arm_caller.append(sb.azure.assign_role(scope, oid, USER_ACCESS_ADMINISTRATOR))
    _, result = provision(path)
    assert result.writes == len(plan_before)
    assert not plan_of(path).has_changes


def test_an_arm_without_the_permissions_api_is_refused_at_the_write(
    sb: Any,
    tmp_path: Path,
    arm_caller: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The one case the preflight cannot cover: it says so, and the write's 403 names
    the service, the object and the permission."""
    from secretsboot.sandbox.azure.arm import arm_error

    def no_such_api(req: Any, oid: str, scope: str) -> Any:
        return arm_error(
            400,
            "InvalidResourceType",
            "The resource type 'permissions' could not be found in the namespace "
            "'Microsoft.Authorization' for api version '2022-04-01'.",
        )

    monkeypatch.setattr(sb.azure.arm, "_permissions", no_such_api)
    path, _ = variant(sb, tmp_path, "pfnoapi")
    sb.azure.deny_arm_action(RA_WRITE)
    caplog.set_level("WARNING", logger="secretsboot.provision.azure")
    with pytest.raises(DeniedError) as info:
        provision(path)
    text = str(info.value)
    assert RA_WRITE in text and "preflight" not in text
    assert "role-assignment" in text and "service " in text
    assert "has no permissions API" in caplog.text
    sb.azure.clear_arm_denials()
    provision(path)  # a re-run finishes the job
    assert not plan_of(path).has_changes


# ---- CLI ---------------------------------------------------------------------------------


def test_cli_plan_exit_codes_and_json(
    sb: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from secretsboot.cli import main

    caplog.set_level("DEBUG")

    def sync_all(doc: dict[str, Any]) -> None:
        doc["services"] = [doc["services"][1]]  # package: Key Vault with a k8s fallback

    path, canaries = variant(sb, tmp_path, "cli", sync_all)
    for k, v in sb.azure.env().items():  # SECRETSBOOT_KEYVAULT_<NAME> of the new vaults
        monkeypatch.setenv(k, v)
    # --sync-fallbacks reads the primary with the provisioner's own identity
    sb.azure.assign_role(
        sb.azure.vault_id("kvcli-shared"), PROVISIONER["oid"], KEY_VAULT_SECRETS_USER
    )
    assert main(["plan", "-f", str(path)]) == 10
    captured = capsys.readouterr()
    out = captured.out
    assert "+ managed-identity rg-cli/id-package-cli" in out
    # pending changes are a summary line, not an error (issue 13, finding 5)
    assert re.search(r"^Plan: \d+ to add, 0 to change, 0 to destroy\.$", out, re.M), out
    assert "error" not in captured.err
    assert main(["plan", "-f", str(path), "-o", "json"]) == 10
    doc = json.loads(capsys.readouterr().out)
    assert doc["hasChanges"] is True
    assert doc["summary"]["create"] == len([c for c in doc["changes"] if c["action"] == "create"])
    # stdin is not a terminal: no confirmation possible, nothing applied without --yes
    assert main(["provision", "-f", str(path)]) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert identities_in(sb, "rg-cli") == []
    assert main(["-q", "provision", "-f", str(path), "--yes", "--sync-fallbacks"]) == 0
    assert main(["plan", "-f", str(path), "--sync-fallbacks"]) == 0
    captured = capsys.readouterr()
    assert "No changes." in captured.out
    for value in canaries.values():
        assert value not in captured.out + captured.err + caplog.text
    secret = sb.kube.store.get("secrets", "package-secrets", "ns-cli")
    import base64

    primary = canaries["keyvault://kvcli-shared/package-mongodb-connection"]
    assert base64.b64decode(secret["data"]["mongodb-connection"]).decode() == primary
    assert "secretsboot.dev/placeholder" not in (secret["metadata"].get("annotations") or {})
    # --dry-run equals plan
    assert main(["provision", "-f", str(path), "--dry-run"]) == 0


def test_a_kubernetes_refusal_in_preflight_writes_nothing_anywhere(
    sb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = variant(sb, tmp_path, "kdeny")
    # a caller that may read everything but write nothing in Kubernetes
    store = sb.kube.store
    store.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "reader", "namespace": "default"},
        }
    )
    store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "sb-test-read-all"},
            "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list"]}],
        }
    )
    store.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "sb-test-read-all"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "sb-test-read-all",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
        }
    )
    token = sb.kube.mint_token("default", "reader", audiences=sb.kube.app.api_audiences)
    kubeconfig = yaml.safe_load(Path(sb.kube.kubeconfig_path).read_text())
    for user in kubeconfig["users"]:
        user["user"] = {"token": token}
    limited = tmp_path / "kubeconfig"
    limited.write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(limited))
    kube_before, arm_before = len(sb.kube.app.calls), len(sb.azure.arm.calls)
    with pytest.raises(DeniedError) as info:
        provision(path)
    assert "kubernetes" in str(info.value) and "nothing was written" in str(info.value)
    kube_new = sb.kube.app.calls[kube_before:]
    arm_new = sb.azure.arm.calls[arm_before:]
    assert any("selfsubjectaccessreviews" in c.path for c in kube_new)
    assert all(c.method == "GET" or "selfsubjectaccessreviews" in c.path for c in kube_new)
    assert arm_new and all(c.method == "GET" for c in arm_new)
    assert identities_in(sb, "rg-kdeny") == []


def test_transient_server_errors_are_retried(sb: Any, tmp_path: Path) -> None:
    path, _ = variant(sb, tmp_path, "flaky")
    sb.azure.faults("arm").fail_next(2, status=503)
    sb.kube.faults.fail_next(2, status=503)
    try:
        _, result = provision(path)
    finally:
        sb.azure.faults("arm").clear()
        sb.kube.faults.clear()
    assert result.writes > 0
    assert not plan_of(path).has_changes


def test_the_20_federated_credentials_limit_is_checked_before_writing(
    sb: Any, tmp_path: Path
) -> None:
    # The spec refuses more than 20 services on one identity; the plan must also count the
    # credentials the identity already holds from outside the spec.
    def crowd(doc: dict[str, Any]) -> None:
        template = doc["services"][0]
        doc["services"] = []
        for i in range(2):
            svc = copy.deepcopy(template)
            svc["name"] = f"crowd-{i}"
            svc["managedIdentity"] = "id-crowded"
            doc["services"].append(svc)

    path, _ = variant(sb, tmp_path, "fic", crowd)
    ident = sb.azure.create_identity("rg-fic", "id-crowded")
    for i in range(19):
        sb.azure.add_federated_credential(
            ident.id, f"other-{i}", "https://issuer.example.test", f"system:serviceaccount:x:sa{i}"
        )
    plan = plan_of(path)
    errors = [n for n in plan.notes if n.level == "error"]
    assert len(errors) == 1
    assert "21 federated credentials" in errors[0].message
    assert "own identity" in errors[0].detail
    before = write_calls(sb)
    with pytest.raises(BadInputError, match="Azure allows 20"):
        provision(path)
    assert write_calls(sb) == before


def test_only_and_out(sb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from secretsboot.cli import main

    path, _ = variant(sb, tmp_path, "only")
    spec = load_spec(path)
    ingestion = spec.services[3].name
    out = tmp_path / "out"
    code = main(
        ["-q", "provision", "-f", str(path), "--only", ingestion, "--yes", "--out", str(out)]
    )
    quiet = capsys.readouterr()
    assert code == 0, quiet.err
    assert quiet.out == quiet.err == ""  # -q: errors only
    assert (
        main(["provision", "-f", str(path), "--only", ingestion, "--yes", "--out", str(out)]) == 0
    )
    assert f"wrote 1 file(s) to {out}: {ingestion}/fetch.yaml" in capsys.readouterr().err
    text = (out / ingestion / "fetch.yaml").read_text()
    assert yaml.safe_load(text)["vault"]["auth"]["role"] == ingestion
    assert not sb.kube.store.exists("configmaps", f"secretsboot-{ingestion}", "ns-only")
    assert sb.kube.store.exists("serviceaccounts", ingestion, "ns-only")
    assert not sb.kube.store.exists("serviceaccounts", spec.services[0].name, "ns-only")
    assert identities_in(sb, "rg-only") == []
    # the other services are still to do; --only with --prune never touches them
    assert main(["plan", "-f", str(path), "--only", ingestion, "--prune"]) == 10  # ConfigMap
    assert main(["plan", "-f", str(path)]) == 10
    capsys.readouterr()
    assert main(["plan", "-f", str(path), "--only", "nope"]) == 2
    assert "no service named 'nope'" in capsys.readouterr().err


def test_placeholder_fallback_then_sync_from_the_primary(
    sb: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    from secretsboot.provision.desired import PLACEHOLDER
    from secretsboot.secret import fingerprint

    path, canaries = variant(sb, tmp_path, "sync")
    for k, v in sb.azure.env().items():
        monkeypatch.setenv(k, v)
    provision(path)
    secret = sb.kube.store.get("secrets", "package-secrets", "ns-sync")
    assert base64.b64decode(secret["data"]["mongodb-connection"]).decode() == PLACEHOLDER
    assert secret["metadata"]["annotations"]["secretsboot.dev/placeholder"] == (
        "mongodb-connection"
    )
    sb.azure.assign_role(
        sb.azure.vault_id("kvsync-shared"), PROVISIONER["oid"], KEY_VAULT_SECRETS_USER
    )
    plan = plan_of(path, sync_fallbacks=True)
    assert [(c.key.name, c.action.value) for c in plan.pending] == [
        ("ns-sync/package-secrets", "update")
    ]
    (d,) = plan.pending[0].diffs
    primary = canaries["keyvault://kvsync-shared/package-mongodb-connection"]
    assert (d.before, d.after) == (fingerprint(PLACEHOLDER), fingerprint(primary))
    _, result = provision(path, sync_fallbacks=True)
    assert result.writes == 1
    secret = sb.kube.store.get("secrets", "package-secrets", "ns-sync")
    assert base64.b64decode(secret["data"]["mongodb-connection"]).decode() == primary
    assert "secretsboot.dev/placeholder" not in (secret["metadata"].get("annotations") or {})
    assert not plan_of(path, sync_fallbacks=True).has_changes
    # without --sync-fallbacks an existing value is left alone
    assert not plan_of(path).has_changes


def test_a_missing_resource_group_is_named_with_the_fix(sb: Any, tmp_path: Path) -> None:
    from secretsboot.errors import NotFoundError

    path, _ = variant(sb, tmp_path, "norg", seed=False)
    plan = plan_of(path)  # every failed reference is named at once, not the first only
    messages = [f"{n.message}: {n.detail}" for n in plan.errors]
    assert any("rg-norg" in m and "az group create" in m for m in messages), messages
    assert any("kvnorg-delivery" in m and "does not exist" in m for m in messages), messages
    before = write_calls(sb)
    with pytest.raises(NotFoundError) as info:
        provision(path)
    assert "rg-norg" in str(info.value) and "nothing was written" in str(info.value)
    assert write_calls(sb) == before


def test_an_existing_identity_is_adopted_keeping_its_other_tags(sb: Any, tmp_path: Path) -> None:
    def one(doc: dict[str, Any]) -> None:
        doc["services"] = doc["services"][:1]

    path, _ = variant(sb, tmp_path, "adopt", one)
    spec = load_spec(path)
    svc = spec.services[0]
    existing = sb.azure.state.create_identity(
        "rg-adopt", svc.identity_name, location="eastus2", tags={"owner": "team-x"}
    )
    plan = plan_of(path)
    change = next(c for c in plan.pending if c.key.kind == "managed-identity")
    assert change.action is Action.UPDATE
    assert sorted(d.path for d in change.diffs) == [
        "tags.managed-by",
        "tags.secretsboot-ownership",
        "tags.secretsboot-spec",
    ]
    assert "adopted" in render_text(plan)
    provision(path)
    (ident,) = identities_in(sb, "rg-adopt")
    assert ident.client_id == existing.client_id  # the same identity, not a new one
    assert ident.tags == {
        "owner": "team-x",
        "managed-by": "secretsboot",
        "secretsboot-spec": "dd-adopt",
        "secretsboot-ownership": "adopted",
    }
    assert not plan_of(path).has_changes


def test_an_unknown_kube_context_is_a_clear_error(sb: Any, tmp_path: Path) -> None:
    from secretsboot.provision.kubernetes import KubernetesBackend

    def context(doc: dict[str, Any]) -> None:
        doc["kubernetes"]["context"] = "aks-nope"

    path, _ = variant(sb, tmp_path, "ctx", context, seed=False)
    with pytest.raises(BadInputError) as info:
        KubernetesBackend.connect(load_spec(path))
    assert "aks-nope" in str(info.value) and "SECRETSBOOT_KUBE_CONTEXT" in str(info.value)


def test_prune_finds_the_grants_of_a_deleted_identity_on_a_vault_no_longer_in_the_spec(
    sb: Any, tmp_path: Path
) -> None:
    def own_group(doc: dict[str, Any]) -> None:
        doc["azure"]["keyVaults"][0]["resourceGroup"] = "rg-orph-kv"  # kvorph-delivery

    path, _ = variant(sb, tmp_path, "orph", own_group)
    provision(path)
    doc = yaml.safe_load(path.read_text())
    gone = doc["services"].pop(0)  # delivery: the only user of kvorph-delivery
    doc["azure"]["keyVaults"].pop(0)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    plan = plan_of(path, prune=True)
    deleted = {str(c.key) for c in plan.pending if c.action is Action.DELETE}
    assert f"azure:role-assignment/id-{gone['name']} -> kvorph-delivery" in deleted
    assert f"azure:role-assignment/id-{gone['name']} -> kvorph-shared" in deleted
    principal = next(
        i.principal_id for i in identities_in(sb, "rg-orph") if i.name == f"id-{gone['name']}"
    )
    provision(path, prune=True)
    with sb.azure.state.lock:
        left = [
            ra for ra in sb.azure.state.role_assignments.values() if ra.principal_id == principal
        ]
    assert left == []
    assert not plan_of(path, prune=True).has_changes


# ---- issue 13: ownership, preflight of references, k8s primaries, --verify -----------


def policy_texts(sb: Any) -> dict[str, str]:
    """Every ACL policy OpenBao holds, by name (OpenBao keeps no call log we can read)."""
    client = sb.vault.client()
    try:  # GET ?list=true (the sandbox's HTTPS front answers no LIST method)
        names = client.list("sys/policies/acl")["data"]["keys"]
        return {n: client.read(f"sys/policies/acl/{n}")["data"]["policy"] for n in names}
    finally:
        client.adapter.close()


def kube_exists(sb: Any, resource: str, name: str, namespace: str) -> bool:
    from secretsboot.sandbox.kube.resources import ApiError

    try:
        sb.kube.store.get(resource, name, namespace)
    except ApiError as exc:
        assert exc.code == 404
        return False
    return True


def all_writes(sb: Any) -> tuple[int, int]:
    """Writes in every fake's call log: (Kubernetes, ARM)."""
    kube = sum(1 for c in sb.kube.app.calls if c.method in WRITE_METHODS)
    arm = sum(1 for c in sb.azure.arm.calls if c.method in WRITE_METHODS)
    return kube, arm


def test_a_declared_but_missing_vault_fails_plan_and_provision_writes_nothing(
    sb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from secretsboot.cli import main

    path, _ = variant(sb, tmp_path, "nokv")  # the drone-delivery example on the sandbox
    doc = yaml.safe_load(path.read_text())
    doc["azure"]["keyVaults"].append({"name": "kvnokv-missing", "mode": "rbac"})
    doc["services"][0]["secrets"].append(
        {"name": "extra", "from": "keyvault://kvnokv-missing/extra"}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["plan", "-f", str(path)]) == 4
    captured = capsys.readouterr()
    assert "error: [delivery-nokv] azure: Key Vault 'kvnokv-missing' is declared" in captured.out
    assert captured.err.startswith("error: azure: Key Vault 'kvnokv-missing'")
    assert "az keyvault create -n kvnokv-missing" in captured.err
    before, policies = all_writes(sb), policy_texts(sb)
    assert main(["provision", "-f", str(path), "--yes"]) == 4
    assert "nothing was written anywhere" in capsys.readouterr().err
    assert all_writes(sb) == before  # zero writes in the Kubernetes and ARM call logs
    assert policy_texts(sb) == policies  # and none in OpenBao
    assert identities_in(sb, "rg-nokv") == []


def test_wrong_mode_missing_mount_and_unreachable_issuer_are_named_together(
    sb: Any, tmp_path: Path
) -> None:
    def break_references(doc: dict[str, Any]) -> None:
        legacy = next(kv for kv in doc["azure"]["keyVaults"] if kv["mode"] == "access-policy")
        legacy["mode"] = "rbac"  # the vault exists in access-policy mode
        doc["vault"]["auth"]["kubernetes"]["mount"] = "kubernetes-missing"
        doc["azure"]["oidcIssuer"] = "https://127.0.0.1:9/issuer"  # nothing listens

    # the vault exists in access-policy mode (seeding creates the others)
    sb.azure.create_keyvault("kvrefs-legacy", mode="access-policy", resource_group="rg-refs")
    path, _ = variant(sb, tmp_path, "refs", break_references)
    plan = plan_of(path)
    text = "\n".join(f"{n.message}: {n.detail}" for n in plan.errors)
    assert "kvrefs-legacy' is in access-policy mode but the spec declares mode: rbac" in text
    assert "set mode: access-policy" in text
    assert "no auth method is mounted at 'kubernetes-missing/'" in text
    assert "bao auth enable -path=kubernetes-missing kubernetes" in text
    assert "the OIDC issuer https://127.0.0.1:9/issuer: cannot reach" in text
    before = all_writes(sb)
    with pytest.raises(BadInputError):
        provision(path)
    assert all_writes(sb) == before


def test_a_k8s_primary_is_the_operators_and_never_gets_a_placeholder(
    sb: Any, tmp_path: Path
) -> None:
    def k8s_primary(doc: dict[str, Any]) -> None:
        svc = doc["services"][3]  # ingestion: identity none
        svc["secrets"].append({"name": "cache", "from": "k8s://catalog-cache#password"})

    path, _ = variant(sb, tmp_path, "prim", k8s_primary)
    plan = plan_of(path)
    assert not plan.errors
    assert not any(c.key.name == "ns-prim/catalog-cache" for c in plan.changes)
    (note,) = [n for n in plan.notes if "catalog-cache" in n.message]
    assert note.level == "action" and "never creates or fills a primary Secret" in note.message
    assert "kubectl -n ns-prim create secret generic catalog-cache" in note.detail
    provision(path)
    assert not kube_exists(sb, "secrets", "catalog-cache", "ns-prim")
    role = sb.kube.store.get("roles", "secretsboot-ingestion-prim", "ns-prim")
    assert role["rules"][0]["resourceNames"] == ["catalog-cache"]
    # the operator creates it: the action goes away, the Secret stays theirs (unlabelled)
    sb.kube.store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "catalog-cache", "namespace": "ns-prim"},
            "data": {"password": "b3BlcmF0b3I="},
        }
    )
    again = plan_of(path)
    assert not again.has_changes
    assert not any("catalog-cache" in n.message for n in again.notes)


def test_prune_deletes_what_it_created_and_releases_what_it_adopted_in_all_three_systems(
    sb: Any, tmp_path: Path
) -> None:
    """The operator's Secret, identity and Vault policy/role existed before provision
    (adopted); the rest provision made (created). After the services leave the spec,
    --prune deletes only the created ones and releases the adopted ones."""

    def with_operator_secret(doc: dict[str, Any]) -> None:
        doc["services"][1]["secrets"][0]["fallback"] = ["k8s://catalog-cache#password"]

    path, _ = variant(sb, tmp_path, "own", with_operator_secret)
    spec = load_spec(path)
    ns = "ns-own"
    sb.kube.store.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    sb.kube.store.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "catalog-cache", "namespace": ns, "labels": {"team": "x"}},
            "data": {"password": "b3BlcmF0b3I="},
        }
    )
    package = spec.service("package-own")
    sb.azure.state.create_identity(
        "rg-own", package.identity_name, location="eastus2", tags={"owner": "team-x"}
    )
    sb.vault.request(
        "PUT", "sys/policies/acl/secretsboot-dd-own-ingestion-own", {"policy": "# theirs\n"}
    )
    sb.vault.request(
        "POST",
        "auth/kubernetes/role/ingestion-own",
        {"bound_service_account_names": ["x"], "bound_service_account_namespaces": [ns]},
    )
    plan = plan_of(path)
    owners = {(c.key.kind, c.key.name): c.ownership for c in plan.pending}
    assert owners[("Secret", f"{ns}/catalog-cache")] == "adopted"
    assert owners[("managed-identity", f"rg-own/{package.identity_name}")] == "adopted"
    assert owners[("policy", "secretsboot-dd-own-ingestion-own")] == "adopted"
    assert owners[("role", "kubernetes/ingestion-own")] == "adopted"
    assert owners[("managed-identity", "rg-own/id-delivery-own")] == "created"
    provision(path)
    assert not plan_of(path).has_changes

    def keep_workflow(doc: dict[str, Any]) -> None:
        doc["services"] = [s for s in doc["services"] if s["name"] == "workflow-own"]

    doc = yaml.safe_load(path.read_text())
    keep_workflow(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    pruning = plan_of(path, prune=True)
    actions = {(c.key.kind, c.key.name): c.action for c in pruning.pending}
    assert actions[("Secret", f"{ns}/catalog-cache")] is Action.RELEASE
    assert actions[("managed-identity", f"rg-own/{package.identity_name}")] is Action.RELEASE
    assert actions[("policy", "secretsboot-dd-own-ingestion-own")] is Action.RELEASE
    assert actions[("role", "kubernetes/ingestion-own")] is Action.RELEASE
    assert actions[("managed-identity", "rg-own/id-delivery-own")] is Action.DELETE
    assert actions[("ServiceAccount", f"{ns}/delivery-own")] is Action.DELETE
    assert "(adopted: released" in render_text(pruning)
    provision(path, prune=True)
    # adopted: intact, released (secretsboot's marks gone, the operator's kept)
    secret = sb.kube.store.get("secrets", "catalog-cache", ns)
    assert secret["metadata"]["labels"] == {"team": "x"}
    assert "secretsboot.dev/ownership" not in (secret["metadata"].get("annotations") or {})
    (ident,) = [i for i in identities_in(sb, "rg-own") if i.name == package.identity_name]
    assert ident.tags == {"owner": "team-x"}
    policies = policy_texts(sb)
    assert "managed-by: secretsboot" not in policies["secretsboot-dd-own-ingestion-own"]
    client = sb.vault.client()
    try:
        assert "ingestion-own" in client.list("auth/kubernetes/role")["data"]["keys"]
    finally:
        client.adapter.close()
    # created: deleted
    assert "id-delivery-own" not in {i.name for i in identities_in(sb, "rg-own")}
    assert "secretsboot-dd-own-delivery-own" not in policies
    assert not kube_exists(sb, "serviceaccounts", "delivery-own", ns)
    assert not plan_of(path, prune=True).has_changes


def test_provision_verify_reports_every_service_effective_despite_propagation(
    sb: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from secretsboot.cli import main

    path, _ = variant(sb, tmp_path, "verify")
    doc = yaml.safe_load(path.read_text())
    for kv in doc["azure"]["keyVaults"]:  # the data-plane URLs the pods' fetch.yaml names
        kv["url"] = sb.azure.keyvault_url(kv["name"])
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    sb.azure.set_propagation_delay(3.0)
    try:
        code = main(["provision", "-f", str(path), "--yes", "--verify", "--verify-timeout", "60"])
    finally:
        sb.azure.set_propagation_delay(0.0)
    captured = capsys.readouterr()
    assert code == 0, captured.out[-3000:] + captured.err
    lines = [line for line in captured.out.splitlines() if "-verify:" in line]
    effective = sorted(
        line.split()[1].rstrip(":") for line in lines if line.startswith("effective")
    )
    assert effective == [
        "delivery-verify",
        "ingestion-verify",
        "package-verify",
        "workflow-verify",
    ], captured.out
    assert any(
        line.startswith("not verified") and "dronescheduler-verify" in line for line in lines
    )
    # the fresh role assignments took effect only after the delay: verify waited them out
    waited = [float(m) for m in re.findall(r" in (\d+\.\d)s:", captured.out)]
    assert max(waited) >= 1.0, captured.out
    assert "CANARY" not in captured.out + captured.err
