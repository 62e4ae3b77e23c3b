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

from secretsboot.inject.pod import (
    CONFIG_DIR,
    CONFIG_FILE,
    CONFIG_KEY,
    CONFIG_VOLUME,
    CSI_DRIVER,
    DEFAULT_IMAGE,
    DEFAULT_UID,
    FETCH_ARGS,
    IMAGE_REPOSITORY,
    INIT_CONTAINER,
    POD_IDENTITY_LABEL,
    RUN_PREFIX,
    SA_TOKEN_DIR,
    SECRETS_DIR,
    SECRETS_VOLUME,
    SERVICE_ANNOTATION,
    TOKEN_VOLUME,
    WORKLOAD_IDENTITY_LABEL,
    config_map_name,
    init_container,
    security_context,
    token_volume,
)
from secretsboot.inject.stores import (
    STORES,
    VAULT_TOKEN_FILE,
    Mounts,
    mounts_for,
    needs_service_account_token,
    vault_jwt_audience,
)
from secretsboot.inject.stream import dump_documents, dump_json_list, load_documents
from secretsboot.inject.workloads import (
    WORKLOAD_KINDS,
    InjectResult,
    Outcome,
    config_map,
    inject_documents,
    inject_text,
)

__all__ = [
    "CONFIG_DIR",
    "CONFIG_FILE",
    "CONFIG_KEY",
    "CONFIG_VOLUME",
    "CSI_DRIVER",
    "DEFAULT_IMAGE",
    "DEFAULT_UID",
    "FETCH_ARGS",
    "IMAGE_REPOSITORY",
    "INIT_CONTAINER",
    "POD_IDENTITY_LABEL",
    "RUN_PREFIX",
    "SA_TOKEN_DIR",
    "SECRETS_DIR",
    "SECRETS_VOLUME",
    "SERVICE_ANNOTATION",
    "STORES",
    "TOKEN_VOLUME",
    "VAULT_TOKEN_FILE",
    "WORKLOAD_IDENTITY_LABEL",
    "WORKLOAD_KINDS",
    "InjectResult",
    "Mounts",
    "Outcome",
    "config_map",
    "config_map_name",
    "dump_documents",
    "dump_json_list",
    "init_container",
    "inject_documents",
    "inject_text",
    "load_documents",
    "mounts_for",
    "needs_service_account_token",
    "security_context",
    "token_volume",
    "vault_jwt_audience",
]
