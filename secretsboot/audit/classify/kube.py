"""Plain Kubernetes Secrets (env and volumes) and plaintext credentials in the manifest.

Flagged::

    env: [{name: DB, valueFrom: {secretKeyRef: {name: db, key: password}}}]  -> k8s-secret-env
    envFrom: [{secretRef: {name: db}}]                                      -> k8s-secret-env
    volumes: [{name: tls, secret: {secretName: tls}}]                        -> k8s-secret-volume
    volumes: [{projected: {sources: [{secret: {name: tls}}]}}]               -> k8s-secret-volume
    env: [{name: POSTGRES_PASSWORD, value: password}]                       -> literal-credential
    args: ["--db-password=Tr0ub4dor"]                                       -> literal-credential

Not flagged: ``imagePullSecrets``; a CSI ``nodePublishSecretRef`` or FlexVolume
``secretRef`` (credentials of the driver, not mounted in the pod); env values that
are empty, ids (GUIDs), vault names, URLs without credentials, ``*_FILE`` paths,
``$(VAR)`` references, booleans and numbers (see :mod:`secretsboot.audit.literals`).
"""

from __future__ import annotations

from collections.abc import Iterator

from secretsboot.audit.classify._pod import Pod, approach, other_producers_note
from secretsboot.audit.literals import credentials_in_args, looks_like_credential, redact
from secretsboot.audit.model import Approach, Evidence
from secretsboot.audit.resolve import Index, as_list, as_str


def secret_env(pod: Pod, index: Index) -> Iterator[Approach]:
    return _consumed(pod, index, "env")


def secret_volume(pod: Pod, index: Index) -> Iterator[Approach]:
    return _consumed(pod, index, "volume")


def _consumed(pod: Pod, index: Index, how: str) -> Iterator[Approach]:
    """``k8s-secret-<how>``: Secrets the pod reads this way (env or volume)."""
    ev = [
        pod.at(c.path, other_producers_note(pod, index, c.secret))
        for c in pod.consumed
        if c.how == how
    ]
    if ev:
        yield approach(f"k8s-secret-{how}", ev)


def literal_credential(pod: Pod, index: Index) -> Iterator[Approach]:
    ev: list[Evidence] = []
    for path, entry in pod.env():
        value = entry.get("value")
        if not isinstance(value, str):
            continue
        reason = looks_like_credential(as_str(entry.get("name")), value)
        if reason:
            ev.append(pod.at(f"{path}.value", f"{reason}: {redact(value)}"))
    for cpath, container in pod.containers:
        for field_name in ("command", "args"):
            items = as_list(container.get(field_name))
            for i, reason in credentials_in_args(items):
                ev.append(
                    pod.at(f"{cpath}.{field_name}[{i}]", f"{reason}: {redact(str(items[i]))}")
                )
    if ev:
        yield approach("literal-credential", ev)
