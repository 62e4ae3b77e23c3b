"""Azure identity and Key Vault approaches: workload identity, aad-pod-identity, CSI, FlexVolume.

Flagged (pod template of a Deployment)::

    metadata: {labels: {azure.workload.identity/use: "true"}}        -> workload-identity
    metadata: {labels: {aadpodidbinding: orders}}                    -> aad-pod-identity
    volumes: [{csi: {driver: secrets-store.csi.k8s.io,
                     volumeAttributes: {secretProviderClass: kv}}}]  -> keyvault-csi / vault-csi
    volumes: [{flexVolume: {driver: azure/kv}}]                      -> keyvault-flexvolume

Not flagged: a MutatingWebhookConfiguration whose selector names the label (not a
workload); ``azure.workload.identity/use: "false"``.
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.classify._pod import CSI_DRIVER, Pod, approach, at_object, key_path
from secretsboot.audit.model import Approach, Evidence
from secretsboot.audit.resolve import Index, as_dict, as_list, as_str, get_ci, truthy

WI_LABEL = "azure.workload.identity/use"
WI_CLIENT_ID = "azure.workload.identity/client-id"
WI_PREFIX = "azure.workload.identity/"
WI_TOKEN_ENV = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105 - a variable name, not a secret
WI_PROXY_IMAGE = "azure/workload-identity/proxy"
WI_AUDIENCE = "api://AzureADTokenExchange"
POD_ID_LABEL = "aadpodidbinding"
FLEX_DRIVER = "azure/kv"


def workload_identity(pod: Pod, index: Index) -> Iterator[Approach]:
    ev: list[Evidence] = []
    label = pod.labels.get(WI_LABEL)
    if label is not None and truthy(label):
        ev.append(pod.at(key_path(pod.meta_path, "labels", WI_LABEL)))
    for key in pod.annotations:
        if key.startswith(WI_PREFIX):
            ev.append(pod.at(key_path(pod.meta_path, "annotations", key)))
    if pod.kind != "Pod":
        owner_labels = as_dict(pod.owner_meta().get("labels"))
        if WI_LABEL in owner_labels and truthy(owner_labels[WI_LABEL]) and label is None:
            ev.append(
                pod.at(
                    key_path("metadata", "labels", WI_LABEL),
                    "label on the workload's metadata, not on its pod template",
                )
            )
    ev.extend(_service_account_evidence(pod, index))
    for cpath, container in pod.containers:
        if WI_PROXY_IMAGE in as_str(container.get("image")):
            ev.append(pod.at(f"{cpath}.image", "workload identity proxy (migration)"))
    for path, entry in pod.env():
        if as_str(entry.get("name")) == WI_TOKEN_ENV:
            ev.append(pod.at(f"{path}.name"))
    for vpath, volume in pod.volumes:
        sources = as_list(as_dict(volume.get("projected")).get("sources"))
        for j, source in enumerate(sources):
            token = as_dict(as_dict(source).get("serviceAccountToken"))
            if as_str(token.get("audience")) == WI_AUDIENCE:
                ev.append(pod.at(f"{vpath}.projected.sources[{j}].serviceAccountToken.audience"))
    if ev:
        yield approach("workload-identity", ev, "workload-identity")


def _service_account_evidence(pod: Pod, index: Index) -> list[Evidence]:
    """The ServiceAccount's client-id annotation (and a label misplaced on it)."""
    sa = index.get("ServiceAccount", pod.namespace, pod.service_account)
    if sa is None:
        return []
    ev: list[Evidence] = []
    meta = as_dict(sa.body.get("metadata"))
    annotations = as_dict(meta.get("annotations"))
    if as_str(annotations.get(WI_CLIENT_ID)):
        ev.append(at_object(sa, key_path("metadata", "annotations", WI_CLIENT_ID)))
    labels = as_dict(meta.get("labels"))
    if WI_LABEL in labels and truthy(labels[WI_LABEL]):
        ev.append(
            at_object(
                sa,
                key_path("metadata", "labels", WI_LABEL),
                "label on the ServiceAccount; the webhook reads it from the pod",
            )
        )
    return ev


