"""Classification that needs other objects: producers of Secrets, SPC modes, owners, kinds."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from secretsboot.audit.classify import classify, not_a_workload
from secretsboot.audit.loader import load_text
from secretsboot.audit.model import Workload
from secretsboot.audit.resolve import Index


def audit(text: str) -> list[Workload]:
    loaded = load_text(textwrap.dedent(text), "case.yaml")
    assert loaded.errors == []
    index = Index(loaded.manifests)
    return [classify(m, index) for m in index.manifests if not_a_workload(m, index) is None]


def one(text: str) -> Workload:
    (w,) = audit(text)
    return w


CONSUMER = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: app, namespace: shop}
spec:
  template:
    spec:
      containers:
        - name: app
          env: [{name: DB, valueFrom: {secretKeyRef: {name: db, key: password}}}]
---
"""

MOUNTS_KV = """
      volumes:
        - name: kv
          csi: {driver: secrets-store.csi.k8s.io, volumeAttributes: {secretProviderClass: kv}}"""

PRODUCERS = [
    (
        "ExternalSecret target",
        "apiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\n"
        "metadata: {name: es, namespace: shop}\nspec: {target: {name: db}}",
        "external-secrets",
    ),
    (
        "ExternalSecret without target: its own name",
        "apiVersion: external-secrets.io/v1\nkind: ExternalSecret\nmetadata: {name: db}\nspec: {}",
        "external-secrets",
    ),
    (
        "kubernetes-client.io ExternalSecret",
        "apiVersion: kubernetes-client.io/v1\nkind: ExternalSecret\nmetadata: {name: db}\n"
        "spec: {backendType: azureKeyVault}",
        "external-secrets",
    ),
    (
        "AzureKeyVaultSecret output",
        "apiVersion: spv.no/v2beta1\nkind: AzureKeyVaultSecret\nmetadata: {name: x}\n"
        "spec: {vault: {name: kv}, output: {secret: {name: db}}}",
        "akv2k8s",
    ),
    (
        "SPC secretObjects sync (azure)",
        "kind: SecretProviderClass\nmetadata: {name: kv}\n"
        "spec: {provider: azure, secretObjects: [{secretName: db, type: Opaque}]}",
        "keyvault-csi",
    ),
    (
        "SPC secretObjects sync (vault)",
        "kind: SecretProviderClass\nmetadata: {name: kv}\n"
        "spec: {provider: vault, secretObjects: [{secretName: db}]}",
        "vault-csi",
    ),
    (
        "Vault Secrets Operator destination",
        "apiVersion: secrets.hashicorp.com/v1beta1\nkind: VaultStaticSecret\n"
        "metadata: {name: x, namespace: shop}\nspec: {destination: {name: db, create: true}}",
        "vault-secrets-operator",
    ),
]


@pytest.mark.parametrize(("name", "producer", "approach"), PRODUCERS, ids=[p[0] for p in PRODUCERS])
def test_secret_producers(name: str, producer: str, approach: str) -> None:
    consumer = CONSUMER
    if "SecretProviderClass" in producer:  # a class syncs only while a pod mounts it
        consumer = CONSUMER.replace("\n---", MOUNTS_KV + "\n---")
    w = one(consumer + producer)
    assert w.approach_ids == sorted({"k8s-secret-env", approach})
    (found,) = [a for a in w.approaches if a.id == approach]
    assert {e.object.split("/")[0] for e in found.evidence} == {
        "Deployment",
        producer.split("kind: ")[1].split("\n")[0],
    }


def test_a_class_the_pod_does_not_mount_is_only_another_possible_producer() -> None:
    w = one(CONSUMER + PRODUCERS[4][1])
    assert w.approach_ids == ["k8s-secret-env"]
    (env,) = w.approaches
    assert "other possible producer (not mounted by this pod): SecretProviderClass/kv" in (
        env.evidence[0].detail
    )


def test_producer_in_another_namespace_does_not_count() -> None:
    producer = PRODUCERS[0][1].replace("shop", "billing")
    assert one(CONSUMER + producer).approach_ids == ["k8s-secret-env"]


def test_producer_for_another_secret_does_not_count() -> None:
    producer = PRODUCERS[0][1].replace("name: db", "name: cache")
    assert one(CONSUMER + producer).approach_ids == ["k8s-secret-env"]


