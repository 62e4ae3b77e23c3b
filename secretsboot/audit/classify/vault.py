"""HashiCorp Vault approaches delivered by a webhook: the Agent Injector and Bank-Vaults.

Flagged::

    annotations: {vault.hashicorp.com/agent-inject: "true"}          -> vault-agent-injector
    initContainers: [{name: vault-agent-init}]  (already injected)   -> vault-agent-injector
    env: [{name: DB_PASSWORD, value: "vault:secret/data/db#password"}] -> bank-vaults
    annotations: {vault.security.banzaicloud.io/vault-addr: ...}     -> bank-vaults

Not flagged: ``vault.hashicorp.com/agent-inject: "false"``; a hand-written Vault
Agent container named ``vault-agent`` without injector annotations (the corpus's
vault-agent-k8s-demo); ``annotations:`` present but empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from secretsboot.audit.classify._pod import Pod, approach, key_path
from secretsboot.audit.model import Approach, Evidence
from secretsboot.audit.resolve import Index, as_dict, as_str, truthy

INJECT = "vault.hashicorp.com/agent-inject"
INJECT_PREFIX = "vault.hashicorp.com/agent-inject"
INJECTED_INIT = "vault-agent-init"
PRE_POPULATE_ONLY = "vault.hashicorp.com/agent-pre-populate-only"
BANK_VAULTS_PREFIXES = (
    "secrets-webhook.security.bank-vaults.io/",
    "vault.security.banzaicloud.io/",
)
BANK_VAULTS_VALUE_PREFIXES = ("vault:", ">>vault:")


def _injector_evidence(annotations: dict[str, Any], meta_path: str, pod: Pod) -> list[Evidence]:
    if INJECT in annotations and not truthy(annotations[INJECT]):
        return []
    return [
        pod.at(key_path(meta_path, "annotations", key))
        for key in annotations
        if key.startswith(INJECT_PREFIX)
    ]


def agent_injector(pod: Pod, index: Index) -> Iterator[Approach]:
    ev = _injector_evidence(pod.annotations, pod.meta_path, pod)
    if not ev and pod.kind != "Pod":
        owner = {str(k): v for k, v in as_dict(pod.owner_meta().get("annotations")).items()}
        ev = [
            Evidence(
                e.object, e.path, e.file, e.line, "on the workload's metadata, not its pod", e.doc
            )
            for e in _injector_evidence(owner, "metadata", pod)
        ]
    for cpath, container in pod.containers:
        if ".initContainers[" in cpath and as_str(container.get("name")) == INJECTED_INIT:
            ev.append(pod.at(f"{cpath}.name"))
    if ev:
        mode = "init-only" if truthy(pod.annotations.get(PRE_POPULATE_ONLY)) else ""
        yield approach("vault-agent-injector", ev, mode)


def bank_vaults(pod: Pod, index: Index) -> Iterator[Approach]:
    ev = [
        pod.at(key_path(pod.meta_path, "annotations", key))
        for key in pod.annotations
        if key.startswith(BANK_VAULTS_PREFIXES)
    ]
    for path, entry in pod.env():
        value = entry.get("value")
        if isinstance(value, str) and value.startswith(BANK_VAULTS_VALUE_PREFIXES):
            ev.append(pod.at(f"{path}.value"))
    if ev:
        yield approach("bank-vaults", ev)
