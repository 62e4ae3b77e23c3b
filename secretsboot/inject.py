"""``secretsboot inject``: add the secretsboot init container to workload manifests.

Like ``linkerd inject`` and ``istioctl kube-inject``, it reads manifests, changes
only the workloads that match a service of the spec, and prints every object back
in order. For an ``init-container`` (or ``env``) service it adds:

- the init container ``secretsboot-fetch`` (image
  ``ghcr.io/secretsboot/secretsboot:<version>``, args ``fetch --config
  /etc/secretsboot/fetch.yaml --out /var/run/secrets/secretsboot``) with a locked
  down security context and resource limits;
- the memory ``emptyDir`` ``secretsboot-secrets``, mounted read-only in every app
  container at ``/var/run/secrets/secretsboot``;
- the ConfigMap volume ``secretsboot-config`` (ConfigMap ``secretsboot-<service>``);
- ``serviceAccountName``, the pod annotation ``secretsboot.dev/service`` and the
  identity label (``azure.workload.identity/use: "true"`` on the pod template for
  workload identity, ``aadpodidbinding: <service>`` for pod identity).

A ``csi`` service gets the Secrets Store CSI volume referencing the
SecretProviderClass ``secretsboot-<service>`` instead of the init container.

Injecting twice gives the same bytes as injecting once.

>>> from secretsboot.spec import load_spec_text
>>> spec = load_spec_text('''
... apiVersion: secretsboot/v1
... kind: SecretsbootSpec
... services:
...   - {name: orders, identity: none, secrets: [{name: db, from: "k8s://orders-db#password"}]}
... ''')
>>> pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orders"},
...        "spec": {"containers": [{"name": "app", "image": "orders:1.0"}]}}
>>> result = inject_documents([pod], spec)
>>> [c["name"] for c in result.documents[0]["spec"]["initContainers"]]
['secretsboot-fetch']
>>> result.outcomes[0].action
'injected'
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from secretsboot import __version__
from secretsboot._yaml import SafeLoader
from secretsboot.errors import BadInputError
from secretsboot.spec import Delivery, Identity, ServiceSpec, Spec

IMAGE_REPOSITORY = "ghcr.io/secretsboot/secretsboot"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
INIT_CONTAINER = "secretsboot-fetch"
SECRETS_VOLUME = "secretsboot-secrets"
CONFIG_VOLUME = "secretsboot-config"
TOKEN_VOLUME = "secretsboot-token"  # noqa: S105 - a volume name
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path
VAULT_TOKEN_FILE = "vault-token"  # noqa: S105 - a file name: the Vault-audience SA token
SECRETS_DIR = "/var/run/secrets/secretsboot"
CONFIG_DIR = "/etc/secretsboot"
CONFIG_FILE = f"{CONFIG_DIR}/fetch.yaml"
CONFIG_KEY = "fetch.yaml"
SERVICE_ANNOTATION = "secretsboot.dev/service"
WORKLOAD_IDENTITY_LABEL = "azure.workload.identity/use"
POD_IDENTITY_LABEL = "aadpodidbinding"
CSI_DRIVER = "secrets-store.csi.k8s.io"
DEFAULT_UID = 10001  # the image's USER; used when the app's own user is unknown
FETCH_ARGS = ("fetch", "--config", CONFIG_FILE, "--out", SECRETS_DIR)
RUN_PREFIX = ("secretsboot", "run", "--config", CONFIG_FILE, "--")

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


def config_map_name(service: str) -> str:
    """The ConfigMap (and SecretProviderClass) name of a service: ``secretsboot-<service>``."""
    return f"secretsboot-{service}"


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


# ----------------------------------------------------------------------------- reading/writing


def load_documents(text: str, source: str = "<stdin>") -> list[Any]:
    """Every YAML document of ``text`` (empty documents dropped), as plain data.

    Raises :class:`BadInputError` naming ``source`` and the line on bad YAML.
    """
    try:
        docs = list(yaml.load_all(text, Loader=SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInputError(f"{where}: invalid YAML: {problem}", hint="fix the YAML") from None
    out: list[Any] = []
    for i, doc in enumerate(docs):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise BadInputError(
                f"{source}: document {i + 1} is not a Kubernetes object (a YAML mapping)",
                hint="pass Kubernetes manifests",
            )
        out.append(doc)
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, keys in their order, lists indented under their key like kubectl."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _str_presenter(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_presenter)


def dump_documents(documents: Iterable[Any]) -> str:
    """Documents as one multi-document YAML stream (``---`` between documents)."""
    return yaml.dump_all(
        list(documents),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
        explicit_start=True,
    )


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


# ----------------------------------------------------------------------------- editing helpers


def _upsert(items: list[Any], entry: dict[str, Any], *, first: bool = False) -> None:
    """Replace the item with ``entry``'s name in place, or add it (first or last)."""
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == entry["name"]:
            items[i] = entry
            return
    if first:
        items.insert(0, entry)
    else:
        items.append(entry)