def pod(env_or_more: str, annotations: str = "{}") -> str:
    return f"kind: Pod\nmetadata: {{name: p, annotations: {annotations}}}\nspec:\n{env_or_more}"


@pytest.mark.parametrize(
    ("spec", "annotations", "expected"),
    [
        ("  containers: [{name: a, env: [{name: S, value: s1@azurekeyvault}]}]", "{}", ["akv2k8s"]),
        (
            "  containers: [{name: a, env: [{name: S, value: 's1@azurekeyvault?tls.key'}]}]",
            "{}",
            ["akv2k8s"],
        ),
        ("  containers: [{name: a, env: [{name: S, value: user@example.com}]}]", "{}", []),
        (
            "  containers: [{name: a, env: [{name: P, value: 'vault:secret/data/db#password'}]}]",
            "{}",
            ["bank-vaults"],
        ),
        (
            "  containers: [{name: a}]",
            "{vault.security.banzaicloud.io/vault-addr: 'https://vault:8200'}",
            ["bank-vaults"],
        ),
        (
            "  containers: [{name: a, env: [{name: P, value: "
            "'arn:aws:secretsmanager:us-east-1:1:secret:db'}]}]",
            "{}",
            ["secrets-init"],
        ),
        (
            "  containers: [{name: a, env: [{name: P, "
            "value: 'gcp:secretmanager:projects/p/secrets/s'}]}]",
            "{}",
            ["secrets-init"],
        ),
        (
            "  initContainers: [{name: secretsboot-fetch, "
            "image: 'ghcr.io/secretsboot/secretsboot:0.1.0',"
            " args: [fetch, --config, /etc/secretsboot/fetch.yaml]}]\n  containers: [{name: a}]",
            "{}",
            ["secretsboot-init"],
        ),
        (
            "  initContainers: [{name: init, "
            "image: 'ghcr.io/secretsboot/secretsboot:0.1.0', args: [fetch]}]\n"
            "  containers: [{name: a}]",
            "{}",
            ["secretsboot-init"],
        ),
        # the annotation alone is not delivery (inject writes it on csi pods too)
        ("  containers: [{name: a}]", "{secretsboot.dev/service: orders}", []),
        (
            "  containers: [{name: secretsboot-fetch, "
            "image: 'ghcr.io/secretsboot/secretsboot:0.1.0'}]",
            "{}",
            [],
        ),
        (
            "  containers: [{name: app, image: 'ghcr.io/secretsboot/secretsboot:0.1.0', "
            "command: [secretsboot, run, --config, /etc/secretsboot/fetch.yaml, --, app]}]",
            "{}",
            ["secretsboot-init"],
        ),
        (
            "  containers: [{name: app, image: 'ghcr.io/secretsboot/secretsboot:0.1.0', "
            "args: [version]}]",
            "{secretsboot.dev/service: orders}",
            [],
        ),
    ],
)
def test_env_injectors_and_secretsboot_init(
    spec: str, annotations: str, expected: list[str]
) -> None:
    assert one(pod(spec, annotations)).approach_ids == expected


EXAMPLE_SPEC = Path(__file__).parents[2] / "examples" / "drone-delivery.yaml"


def _injected(service: str) -> Workload:
    """A Deployment as `secretsboot inject` writes it for ``service`` of the example spec."""
    from secretsboot.inject import dump_documents, inject_documents
    from secretsboot.spec import load_spec

    app = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": service, "namespace": "backend-dev"},
        "spec": {
            "selector": {"matchLabels": {"app": service}},
            "template": {
                "metadata": {"labels": {"app": service}},
                "spec": {"containers": [{"name": "app", "image": f"{service}:1.0"}]},
            },
        },
    }
    result = inject_documents([app], load_spec(EXAMPLE_SPEC), with_config=True)
    assert [o.ref for o in result.injected] == [f"Deployment/backend-dev/{service}"]
    workloads = audit(dump_documents(result.documents))
    (w,) = [w for w in workloads if w.name == service]
    return w


def test_csi_only_injected_workload_is_not_secretsboot_init() -> None:
    """inject's `delivery: csi` output: a CSI volume and the service annotation, no init
    container: the CSI driver delivers, secretsboot does not run in the pod."""
    w = _injected("workflow")
    pod_spec = w.manifest.body["spec"]["template"]["spec"] if w.manifest else {}
    assert "initContainers" not in pod_spec  # the input is what the test says it is
    assert "secretsboot.dev/service" in str(w.manifest.body if w.manifest else "")
    assert "secretsboot-init" not in w.approach_ids
    assert "keyvault-csi" in w.approach_ids
    assert "workload-identity" in w.approach_ids


