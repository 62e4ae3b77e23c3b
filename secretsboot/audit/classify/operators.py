"""Approaches that deliver a Secret the pod reads, and env-value injectors.

Flagged::

    env: [{valueFrom: {secretKeyRef: {name: db}}}] + ExternalSecret with target db
                                                  -> external-secrets (and k8s-secret-env)
    ... + AzureKeyVaultSecret with output.secret.name db          -> akv2k8s
    ... + SecretProviderClass with secretObjects[].secretName db  -> keyvault-csi / vault-csi
    ... + VaultStaticSecret with destination.name db              -> vault-secrets-operator
    env: [{name: DB, value: "db-password@azurekeyvault"}]          -> akv2k8s
    env: [{name: DB, value: "arn:aws:secretsmanager:...:secret:db"}] -> secrets-init
    initContainers: [{name: secretsboot-fetch, args: [fetch, ...]}] -> secretsboot-init
    containers: [{image: .../secretsboot/secretsboot:0.1, args: [run, --, app]}]
                                                                   -> secretsboot-init

Not flagged: a Secret nothing in the input produces (only k8s-secret-*); an
AzureKeyVaultSecret without ``output`` (env injection only) when no env value
names it; the ``secretsboot.dev/service`` annotation without a container running
secretsboot (a ``delivery: csi`` pod ``secretsboot inject`` wrote).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from secretsboot.audit.classify._pod import Pod, approach, at_object, key_path, producers
from secretsboot.audit.model import Approach, Evidence
from secretsboot.audit.resolve import Index, as_dict, as_list, as_str, truthy

AKV2K8S_VALUE = re.compile(r"^[A-Za-z0-9_.-]+@azurekeyvault(?:\?.*)?$")
SECRETS_INIT_PREFIXES = ("arn:aws:secretsmanager:", "arn:aws:ssm:", "gcp:secretmanager:")
SECRETS_INIT_IMAGE = "doitintl/secrets-init"
SECRETSBOOT_INIT = "secretsboot-fetch"
SECRETSBOOT_IMAGE = "secretsboot/secretsboot"
SECRETSBOOT_VERBS = frozenset({"fetch", "run"})
SECRETSBOOT_ANNOTATION = "secretsboot.dev/service"
SECRETSBOOT_VOLUME = "secretsboot-secrets"


def produced_secrets(pod: Pod, index: Index) -> Iterator[Approach]:
    """Upstream approaches of every Secret the pod consumes (the Secret's producer)."""
    found: dict[str, list[Evidence]] = {}
    for consumed in pod.consumed:
        if not consumed.secret:
            continue
        for producer in producers(pod, index, consumed.secret)[0]:
            found.setdefault(producer.approach, []).extend(
                (
                    pod.at(consumed.path, consumed.secret),
                    at_object(producer.manifest, producer.path),
                )
            )
    for approach_id, ev in found.items():
        yield approach(approach_id, ev)


def akv2k8s_env(pod: Pod, index: Index) -> Iterator[Approach]:
    ev = []
    for path, entry in pod.env():
        value = entry.get("value")
        if isinstance(value, str) and AKV2K8S_VALUE.match(value.strip()):
            name = value.strip().split("@", 1)[0]
            akvs = index.get("AzureKeyVaultSecret", pod.namespace, name)
            ev.append(pod.at(f"{path}.value", "" if akvs else f"no AzureKeyVaultSecret '{name}'"))
            if akvs is not None:
                ev.append(at_object(akvs, "spec.vault"))
    if ev:
        yield approach("akv2k8s", ev)


def secrets_init(pod: Pod, index: Index) -> Iterator[Approach]:
    ev = [
        pod.at(f"{path}.value")
        for path, entry in pod.env()
        if isinstance(entry.get("value"), str)
        and str(entry["value"]).startswith(SECRETS_INIT_PREFIXES)
    ]
    ev.extend(
        pod.at(f"{cpath}.image")
        for cpath, container in pod.containers
        if SECRETS_INIT_IMAGE in as_str(container.get("image"))
    )
    if ev:
        yield approach("secrets-init", ev)


def _runs_secretsboot(container: dict[str, object]) -> bool:
    """The secretsboot image running ``fetch`` or ``run`` (args first, or in the command)."""
    if SECRETSBOOT_IMAGE not in as_str(container.get("image")):
        return False
    args = [as_str(a) for a in as_list(container.get("args"))]
    command = [as_str(a) for a in as_list(container.get("command"))]
    return bool(SECRETSBOOT_VERBS & {*args[:1], *command[:3]})


STORE_NAMES = {"keyvault": "Key Vault", "vault": "Vault", "k8s": "a Kubernetes Secret"}
_SCHEME = re.compile(r"\b(keyvault|vault|k8s)://")


def _stores(text: str) -> str:
    """Which stores a fetch config (or ``SECRETSBOOT_SECRETS``) reads: "Key Vault", ...."""
    found = sorted({STORE_NAMES[m.group(1)] for m in _SCHEME.finditer(text)})
    return " and ".join(found)


def _fetch_config_evidence(pod: Pod, index: Index) -> list[Evidence]:
    """Where the pod's fetch config says what it reads: the ConfigMap's ``fetch.yaml``
    (``secretsboot-<service>``, mounted as a volume), or ``SECRETSBOOT_SECRETS`` env."""
    out: list[Evidence] = []
    for _, volume in pod.volumes:
        name = as_str(as_dict(volume.get("configMap")).get("name"))
        cm = index.get("ConfigMap", pod.namespace, name) if name else None
        if cm is None:
            continue
        text = as_str(as_dict(cm.body.get("data")).get("fetch.yaml"))
        if text:
            what = _stores(text) or "no store named"
            out.append(at_object(cm, 'data["fetch.yaml"]', f"fetch config: reads {what}"))
    for path, entry in pod.env():
        if as_str(entry.get("name")) == "SECRETSBOOT_SECRETS":
            what = _stores(as_str(entry.get("value"))) or "stores not known"
            out.append(pod.at(f"{path}.value", f"fetch config: reads {what}"))
    return out


def secretsboot_init(pod: Pod, index: Index) -> Iterator[Approach]:
    """Our own runtime, as ``secretsboot inject`` writes it (fetch-config contract).

    It takes a container that runs it: the ``secretsboot-fetch`` init container, or
    any container running the secretsboot image with ``fetch``/``run``. The
    ``secretsboot.dev/service`` annotation alone is not delivery (``inject`` also
    writes it on a ``delivery: csi`` pod, whose secrets come from the CSI driver); it
    is added as evidence when a container runs secretsboot.
    """
    ev: list[Evidence] = []
    for cpath, container in pod.containers:
        init = ".initContainers[" in cpath
        if (init and as_str(container.get("name")) == SECRETSBOOT_INIT) or _runs_secretsboot(
            container
        ):
            ev.append(pod.at(f"{cpath}.name"))
    if not ev:
        return
    ev.extend(_fetch_config_evidence(pod, index))
    if SECRETSBOOT_ANNOTATION in pod.annotations:
        ev.append(pod.at(key_path(pod.meta_path, "annotations", SECRETSBOOT_ANNOTATION)))
    if truthy(pod.labels.get("azure.workload.identity/use")):
        mode = "workload-identity"
    elif pod.labels.get("aadpodidbinding"):
        mode = "aad-pod-identity"
    else:
        mode = ""
    yield approach("secretsboot-init", ev, mode)
