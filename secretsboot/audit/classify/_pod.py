"""The pod of a workload as the classifiers read it: containers, volumes, consumed Secrets.

Built once per workload (:func:`pod_view`) so that each classifier is a short
function over precomputed lists, with field paths already written out.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from secretsboot.audit.model import Approach, Evidence, Manifest, format_path
from secretsboot.audit.resolve import Index, Producer, as_dict, as_list, as_str

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True, slots=True)
class Consumed:
    """A Secret the pod reads: from env (secretKeyRef, envFrom) or as a volume."""

    secret: str
    path: str
    how: str  # "env" | "volume"


@dataclass(slots=True)
class Pod:
    manifest: Manifest
    namespace: str
    spec_path: str  # e.g. "spec.template.spec"
    meta_path: str  # e.g. "spec.template.metadata"
    spec: dict[str, Any]
    meta: dict[str, Any]
    labels: dict[str, Any]
    annotations: dict[str, Any]
    service_account: str
    kind: str = ""
    ref: str = ""  # the manifest's Kind/namespace/name, built once for all its evidence
    containers: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    volumes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    consumed: list[Consumed] = field(default_factory=list)
    envs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # the SecretProviderClasses its CSI volumes mount (resolved on first use)
    _spcs: list[Manifest] | None = None

    def at(self, path: str, detail: str = "") -> Evidence:
        """Evidence in the workload itself."""
        # paths repeat across workloads (a few dozen distinct): one string each
        ref = self.ref or self.manifest.ref
        m = self.manifest
        return Evidence(ref, sys.intern(path), m.file, m.line, detail, m.doc_index)

    def env(self) -> list[tuple[str, dict[str, Any]]]:
        """(path, env entry) for every container, init containers included."""
        return self.envs

    def owner_meta(self) -> dict[str, Any]:
        """The workload object's own metadata (differs from the pod's for controllers)."""
        return as_dict(self.manifest.body.get("metadata"))


CSI_DRIVER = "secrets-store.csi.k8s.io"


def mounted_spcs(pod: Pod, index: Index) -> list[Manifest]:
    """The SecretProviderClasses the pod's Secrets Store CSI volumes name (those in the input)."""
    if pod._spcs is None:
        found: list[Manifest] = []
        for _, volume in pod.volumes:
            csi = as_dict(volume.get("csi"))
            if as_str(csi.get("driver")) != CSI_DRIVER:
                continue
            name = as_str(as_dict(csi.get("volumeAttributes")).get("secretProviderClass"))
            spc = index.secret_provider_class(pod.namespace, name) if name else None
            if spc is not None:
                found.append(spc)
        pod._spcs = found
    return pod._spcs


def producers(pod: Pod, index: Index, secret: str) -> tuple[list[Producer], list[Producer]]:
    """(what creates Secret ``secret`` for this pod, other possible producers).

    A SecretProviderClass syncs its ``secretObjects`` only while a pod mounts it, so
    it is this pod's producer only when this pod mounts it; another class syncing a
    Secret of the same name is at most another possible producer.
    """
    mine: list[Producer] = []
    others: list[Producer] = []
    for producer in index.secret_producers(pod.namespace, secret):
        if producer.manifest.kind == "SecretProviderClass" and not any(
            producer.manifest is spc for spc in mounted_spcs(pod, index)
        ):
            others.append(producer)
        else:
            mine.append(producer)
    return mine, others


def other_producers_note(pod: Pod, index: Index, secret: str) -> str:
    """``secret``, with a note naming the classes that could sync it but are not mounted."""
    if not secret:
        return secret
    others = producers(pod, index, secret)[1]
    if not others:
        return secret
    names = ", ".join(sorted({p.manifest.ref for p in others}))
    return f"{secret}; other possible producer (not mounted by this pod): {names}"


def at_object(manifest: Manifest, path: str, detail: str = "") -> Evidence:
    """Evidence in a supporting object (ServiceAccount, SecretProviderClass, binding...)."""
    return Evidence(manifest.ref, path, manifest.file, manifest.line, detail, manifest.doc_index)


def key_path(base: str, field_name: str, key: str) -> str:
    """``spec.template.metadata.labels["azure.workload.identity/use"]``-style path."""
    return f'{base}.{field_name}["{key}"]' if base else f'{field_name}["{key}"]'


def _str_map(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in as_dict(value).items()}


def pod_view(manifest: Manifest, index: Index) -> Pod | None:
    """The pod of a workload manifest, or None when ``manifest`` is not a workload kind."""
    tpl = Index.pod_template(manifest)
    if tpl is None:
        return None
    spec_tuple, meta_tuple, spec, meta = tpl
    spec_path = format_path(spec_tuple)
    pod = Pod(
        manifest=manifest,
        namespace=manifest.namespace,
        spec_path=spec_path,
        meta_path=format_path(meta_tuple),
        spec=spec,
        meta=meta,
        labels=_str_map(meta.get("labels")),
        annotations=_str_map(meta.get("annotations")),
        service_account=as_str(spec.get("serviceAccountName") or spec.get("serviceAccount"))
        or "default",
        kind=manifest.kind,
        ref=manifest.ref,
    )
    for list_name in CONTAINER_LISTS:
        for i, container in enumerate(as_list(spec.get(list_name))):
            if isinstance(container, dict):
                cpath = f"{spec_path}.{list_name}[{i}]"
                pod.containers.append((cpath, container))
                for j, entry in enumerate(as_list(container.get("env"))):
                    if isinstance(entry, dict):
                        pod.envs.append((f"{cpath}.env[{j}]", entry))
    for i, volume in enumerate(as_list(spec.get("volumes"))):
        if isinstance(volume, dict):
            pod.volumes.append((f"{spec_path}.volumes[{i}]", volume))
    pod.consumed = list(_consumed(pod))
    return pod


def _consumed(pod: Pod) -> Iterator[Consumed]:
    for cpath, container in pod.containers:
        for i, entry in enumerate(as_list(container.get("env"))):
            ref = as_dict(as_dict(as_dict(entry).get("valueFrom")).get("secretKeyRef"))
            if ref:
                yield Consumed(
                    as_str(ref.get("name")), f"{cpath}.env[{i}].valueFrom.secretKeyRef", "env"
                )
        for i, entry in enumerate(as_list(container.get("envFrom"))):
            ref = as_dict(as_dict(entry).get("secretRef"))
            if ref or (isinstance(entry, dict) and "secretRef" in entry):
                yield Consumed(as_str(ref.get("name")), f"{cpath}.envFrom[{i}].secretRef", "env")
    for vpath, volume in pod.volumes:
        if "secret" in volume:
            secret = as_dict(volume.get("secret"))
            yield Consumed(as_str(secret.get("secretName")), f"{vpath}.secret", "volume")
        projected = as_dict(volume.get("projected"))
        for j, source in enumerate(as_list(projected.get("sources"))):
            src = as_dict(source)
            if "secret" in src:
                yield Consumed(
                    as_str(as_dict(src.get("secret")).get("name")),
                    f"{vpath}.projected.sources[{j}].secret",
                    "volume",
                )


Classifier = Callable[[Pod, Index], Iterable[Approach]]


def approach(id_: str, evidence: Iterable[Evidence], mode: str = "") -> Approach:
    return Approach(id=id_, evidence=tuple(evidence), mode=mode)