def test_init_container_injected_workload_is_secretsboot_init() -> None:
    w = _injected("delivery")
    (approach,) = [a for a in w.approaches if a.id == "secretsboot-init"]
    paths = [e.path for e in approach.evidence]
    assert paths[0] == "spec.template.spec.initContainers[0].name"
    assert 'spec.template.metadata.annotations["secretsboot.dev/service"]' in paths
    assert approach.mode == "workload-identity"


SPC_VOLUME = """
kind: Pod
metadata: {name: p, namespace: shop}
spec:
  containers: [{name: a}]
  volumes:
    - name: kv
      csi:
        driver: secrets-store.csi.k8s.io
        volumeAttributes: {secretProviderClass: kv}
        NODE_PUBLISH
---
kind: SecretProviderClass
metadata: {name: kv, namespace: shop}
spec:
  provider: PROVIDER
  parameters: PARAMS
"""


@pytest.mark.parametrize(
    ("provider", "params", "node_publish", "expected", "mode"),
    [
        (
            "azure",
            "{clientID: 11111111-1111-1111-1111-111111111111}",
            False,
            ["keyvault-csi"],
            "workload-identity",
        ),
        (
            "azure",
            '{usePodIdentity: "true"}',
            False,
            ["aad-pod-identity", "keyvault-csi"],
            "aad-pod-identity",
        ),
        ("azure", '{useVMManagedIdentity: "true"}', False, ["keyvault-csi"], "kubelet-identity"),
        ("azure", "{keyvaultName: kv}", True, ["keyvault-csi"], "service-principal"),
        ("vault", "{roleName: app}", False, ["vault-csi"], "vault-kubernetes-auth"),
        ("aws", "{}", False, ["secrets-store-csi"], "aws"),
    ],
)
def test_csi_provider_and_identity_mode(
    provider: str, params: str, node_publish: bool, expected: list[str], mode: str
) -> None:
    text = (
        SPC_VOLUME.replace("PROVIDER", provider)
        .replace("PARAMS", params)
        .replace("NODE_PUBLISH", "nodePublishSecretRef: {name: sp}" if node_publish else "")
    )
    w = one(text)
    assert w.approach_ids == expected
    (csi,) = [a for a in w.approaches if a.id == expected[-1]]
    assert csi.mode == mode


def test_spc_same_namespace_wins_over_same_name_elsewhere() -> None:
    text = (
        SPC_VOLUME.replace("PROVIDER", "azure").replace("PARAMS", "{}").replace("NODE_PUBLISH", "")
    )
    text += (
        "---\nkind: SecretProviderClass\nmetadata: {name: kv, namespace: other}\n"
        "spec: {provider: vault}\n"
    )
    assert one(text).approach_ids == ["keyvault-csi"]


def test_spc_found_by_name_in_another_namespace_when_none_is_closer() -> None:
    text = (
        SPC_VOLUME.replace("PROVIDER", "vault").replace("PARAMS", "{}").replace("NODE_PUBLISH", "")
    )
    text = text.replace(
        "metadata: {name: kv, namespace: shop}", "metadata: {name: kv, namespace: other}"
    )
    assert one(text).approach_ids == ["vault-csi"]


def test_missing_spc_is_said_in_the_evidence() -> None:
    text = SPC_VOLUME.split("---")[0].replace("NODE_PUBLISH", "")
    w = one(text)
    assert w.approach_ids == ["keyvault-csi"]
    assert "not in the input" in w.approaches[0].evidence[0].detail


def test_pod_identity_binding_and_identity_are_evidence() -> None:
    text = """
    kind: Deployment
    metadata: {name: d, namespace: shop}
    spec:
      template:
        metadata: {labels: {aadpodidbinding: orders}}
        spec: {containers: [{name: a}]}
    ---
    apiVersion: aadpodidentity.k8s.io/v1
    kind: AzureIdentityBinding
    metadata: {name: b, namespace: shop}
    spec: {AzureIdentity: orders-id, Selector: orders}
    ---
    apiVersion: aadpodidentity.k8s.io/v1
    kind: AzureIdentity
    metadata: {name: orders-id, namespace: shop}
    spec: {type: 0, resourceID: /x, clientID: y}
    """
    (a,) = one(text).approaches
    assert a.id == "aad-pod-identity"
    assert [e.object for e in a.evidence] == [
        "Deployment/shop/d",
        "AzureIdentityBinding/shop/b",
        "AzureIdentity/shop/orders-id",
    ]