def _list_at(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        value = []
        obj[key] = value
    return value


def _dict_at(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


def security_context(uid: int = DEFAULT_UID, gid: int | None = None) -> dict[str, Any]:
    """The init container's security context (restricted Pod Security Standard and more)."""
    ctx: dict[str, Any] = {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid if gid is not None else uid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return ctx


def init_container(image: str, uid: int, gid: int | None) -> dict[str, Any]:
    """The ``secretsboot-fetch`` init container."""
    return {
        "name": INIT_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": list(FETCH_ARGS),
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": security_context(uid, gid),
        "volumeMounts": [
            {"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR},
            {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
        ],
    }


def vault_jwt_audience(spec: Spec, svc: ServiceSpec) -> str | None:
    """The audience of the token a service presents to Vault's jwt auth, if it uses it."""
    uses_vault = any(r.scheme == "vault" for s in svc.secrets for r in s.sources)
    if not uses_vault or svc.vault_auth.value != "jwt" or spec.vault is None:
        return None
    jwt = spec.vault.auth.jwt
    return jwt.audience if jwt is not None else None


def token_volume(vault_audience: str | None = None) -> dict[str, Any]:
    """The service-account token, CA and namespace, as automount would give them.

    With ``vault_audience``, a second token for Vault's jwt auth (``vault-token``):
    the API-server token must not be replayable against Vault, and Vault's role
    checks that audience.
    """
    vault_token = (
        [
            {
                "serviceAccountToken": {
                    "path": VAULT_TOKEN_FILE,
                    "audience": vault_audience,
                    "expirationSeconds": 600,
                }
            }
        ]
        if vault_audience
        else []
    )
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}},
                *vault_token,
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {
                    "downwardAPI": {
                        "items": [
                            {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
                        ]
                    }
                },
            ],
        },
    }


def secrets_volume() -> dict[str, Any]:
    return {"name": SECRETS_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}


def config_volume(service: str) -> dict[str, Any]:
    return {
        "name": CONFIG_VOLUME,
        "configMap": {
            "name": config_map_name(service),
            "items": [{"key": CONFIG_KEY, "path": CONFIG_KEY}],
            "defaultMode": 0o444,
        },
    }


def csi_volume(service: str) -> dict[str, Any]:
    return {
        "name": SECRETS_VOLUME,
        "csi": {
            "driver": CSI_DRIVER,
            "readOnly": True,
            "volumeAttributes": {"secretProviderClass": config_map_name(service)},
        },
    }


def _app_user(pod: dict[str, Any], containers: list[Any]) -> tuple[int | None, int | None]:
    """The uid/gid the app containers run as, when the manifest says (container first)."""
    contexts = [c.get("securityContext") for c in containers if isinstance(c, dict)]
    contexts.append(pod.get("securityContext"))
    found: dict[str, int] = {}
    for ctx in contexts:
        if not isinstance(ctx, dict):
            continue
        for key in ("runAsUser", "runAsGroup"):
            value = ctx.get(key)
            if key not in found and isinstance(value, int) and not isinstance(value, bool):
                found[key] = value
    return found.get("runAsUser"), found.get("runAsGroup")


# ----------------------------------------------------------------------------- the injection


def _inject_pod(
    pod_template: dict[str, Any],
    svc: ServiceSpec,
    image: str,
    vault_audience: str | None = None,
) -> list[str]:
    """Edit one pod (template) in place; return warnings."""
    warnings: list[str] = []
    meta = _dict_at(pod_template, "metadata")
    pod = _dict_at(pod_template, "spec")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise BadInputError("the pod has no containers", hint="add spec.containers")

    annotations = _dict_at(meta, "annotations")
    annotations[SERVICE_ANNOTATION] = svc.name
    if svc.identity is Identity.WORKLOAD_IDENTITY:
        labels = _dict_at(meta, "labels")
        labels[WORKLOAD_IDENTITY_LABEL] = "true"
        if POD_IDENTITY_LABEL in labels:  # kept: a selector may use it; the user removes it
            warnings.append(
                f"the pod still carries {POD_IDENTITY_LABEL} (legacy pod identity): remove it "
                "once nothing else needs it"
            )
    elif svc.identity is Identity.POD_IDENTITY:
        labels = _dict_at(meta, "labels")
        labels[POD_IDENTITY_LABEL] = svc.name
        if labels.get(WORKLOAD_IDENTITY_LABEL) == "true":
            warnings.append(
                f"the pod also carries {WORKLOAD_IDENTITY_LABEL}; the spec says pod-identity"
            )

    wanted_sa = svc.service_account_name
    current_sa = pod.get("serviceAccountName")
    if current_sa not in (None, wanted_sa):
        warnings.append(f"serviceAccountName {current_sa} replaced by {wanted_sa} (from the spec)")
    pod["serviceAccountName"] = wanted_sa

    volumes = _list_at(pod, "volumes")
    mount = {"name": SECRETS_VOLUME, "mountPath": SECRETS_DIR, "readOnly": True}

    if svc.delivery is Delivery.CSI:
        _upsert(volumes, csi_volume(svc.name))
    else:
        uid, gid = _app_user(pod, containers)
        if uid is None:
            warnings.append(
                "the app's user is unknown (no securityContext.runAsUser); secrets are written "
                f"by uid {DEFAULT_UID} with their spec mode: set runAsUser so the app can read them"
            )
        # the app's own user reads 0400 files; never root, even when the app is
        init_uid = uid if uid else DEFAULT_UID
        init_gid = gid if gid else None
        fetch = init_container(image, init_uid, init_gid)
        if needs_service_account_token(svc):
            # the token goes to the init container only, even when automount is off
            fetch["volumeMounts"].append(
                {"name": TOKEN_VOLUME, "mountPath": SA_TOKEN_DIR, "readOnly": True}
            )
            _upsert(volumes, token_volume(vault_audience))
        _upsert(_list_at(pod, "initContainers"), fetch, first=True)
        _upsert(volumes, secrets_volume())
        _upsert(volumes, config_volume(svc.name))

    env_secrets = [s for s in svc.secrets if s.env]
    for c in containers:
        if not isinstance(c, dict):
            continue
        _upsert(_list_at(c, "volumeMounts"), dict(mount))
        if svc.delivery is Delivery.CSI:
            continue
        if svc.delivery is Delivery.ENV or env_secrets:
            wrapped, notes = _wrap_for_env(c, env_secrets)
            warnings.extend(notes)
            if wrapped:
                # `secretsboot run` fetches again in this container: it needs the config
                _upsert(
                    _list_at(c, "volumeMounts"),
                    {"name": CONFIG_VOLUME, "mountPath": CONFIG_DIR, "readOnly": True},
                )
                if needs_service_account_token(svc):
                    _upsert(
                        _list_at(c, "volumeMounts"),
                        {"name": TOKEN_VOLUME, "mountPath": SA_TOKEN_DIR, "readOnly": True},
                    )
        for s in svc.secrets:
            if s.env and s.file_name:
                # the file exists too: point the app at it, the *_FILE convention
                _upsert(
                    _list_at(c, "env"),
                    {"name": f"{s.env}_FILE", "value": f"{SECRETS_DIR}/{s.file_name}"},
                )
    return warnings


def needs_service_account_token(svc: ServiceSpec) -> bool:
    """Vault kubernetes/jwt login and k8s:// reads use the pod's service-account token."""
    refs = [ref for s in svc.secrets for ref in s.sources]
    vault_login = svc.vault_auth.value in ("kubernetes", "jwt")
    return any(r.scheme == "k8s" or (r.scheme == "vault" and vault_login) for r in refs)


def _wrap_for_env(container: dict[str, Any], env_secrets: list[Any]) -> tuple[bool, list[str]]:
    """Put ``secretsboot run`` in front of the container's command, when it is known.

    Returns whether the container is wrapped (now or already) and the warnings.
    """
    names = ", ".join(sorted(s.env for s in env_secrets if s.env)) or "every secret"
    where = f"container {container.get('name')}"
    command = container.get("command")
    if isinstance(command, list) and command[: len(RUN_PREFIX)] == list(RUN_PREFIX):
        return True, []  # already wrapped
    if not isinstance(command, list) or not command:
        return False, [
            f"{where}: the spec puts {names} in the environment, but the container's command "
            "is not in the manifest (it comes from the image), so `secretsboot run` cannot "
            f"wrap it; set `command` and inject again, or read the files under {SECRETS_DIR}"
        ]
    container["command"] = [*RUN_PREFIX, *command]
    return True, [
        f"{where}: command wrapped with `secretsboot run` for {names}; "
        "the container image must ship secretsboot"
    ]


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
    namespace = _meta(obj).get("namespace")
    wanted_ns = svc.resolved_namespace(spec)
    if namespace and namespace != wanted_ns:
        return Outcome(
            ref,
            "skipped",
            svc.name,
            f"namespace {namespace} is not service {svc.name}'s namespace {wanted_ns}",
        )
    if svc.delivery is Delivery.FLEXVOLUME:
        return Outcome(
            ref,
            "skipped",
            svc.name,
            "delivery flexvolume is deprecated and not injected; use csi or init-container",
        )
    try:
        warnings = _inject_pod(template, svc, image, vault_jwt_audience(spec, svc))
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
    from secretsboot.contract import FetchConfig

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
        services = []
        for o in outcomes:
            if o.action != "injected" or o.service is None or o.service in services:
                continue
            if spec.service(o.service).delivery in (Delivery.INIT_CONTAINER, Delivery.ENV):
                services.append(o.service)
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
        docs = new + docs
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
