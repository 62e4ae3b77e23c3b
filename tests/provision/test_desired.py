"""Desired state from the spec: pure, no system is touched."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from secretsboot.contract import KEY_VAULT_SECRETS_USER
from secretsboot.provision.desired import (
    FIC_LIMIT,
    IdentityInfo,
    build,
    fic_name,
    role_assignment_name,
    role_definition_id,
    vault_policy_text,
)
from secretsboot.provision.model import ANY_VALUE, KNOWN_AFTER_APPLY, Desired
from secretsboot.secret import SecretValue
from secretsboot.spec import Spec, load_spec, load_spec_text

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drone-delivery.yaml"
SUB = "3f2a9c61-5b7e-4d2a-9d6e-1c0b8a7f4e21"


@pytest.fixture(scope="module")
def spec() -> Spec:
    return load_spec(EXAMPLE)


def objects(state: Any, kind: str) -> dict[str, Desired]:
    return {d.key.name: d for d in state.objects if d.key.kind == kind}


def ids(*names: str) -> dict[str, IdentityInfo]:
    return {
        n: IdentityInfo(
            str(uuid.uuid5(uuid.NAMESPACE_DNS, n + "c")),
            str(uuid.uuid5(uuid.NAMESPACE_DNS, n + "p")),
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/"
            f"Microsoft.ManagedIdentity/userAssignedIdentities/{n}",
        )
        for n in names
    }


def mutated(fn: Any) -> Spec:
    doc = yaml.safe_load(EXAMPLE.read_text())
    fn(doc)
    return load_spec_text(yaml.safe_dump(doc), "mutated.yaml")


def test_every_identity_service_gets_one_identity_and_workload_identity_a_fic(spec: Spec) -> None:
    state = build(spec, identities={})
    assert sorted(objects(state, "managed-identity")) == [
        "rg-drone-delivery/id-delivery",
        "rg-drone-delivery/id-dronescheduler-legacy",
        "rg-drone-delivery/id-package",
        "rg-drone-delivery/id-workflow",
    ]
    fics = objects(state, "federated-credential")
    assert len(fics) == 3  # delivery, package, workflow (not pod identity, not ingestion)
    fic = fics[f"id-delivery/{fic_name('backend-dev', 'delivery', spec.azure.oidc_issuer or '')}"]
    assert fic.body == {
        "issuer": spec.azure.oidc_issuer if spec.azure else None,
        "subject": "system:serviceaccount:backend-dev:delivery",
        "audiences": ["api://AzureADTokenExchange"],
    }
    assert fic.rank > objects(state, "managed-identity")["rg-drone-delivery/id-delivery"].rank


def test_role_assignments_are_deterministic_per_scope_principal_role(spec: Spec) -> None:
    known = ids("id-delivery", "id-package", "id-workflow", "id-dronescheduler-legacy")
    a = objects(build(spec, identities=known), "role-assignment")
    b = objects(build(spec, identities=known), "role-assignment")
    assert sorted(a) == [
        "id-delivery -> kv-dd-delivery",
        "id-delivery -> kv-dd-shared",
        "id-package -> kv-dd-shared",
        "id-workflow -> kv-dd-shared",
    ]
    for name, d in a.items():
        assert d.extra["assignment"] == b[name].extra["assignment"]
        uuid.UUID(d.extra["assignment"])
        assert d.body["roleDefinitionId"].endswith(KEY_VAULT_SECRETS_USER)
    scope = a["id-delivery -> kv-dd-delivery"].body["scope"]
    assert scope == (
        f"/subscriptions/{SUB}/resourceGroups/rg-drone-delivery/providers/"
        "Microsoft.KeyVault/vaults/kv-dd-delivery"
    )
    principal = known["id-delivery"].principal_id
    assert a["id-delivery -> kv-dd-delivery"].extra["assignment"] == role_assignment_name(
        scope, principal, role_definition_id(SUB)
    )
    # different scope, principal or role -> a different name
    assert role_assignment_name(scope + "x", principal, KEY_VAULT_SECRETS_USER) != (
        role_assignment_name(scope, principal, KEY_VAULT_SECRETS_USER)
    )
    assert role_assignment_name(scope, principal, "other") != role_assignment_name(
        scope, principal, KEY_VAULT_SECRETS_USER
    )


def test_unknown_identity_ids_are_known_after_apply(spec: Spec) -> None:
    state = build(spec, identities={})
    ra = objects(state, "role-assignment")["id-package -> kv-dd-shared"]
    assert ra.body["principalId"] == KNOWN_AFTER_APPLY
    assert ra.extra["assignment"] == KNOWN_AFTER_APPLY
    sa = objects(state, "ServiceAccount")["backend-dev/package"]
    assert sa.body["metadata"]["annotations"]["azure.workload.identity/client-id"] == (
        KNOWN_AFTER_APPLY
    )
    known = build(spec, identities=ids("id-package"))
    sa = objects(known, "ServiceAccount")["backend-dev/package"]
    assert sa.body["metadata"]["annotations"]["azure.workload.identity/client-id"] == (
        ids("id-package")["id-package"].client_id
    )


def test_key_vault_scope_secret_grants_each_secret_not_the_vault() -> None:
    def per_secret(doc: dict[str, Any]) -> None:
        doc["services"][0]["keyVaultScope"] = "secret"

    state = build(mutated(per_secret), identities={})
    names = sorted(n for n in objects(state, "role-assignment") if n.startswith("id-delivery"))
    assert names == [
        "id-delivery -> kv-dd-delivery/delivery-cosmosdb-key",
        "id-delivery -> kv-dd-delivery/delivery-redis-key",
        "id-delivery -> kv-dd-shared/appinsights-connection-string",
    ]
    ra = objects(state, "role-assignment")[names[0]]
    assert ra.body["scope"].endswith("/vaults/kv-dd-delivery/secrets/delivery-cosmosdb-key")


def test_access_policy_vaults_get_a_get_policy_not_a_role(spec: Spec) -> None:
    state = build(spec, identities={})
    policies = objects(state, "access-policy")
    assert list(policies) == ["kv-dd-legacy/id-dronescheduler-legacy"]
    assert policies["kv-dd-legacy/id-dronescheduler-legacy"].body["permissions"] == {
        "secrets": ["get"]
    }
    assert not any("kv-dd-legacy" in n for n in objects(state, "role-assignment"))


def test_shared_managed_identity_is_one_identity_with_one_fic_per_service() -> None:
    def share(doc: dict[str, Any]) -> None:
        for svc in doc["services"][:3]:
            svc["managedIdentity"] = "id-shared"

    state = build(mutated(share), identities={})
    idents = objects(state, "managed-identity")
    assert "rg-drone-delivery/id-shared" in idents
    assert sorted(idents["rg-drone-delivery/id-shared"].services) == [
        "delivery",
        "package",
        "workflow",
    ]
    fics = [n for n in objects(state, "federated-credential") if n.startswith("id-shared/")]
    assert len(fics) == 3
    assert state.identity_users["id-shared"] == ["delivery", "package", "workflow"]


def test_service_accounts_automount_only_when_the_sa_token_is_used(spec: Spec) -> None:
    sas = objects(build(spec, identities={}), "ServiceAccount")
    mounts = {n: d.body["automountServiceAccountToken"] for n, d in sas.items()}
    assert mounts == {
        "backend-dev/delivery": False,
        "backend-dev/package": True,  # k8s:// fallback read with the SA token
        "backend-dev/workflow": False,
        "backend-dev/ingestion": True,  # Vault kubernetes auth
        "backend-dev/dronescheduler": False,
    }
    assert "annotations" not in sas["backend-dev/ingestion"].body["metadata"]


def test_rbac_is_a_namespaced_role_on_named_secrets_only(spec: Spec) -> None:
    state = build(spec, identities={})
    assert not objects(state, "ClusterRole") and not objects(state, "ClusterRoleBinding")
    roles = objects(state, "Role")
    assert list(roles) == ["backend-dev/secretsboot-package"]
    assert roles["backend-dev/secretsboot-package"].body["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["package-secrets"],
        }
    ]
    binding = objects(state, "RoleBinding")["backend-dev/secretsboot-package"]
    assert binding.body["subjects"] == [
        {"kind": "ServiceAccount", "name": "package", "namespace": "backend-dev"}
    ]
    assert binding.rank > roles["backend-dev/secretsboot-package"].rank


def test_fallback_secret_placeholder_or_synced_fingerprint(spec: Spec) -> None:
    secret = objects(build(spec, identities={}), "Secret")["backend-dev/package-secrets"]
    assert secret.body["data"] == {"mongodb-connection": ANY_VALUE}
    assert secret.secrets == {}
    value = SecretValue("CANARY-5e1f0a")
    synced = build(
        spec,
        identities={},
        fallback_values={("backend-dev", "package-secrets", "mongodb-connection"): value},
    )
    secret = objects(synced, "Secret")["backend-dev/package-secrets"]
    assert secret.body["data"] == {"mongodb-connection": value.fingerprint}
    assert "CANARY" not in repr(secret.body)


def test_csi_gets_a_secret_provider_class_flexvolume_a_printed_snippet() -> None:
    def flex(doc: dict[str, Any]) -> None:
        doc["services"][0]["delivery"] = "flexvolume"

    state = build(mutated(flex), identities=ids("id-workflow"))
    spc = objects(state, "SecretProviderClass")["backend-dev/secretsboot-workflow"]
    params = spc.body["spec"]["parameters"]
    assert spc.body["spec"]["provider"] == "azure"
    assert params["keyvaultName"] == "kv-dd-shared"
    assert params["clientID"] == ids("id-workflow")["id-workflow"].client_id
    objs = yaml.safe_load(params["objects"])["array"]
    assert [yaml.safe_load(o)["objectName"] for o in objs] == [
        "workflow-servicebus-key",
        "workflow-servicebus-policy-name",
    ]
    # flexvolume: nothing applied for the volume, a warning with the snippet instead
    assert not any(n.endswith("secretsboot-delivery") for n in objects(state, "ConfigMap"))
    note = next(n for n in state.notes if n.service == "delivery" and n.level == "warning")
    assert "deprecated" in note.message
    assert '"driver": "azure/kv"' in note.detail


def test_pod_identity_objects_label_and_deprecation_warning(spec: Spec) -> None:
    state = build(spec, identities=ids("id-dronescheduler-legacy"))
    azid = objects(state, "AzureIdentity")["backend-dev/id-dronescheduler-legacy"]
    assert azid.body["spec"]["type"] == 0
    assert azid.body["spec"]["resourceID"].endswith(
        "/userAssignedIdentities/id-dronescheduler-legacy"
    )
    binding = objects(state, "AzureIdentityBinding")["backend-dev/secretsboot-dronescheduler"]
    assert binding.body["spec"] == {
        "azureIdentity": "id-dronescheduler-legacy",
        "selector": "dronescheduler",
    }
    notes = [n for n in state.notes if n.service == "dronescheduler"]
    assert any("aadpodidbinding: dronescheduler" in n.message for n in notes)
    warning = next(n for n in notes if n.level == "warning")
    assert "deprecated" in warning.message
    assert "system:serviceaccount:backend-dev:dronescheduler" in warning.detail
    assert "api://AzureADTokenExchange" in warning.detail


def test_vault_policy_reads_exactly_its_paths_and_role_binds_the_sa(spec: Spec) -> None:
    state = build(spec, identities={})
    policy = objects(state, "policy")["secretsboot-drone-delivery-ingestion"]
    assert policy.body["policy"] == vault_policy_text(
        "drone-delivery",
        "ingestion",
        # KV v2: the value, and the version a refreshing pod checks without the value
        ["secret/data/drone-delivery/ingestion", "secret/metadata/drone-delivery/ingestion"],
    )
    assert policy.body["policy"].count("path ") == 2
    role = objects(state, "role")["kubernetes/ingestion"]
    assert role.body == {
        "bound_service_account_names": ["ingestion"],
        "bound_service_account_namespaces": ["backend-dev"],
        "token_policies": ["secretsboot-drone-delivery-ingestion"],
        "token_ttl": 300,
        "token_max_ttl": 300,
    }


def test_vault_kv1_paths_and_jwt_role() -> None:
    def jwt(doc: dict[str, Any]) -> None:
        doc["vault"]["kvVersion"] = 1
        doc["vault"]["tokenTtl"] = "90s"
        doc["vault"]["auth"]["jwt"] = {"mount": "jwt", "audience": "vault"}
        doc["services"][3]["vaultAuth"] = "jwt"

    state = build(mutated(jwt), identities={})
    policy = objects(state, "policy")["secretsboot-drone-delivery-ingestion"]
    assert 'path "secret/drone-delivery/ingestion"' in policy.body["policy"]
    role = objects(state, "role")["jwt/ingestion"]
    assert role.body["bound_subject"] == "system:serviceaccount:backend-dev:ingestion"
    assert role.body["bound_audiences"] == ["vault"]
    assert role.body["user_claim"] == "sub"
    assert role.body["token_ttl"] == 90


def test_everything_managed_is_labelled_with_the_spec(spec: Spec) -> None:
    for d in build(spec, identities={}).objects:
        if d.key.system == "kubernetes" and d.key.kind != "Namespace":
            labels = d.body["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "secretsboot"
            assert labels["secretsboot.dev/spec"] == "drone-delivery"
        if d.key.kind == "managed-identity":
            assert d.body["tags"] == {
                "managed-by": "secretsboot",
                "secretsboot-spec": "drone-delivery",
            }


def test_only_limits_to_one_service(spec: Spec) -> None:
    state = build(spec, identities={}, only="ingestion")
    assert {s for d in state.objects for s in d.services} == {"ingestion"}
    assert "id-delivery" in state.identity_users  # the FIC count still sees every service


def test_fic_names_are_short_and_stable() -> None:
    long_sa = "a" * 200
    name = fic_name("ns", long_sa, "https://issuer/")
    assert len(name) <= 120
    assert name == fic_name("ns", long_sa, "https://issuer")  # trailing slash ignored
    assert fic_name("ns", "sa", "https://one/") != fic_name("ns", "sa", "https://two/")
    assert FIC_LIMIT == 20


def test_fetch_config_configmap_unless_out(spec: Spec) -> None:
    state = build(spec, identities={})
    cms = objects(state, "ConfigMap")
    assert sorted(cms) == [
        "backend-dev/secretsboot-delivery",
        "backend-dev/secretsboot-dronescheduler",
        "backend-dev/secretsboot-ingestion",
        "backend-dev/secretsboot-package",
    ]
    text = cms["backend-dev/secretsboot-ingestion"].body["data"]["fetch.yaml"]
    doc = yaml.safe_load(text)
    assert doc["kind"] == "FetchConfig" and doc["service"] == "ingestion"
    assert doc["vault"]["auth"]["role"] == "ingestion"
    without = build(spec, identities={}, configmaps=False)
    assert not objects(without, "ConfigMap")
    assert without.fetch_configs["ingestion"] == text