def test_cronjob_job_template() -> None:
    text = """
    apiVersion: batch/v1
    kind: CronJob
    metadata: {name: nightly}
    spec:
      schedule: "0 1 * * *"
      jobTemplate:
        spec:
          template:
            metadata: {annotations: {vault.hashicorp.com/agent-inject: "true"}}
            spec:
              containers:
                - name: job
                  envFrom: [{secretRef: {name: db}}]
    """
    w = one(text)
    assert w.approach_ids == ["k8s-secret-env", "vault-agent-injector"]
    env = next(a for a in w.approaches if a.id == "k8s-secret-env")
    assert (
        env.evidence[0].path
        == "spec.jobTemplate.spec.template.spec.containers[0].envFrom[0].secretRef"
    )


def test_service_account_of_a_pod_defaults_to_default() -> None:
    assert (
        one("kind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n").service_account == "default"
    )
    assert (
        one(
            "kind: Pod\nmetadata: {name: p}\nspec: {serviceAccountName: sa, containers: []}\n"
        ).service_account
        == "sa"
    )


LIVE_NAMESPACE = """
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web, namespace: shop, uid: d1}
    spec: {template: {spec: {containers: [{name: a, envFrom: [{secretRef: {name: s}}]}]}}}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: web-5d4f
      namespace: shop
      ownerReferences: [{kind: Deployment, name: web, controller: true}]
    spec: {template: {spec: {containers: [{name: a, envFrom: [{secretRef: {name: s}}]}]}}}
  - apiVersion: v1
    kind: Pod
    metadata:
      name: web-5d4f-x1
      namespace: shop
      ownerReferences: [{kind: ReplicaSet, name: web-5d4f, controller: true}]
    spec: {containers: [{name: a, envFrom: [{secretRef: {name: s}}]}]}
  - apiVersion: v1
    kind: Pod
    metadata:
      name: orphan
      namespace: shop
      ownerReferences: [{kind: ReplicaSet, name: gone, controller: true}]
    spec: {containers: [{name: a}]}
  - apiVersion: v1
    kind: ReplicationController
    metadata: {name: legacy, namespace: shop}
    spec: {template: {spec: {containers: [{name: a}]}}}
"""


def test_owned_objects_are_not_separate_workloads() -> None:
    refs = sorted(w.ref for w in audit(LIVE_NAMESPACE))
    assert refs == ["Deployment/shop/web", "Pod/shop/orphan", "ReplicationController/shop/legacy"]


def test_unknown_kinds_and_crds_are_kept_not_classified() -> None:
    text = """
    apiVersion: argoproj.io/v1alpha1
    kind: Rollout
    metadata: {name: r}
    spec: {template: {spec: {containers: [{name: a}]}}}
    ---
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata: {name: things.example.com}
    spec: 12
    """
    loaded = load_text(textwrap.dedent(text))
    index = Index(loaded.manifests)
    assert [m.kind for m in index.manifests] == ["Rollout", "CustomResourceDefinition"]
    assert audit(text) == []


@pytest.mark.parametrize(
    ("workload_ns", "sa_ns", "found"),
    [
        ("shop", "shop", True),
        ("", "shop", True),
        ("shop", "", True),
        ("", "", True),
        ("shop", "billing", False),
    ],
)
def test_namespace_rule_for_service_accounts(workload_ns: str, sa_ns: str, found: bool) -> None:
    def meta(ns: str) -> str:
        return f", namespace: {ns}" if ns else ""

    text = f"""
    kind: Pod
    metadata: {{name: p{meta(workload_ns)}}}
    spec: {{serviceAccountName: sa, containers: [{{name: a}}]}}
    ---
    kind: ServiceAccount
    metadata: {{name: sa{meta(sa_ns)}, annotations: {{azure.workload.identity/client-id: x}}}}
    """
    assert (one(text).approach_ids == ["workload-identity"]) is found
