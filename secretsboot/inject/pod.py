"""The pod pieces inject adds, and the edit of one pod (template) in place.

Every piece is upserted by name, so editing an already injected pod gives the
same pod: injecting twice equals once.

>>> security_context(1000)["runAsUser"], security_context(1000)["runAsGroup"]
(1000, 1000)
>>> init_container("img:1", 10001, None)["args"][:3]
['fetch', '--config', '/etc/secretsboot/fetch.yaml']
"""

from __future__ import annotations

from typing import Any

from secretsboot import __version__
from secretsboot.contract import SERVICEACCOUNT_DIR
from secretsboot.errors import BadInputError
from secretsboot.inject.stores import Mounts
from secretsboot.spec import Delivery, Identity, ServiceSpec

IMAGE_REPOSITORY = "ghcr.io/secretsboot/secretsboot"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
INIT_CONTAINER = "secretsboot-fetch"
SECRETS_VOLUME = "secretsboot-secrets"
CONFIG_VOLUME = "secretsboot-config"
TOKEN_VOLUME = "secretsboot-token"  # noqa: S105 - a volume name
SA_TOKEN_DIR = SERVICEACCOUNT_DIR
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
TOKEN_SECONDS = 600


def config_map_name(service: str) -> str:
    """The ConfigMap (and SecretProviderClass) name of a service: ``secretsboot-<service>``."""
    return f"secretsboot-{service}"


# ----------------------------------------------------------------------------- editing helpers


def upsert(items: list[Any], entry: dict[str, Any], *, first: bool = False) -> None:
    """Replace the item with ``entry``'s name in place, or add it (first or last)."""
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == entry["name"]:
            items[i] = entry
            return
    if first:
        items.insert(0, entry)
    else:
        items.append(entry)


def list_at(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        value = []
        obj[key] = value
    return value


def dict_at(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if not isinstance(value, dict):
        value = {}
        obj[key] = value
    return value


# ----------------------------------------------------------------------------- the pieces


def security_context(uid: int = DEFAULT_UID, gid: int | None = None) -> dict[str, Any]:
    """The init container's security context (restricted Pod Security Standard and more)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid if gid is not None else uid,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


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


def token_volume(tokens: tuple[tuple[str, str], ...] = ()) -> dict[str, Any]:
    """The service-account token, CA and namespace, as automount would give them.

    ``tokens`` adds audience-bound tokens (``(file, audience)``), such as the one
    for Vault's jwt auth: the API-server token must not be replayable against
    Vault, and Vault's role checks that audience.
    """
    extra = [
        {"serviceAccountToken": {"path": path, "audience": aud, "expirationSeconds": TOKEN_SECONDS}}
        for path, aud in tokens
    ]
    namespace = {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "defaultMode": 0o440,
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                *extra,
                {
                    "configMap": {
                        "name": "kube-root-ca.crt",
                        "items": [{"key": "ca.crt", "path": "ca.crt"}],
                    }
                },
                {"downwardAPI": {"items": [namespace]}},
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


def _mount(volume: str, path: str, *, read_only: bool = True) -> dict[str, Any]:
    return {"name": volume, "mountPath": path, "readOnly": read_only}


# ----------------------------------------------------------------------------- one pod


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


def _label_identity(meta: dict[str, Any], svc: ServiceSpec) -> list[str]:
    """The identity label on the pod (template), never on the service account."""
    if svc.identity is Identity.WORKLOAD_IDENTITY:
        labels = dict_at(meta, "labels")
        labels[WORKLOAD_IDENTITY_LABEL] = "true"
        if POD_IDENTITY_LABEL in labels:  # kept: a selector may use it; the user removes it
            return [
                f"the pod still carries {POD_IDENTITY_LABEL} (legacy pod identity): remove it "
                "once nothing else needs it"
            ]
    elif svc.identity is Identity.POD_IDENTITY:
        labels = dict_at(meta, "labels")
        labels[POD_IDENTITY_LABEL] = svc.name
        if labels.get(WORKLOAD_IDENTITY_LABEL) == "true":
            return [f"the pod also carries {WORKLOAD_IDENTITY_LABEL}; the spec says pod-identity"]
    return []


def _add_init_container(
    pod: dict[str, Any], containers: list[Any], svc: ServiceSpec, image: str, mounts: Mounts
) -> list[str]:
    warnings: list[str] = []
    volumes = list_at(pod, "volumes")
    uid, gid = _app_user(pod, containers)
    if uid is None:
        warnings.append(
            "the app's user is unknown (no securityContext.runAsUser); secrets are written "
            f"by uid {DEFAULT_UID} with their spec mode: set runAsUser so the app can read them"
        )
    # the app's own user reads 0400 files; never root, even when the app is
    fetch = init_container(image, uid or DEFAULT_UID, gid or None)
    if mounts.api_token:
        # the token goes to the init container only, even when automount is off
        fetch["volumeMounts"].append(_mount(TOKEN_VOLUME, SA_TOKEN_DIR))
        upsert(volumes, token_volume(mounts.tokens))
    upsert(list_at(pod, "initContainers"), fetch, first=True)
    upsert(volumes, secrets_volume())
    upsert(volumes, config_volume(svc.name))
    return warnings


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


def _edit_app_container(container: dict[str, Any], svc: ServiceSpec, mounts: Mounts) -> list[str]:
    warnings: list[str] = []
    volume_mounts = list_at(container, "volumeMounts")
    upsert(volume_mounts, _mount(SECRETS_VOLUME, SECRETS_DIR))
    if svc.delivery is Delivery.CSI:
        return warnings
    env_secrets = [s for s in svc.secrets if s.env]
    if svc.delivery is Delivery.ENV or env_secrets:
        wrapped, warnings = _wrap_for_env(container, env_secrets)
        if wrapped:
            # `secretsboot run` fetches again in this container: it needs the config
            upsert(volume_mounts, _mount(CONFIG_VOLUME, CONFIG_DIR))
            if mounts.api_token:
                upsert(volume_mounts, _mount(TOKEN_VOLUME, SA_TOKEN_DIR))
    for s in env_secrets:
        if s.file_name:  # the file exists too: point the app at it, the *_FILE convention
            upsert(
                list_at(container, "env"),
                {"name": f"{s.env}_FILE", "value": f"{SECRETS_DIR}/{s.file_name}"},
            )
    return warnings


def inject_pod(
    pod_template: dict[str, Any], svc: ServiceSpec, image: str, mounts: Mounts
) -> list[str]:
    """Edit one pod (or pod template) in place for ``svc``; return the warnings."""
    meta = dict_at(pod_template, "metadata")
    pod = dict_at(pod_template, "spec")
    containers = pod.get("containers")
    if not isinstance(containers, list) or not containers:
        raise BadInputError("the pod has no containers", hint="add spec.containers")

    dict_at(meta, "annotations")[SERVICE_ANNOTATION] = svc.name
    warnings = _label_identity(meta, svc)
    wanted_sa = svc.service_account_name
    current_sa = pod.get("serviceAccountName")
    if current_sa not in (None, wanted_sa):
        warnings.append(f"serviceAccountName {current_sa} replaced by {wanted_sa} (from the spec)")
    pod["serviceAccountName"] = wanted_sa

    if svc.delivery is Delivery.CSI:
        upsert(list_at(pod, "volumes"), csi_volume(svc.name))
    else:
        warnings.extend(_add_init_container(pod, containers, svc, image, mounts))
    for c in containers:
        if isinstance(c, dict):
            warnings.extend(_edit_app_container(c, svc, mounts))
    return warnings
