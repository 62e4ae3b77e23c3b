"""Which secret-delivery approaches each workload uses (ids of REFERENCE.md section 3).

>>> from secretsboot.audit.loader import load_text
>>> from secretsboot.audit.resolve import Index
>>> index = Index(load_text('''
... kind: Pod
... metadata: {name: web, labels: {azure.workload.identity/use: "true"}}
... spec: {containers: [{name: app, envFrom: [{secretRef: {name: db}}]}]}
... ''').manifests)
>>> classify(index.manifests[0], index).approach_ids
['k8s-secret-env', 'workload-identity']

Workloads are Pods, Deployments, StatefulSets, DaemonSets, Jobs, CronJobs, and
ReplicaSets/ReplicationControllers, minus objects controlled by another workload
that is in the input (a live namespace lists the Deployment, its ReplicaSet and
its Pods: only the Deployment is a workload). Each classifier is a small function
``(Pod, Index) -> Approaches``, one module per family, registered in
:data:`CLASSIFIERS`; an approach found by two classifiers is merged (evidence
joined, first identity mode kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from secretsboot.audit.classify import azure, kube, operators, vault
from secretsboot.audit.classify._pod import Classifier, Pod, pod_view
from secretsboot.audit.model import Approach, Manifest, Workload
from secretsboot.audit.resolve import OWNER_KINDS, WORKLOAD_KINDS, Index, as_dict, as_list, as_str

__all__ = ["CLASSIFIERS", "Pod", "classify", "controlled", "not_a_workload", "owners", "pod_view"]

CLASSIFIERS: tuple[Classifier, ...] = (
    azure.workload_identity,
    azure.aad_pod_identity,
    azure.secrets_store_csi,
    azure.flexvolume,
    vault.agent_injector,
    vault.bank_vaults,
    operators.produced_secrets,
    operators.akv2k8s_env,
    operators.secrets_init,
    operators.secretsboot_init,
    kube.secret_env,
    kube.secret_volume,
    kube.literal_credential,
)


def not_a_workload(manifest: Manifest, index: Index) -> str | None:
    """Why ``manifest`` is not audited as a workload of its own, or None when it is one."""
    if manifest.kind not in WORKLOAD_KINDS:
        return "not a workload kind"
    return controlled(manifest.namespace, owners(manifest), index.get)


def owners(manifest: Manifest) -> tuple[tuple[str, str], ...]:
    """(kind, name) of each owner that would make ``manifest`` part of another workload."""
    meta = as_dict(manifest.body.get("metadata"))
    out: list[tuple[str, str]] = []
    for ref in as_list(meta.get("ownerReferences")):
        owner = as_dict(ref)
        kind = as_str(owner.get("kind"))
        if kind in OWNER_KINDS:
            out.append((kind, as_str(owner.get("name"))))
    return tuple(out)


def controlled(
    namespace: str, owned_by: Iterable[tuple[str, str]], get: Callable[[str, str, str], object]
) -> str | None:
    """Why a workload with these owners is not one of its own: an owner is in the input
    (``get(kind, namespace, name)`` finds it), or None."""
    for kind, name in owned_by:
        if get(kind, namespace, name):
            return f"controlled by a {kind} in the input (audited as that {kind})"
    return None


def classify(manifest: Manifest, index: Index) -> Workload:
    """The workload of ``manifest`` (a workload kind) with every approach it uses."""
    pod = pod_view(manifest, index)
    merged: dict[str, Approach] = {}
    if pod is not None:
        for classifier in CLASSIFIERS:
            for found in classifier(pod, index):
                seen = merged.get(found.id)
                if seen is None:
                    merged[found.id] = found
                else:
                    merged[found.id] = Approach(
                        found.id,
                        seen.evidence + tuple(e for e in found.evidence if e not in seen.evidence),
                        seen.mode or found.mode,
                    )
    return Workload(
        kind=manifest.kind,
        namespace=manifest.namespace,
        name=manifest.name,
        file=manifest.file,
        line=manifest.line,
        service_account=pod.service_account if pod else Index.service_account_name(manifest),
        approaches=[merged[k] for k in sorted(merged)],
        manifest=manifest,
        doc_index=manifest.doc_index,
    )
