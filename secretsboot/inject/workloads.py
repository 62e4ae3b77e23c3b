"""Which objects are workloads, which service each one is for, and the whole-stream pass."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from secretsboot.contract import FetchConfig
from secretsboot.errors import BadInputError
from secretsboot.inject.pod import (
    CONFIG_KEY,
    DEFAULT_IMAGE,
    SERVICE_ANNOTATION,
    config_map_name,
    inject_pod,
)
from secretsboot.inject.stores import mounts_for
from secretsboot.inject.stream import dump_documents, load_documents
from secretsboot.spec import Delivery, ServiceSpec, Spec

# kind -> path of the pod template inside the object ([] = the object is the pod)
WORKLOAD_KINDS: dict[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}

Action = Literal["injected", "skipped"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one workload."""

    ref: str  # Kind/namespace/name
    action: Action
    service: str | None = None
    reason: str = ""
    warnings: tuple[str, ...] = ()


@dataclass(slots=True)
class InjectResult:
    documents: list[Any]
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def injected(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.action == "injected"]

    def summary_lines(self) -> list[str]:
        """One line per workload, then each warning, for stderr."""
        lines: list[str] = []
        for o in self.outcomes:
            if o.action == "injected":
                lines.append(f"injected {o.ref} (service {o.service})")
            else:
                lines.append(f"skipped {o.ref}: {o.reason}")
            lines.extend(f"warning: {o.ref}: {w}" for w in o.warnings)
        injected = len(self.injected)
        lines.append(f"{injected} injected, {len(self.outcomes) - injected} skipped")
        return lines


# ----------------------------------------------------------------------------- matching


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _ref(obj: dict[str, Any]) -> str:
    meta = _meta(obj)
    ns = meta.get("namespace")
    middle = f"{ns}/" if ns else ""
    return f"{obj.get('kind')}/{middle}{meta.get('name', '')}"


def _get_path(obj: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = obj
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node if isinstance(node, dict) else None


def _annotation(obj: dict[str, Any], template: dict[str, Any]) -> str | None:
    for meta in (_meta(template), _meta(obj)):
        annotations = meta.get("annotations")
        if isinstance(annotations, dict) and isinstance(annotations.get(SERVICE_ANNOTATION), str):
            return str(annotations[SERVICE_ANNOTATION])
    return None


def _match(
    obj: dict[str, Any], template: dict[str, Any], spec: Spec, forced: str | None
) -> tuple[ServiceSpec | None, str]:
    names = [s.name for s in spec.services]
    annotated = _annotation(obj, template)
    if forced is not None:
        if annotated is not None and annotated != forced:
            return None, f"annotated {SERVICE_ANNOTATION}: {annotated}, not --service {forced}"
        return spec.service(forced), ""
    if annotated is not None:
        if annotated not in names:
            return None, f"annotated {SERVICE_ANNOTATION}: {annotated}, not a service of the spec"
        return spec.service(annotated), ""
    name = _meta(obj).get("name")
    if isinstance(name, str) and name in names:
        return spec.service(name), ""
    return None, (
        f"no service matches (name it after a service, annotate {SERVICE_ANNOTATION} "
        "or pass --service)"
    )


def _not_injectable(obj: dict[str, Any], svc: ServiceSpec, spec: Spec) -> str:
    namespace = _meta(obj).get("namespace")
    wanted_ns = svc.resolved_namespace(spec)
    if namespace and namespace != wanted_ns:
        return f"namespace {namespace} is not service {svc.name}'s namespace {wanted_ns}"
    if svc.delivery is Delivery.FLEXVOLUME:
        return "delivery flexvolume is deprecated and not injected; use csi or init-container"
    return ""


# ----------------------------------------------------------------------------- the pass


def _inject_object(
    obj: dict[str, Any], spec: Spec, forced: str | None, image: str
) -> Outcome | None:
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in WORKLOAD_KINDS:
        return None
    path = WORKLOAD_KINDS[kind]
    template = obj if not path else _get_path(obj, path)
    ref = _ref(obj)
    if template is None:
        return Outcome(ref, "skipped", reason=f"no pod template at {'.'.join(path)}")
    svc, reason = _match(obj, template, spec, forced)
    if svc is None:
        return Outcome(ref, "skipped", reason=reason)
    reason = _not_injectable(obj, svc, spec)
    if reason:
        return Outcome(ref, "skipped", svc.name, reason)
    try:
        warnings = inject_pod(template, svc, image, mounts_for(svc, spec))
    except BadInputError as exc:
        raise BadInputError(f"{ref}: {exc.message}", hint=exc.hint) from None
    return Outcome(ref, "injected", svc.name, warnings=tuple(warnings))


def _walk(
    docs: list[Any], visit: Callable[[dict[str, Any]], Outcome | None], out: list[Outcome]
) -> None:
    for doc in docs:
        if not isinstance(doc, dict):
            continue
        if doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            _walk(doc["items"], visit, out)
            continue
        outcome = visit(doc)
        if outcome is not None:
            out.append(outcome)


def config_map(spec: Spec, service: str) -> dict[str, Any]:
    """The ConfigMap ``secretsboot-<service>`` holding the service's ``fetch.yaml``."""
    svc = spec.service(service)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(service),
            "namespace": svc.resolved_namespace(spec),
            "labels": {"app.kubernetes.io/managed-by": "secretsboot", SERVICE_ANNOTATION: service},
        },
        "data": {CONFIG_KEY: FetchConfig.from_spec(spec, service).to_yaml()},
    }


def _config_services(spec: Spec, outcomes: list[Outcome]) -> list[str]:
    """The injected services that read a fetch.yaml, in order of first injection."""
    names = dict.fromkeys(o.service for o in outcomes if o.action == "injected" and o.service)
    fetched = (Delivery.INIT_CONTAINER, Delivery.ENV)
    return [name for name in names if spec.service(name).delivery in fetched]


def _with_config_maps(docs: list[Any], spec: Spec, services: list[str]) -> list[Any]:
    """Each service's ConfigMap refreshed in place, or added before the first object."""
    new: list[Any] = []
    for name in services:
        cm = config_map(spec, name)
        for i, doc in enumerate(docs):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "ConfigMap"
                and _meta(doc).get("name") == cm["metadata"]["name"]
            ):
                docs[i] = cm
                break
        else:
            new.append(cm)
    return new + docs


def inject_documents(
    documents: list[Any],
    spec: Spec,
    *,
    service: str | None = None,
    image: str = DEFAULT_IMAGE,
    with_config: bool = False,
) -> InjectResult:
    """Inject every matching workload of ``documents``; the input is not modified.

    ``service`` forces the service for every workload not annotated for another.
    ``with_config`` also emits (or refreshes in place) each injected service's
    ConfigMap, before the first object.
    """
    if service is not None:
        spec.service(service)  # SpecError naming the known services
    docs = copy.deepcopy(documents)
    outcomes: list[Outcome] = []
    _walk(docs, lambda obj: _inject_object(obj, spec, service, image), outcomes)
    if with_config:
        docs = _with_config_maps(docs, spec, _config_services(spec, outcomes))
    return InjectResult(docs, outcomes)


def inject_text(
    text: str,
    spec: Spec,
    *,
    source: str = "<stdin>",
    service: str | None = None,
    image: str = DEFAULT_IMAGE,
    with_config: bool = False,
) -> tuple[str, InjectResult]:
    """Inject a YAML stream; return the new stream and what was done."""
    result = inject_documents(
        load_documents(text, source),
        spec,
        service=service,
        image=image,
        with_config=with_config,
    )
    return dump_documents(result.documents), result