def aad_pod_identity(pod: Pod, index: Index) -> Iterator[Approach]:
    ev: list[Evidence] = []
    selector = as_str(pod.labels.get(POD_ID_LABEL))
    if selector:
        ev.append(pod.at(key_path(pod.meta_path, "labels", POD_ID_LABEL)))
    elif pod.kind != "Pod":
        selector = as_str(as_dict(pod.owner_meta().get("labels")).get(POD_ID_LABEL))
        if selector:
            ev.append(
                pod.at(
                    key_path("metadata", "labels", POD_ID_LABEL),
                    "label on the workload's metadata, not on its pod template",
                )
            )
    if not selector:
        return
    bindings = index.identity_bindings(selector, pod.namespace)
    if not bindings:
        ev.append(pod.at(ev[0].path, f"no AzureIdentityBinding with selector '{selector}'"))
    for binding in bindings[:1]:
        spec = as_dict(binding.body.get("spec"))
        ev.append(at_object(binding, "spec.selector"))
        identity_name = as_str(get_ci(spec, "azureIdentity"))
        identity = index.azure_identity(binding.namespace, identity_name) if identity_name else None
        if identity is not None:
            ev.append(at_object(identity, "spec"))
    yield approach("aad-pod-identity", ev, "aad-pod-identity")


def _spc_mode(params: dict[str, object], node_publish: bool) -> str:
    if as_str(params.get("clientID")):
        return "workload-identity"
    if truthy(params.get("usePodIdentity")):
        return "aad-pod-identity"
    if truthy(params.get("useVMManagedIdentity")):
        return "kubelet-identity"
    if node_publish:
        return "service-principal"
    return ""


def secrets_store_csi(pod: Pod, index: Index) -> Iterator[Approach]:
    for vpath, volume in pod.volumes:
        csi = as_dict(volume.get("csi"))
        if as_str(csi.get("driver")) != CSI_DRIVER:
            continue
        attrs = as_dict(csi.get("volumeAttributes"))
        name = as_str(attrs.get("secretProviderClass"))
        node_publish = bool(as_dict(csi.get("nodePublishSecretRef")))
        ev = [pod.at(f"{vpath}.csi.volumeAttributes.secretProviderClass")]
        spc = index.secret_provider_class(pod.namespace, name) if name else None
        if spc is None:
            ev[0] = pod.at(ev[0].path, f"SecretProviderClass '{name}' not in the input")
            yield approach("keyvault-csi", ev, "service-principal" if node_publish else "")
            continue
        spec = as_dict(spc.body.get("spec"))
        provider = as_str(spec.get("provider")).lower()
        params = as_dict(spec.get("parameters"))
        ev.append(at_object(spc, "spec.provider"))
        if provider == "vault":
            role = as_str(params.get("roleName"))
            yield approach("vault-csi", ev, "vault-kubernetes-auth" if role else "")
            continue
        if provider not in {"azure", ""}:
            yield approach("secrets-store-csi", ev, provider)
            continue
        mode = _spc_mode(params, node_publish)
        yield approach("keyvault-csi", ev, mode)
        if mode == "aad-pod-identity":
            yield approach(
                "aad-pod-identity",
                [at_object(spc, "spec.parameters.usePodIdentity")],
                "aad-pod-identity",
            )


def flexvolume(pod: Pod, index: Index) -> Iterator[Approach]:
    for vpath, volume in pod.volumes:
        flex = as_dict(volume.get("flexVolume"))
        if as_str(flex.get("driver")) != FLEX_DRIVER:
            continue
        options = {str(k).lower(): v for k, v in as_dict(flex.get("options")).items()}
        ev = [pod.at(f"{vpath}.flexVolume.driver")]
        if truthy(options.get("usepodidentity")):
            yield approach("keyvault-flexvolume", ev, "aad-pod-identity")
            yield approach(
                "aad-pod-identity",
                [pod.at(f"{vpath}.flexVolume.options.usepodidentity")],
                "aad-pod-identity",
            )
        elif truthy(options.get("usevmmanagedidentity")):
            yield approach("keyvault-flexvolume", ev, "kubelet-identity")
        else:
            yield approach(
                "keyvault-flexvolume", ev, "service-principal" if "secretRef" in flex else ""
            )
