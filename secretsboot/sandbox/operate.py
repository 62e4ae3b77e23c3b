"""What an operator does by hand to a running sandbox, through the services' own APIs.

``set_secret`` writes a value where a source URI points (Key Vault data plane with
the operator's Entra login, Vault's KV API with its token, the Kubernetes API with
the kubeconfig), exactly as the operator would with ``az``, ``vault`` or
``kubectl``. ``pod_token`` asks the Kubernetes API (TokenRequest) for the tokens
kubelet would project into a pod running as a service account, and returns the
environment the workload-identity webhook would give that pod.

Example::

    operator = background.environment(state_dir)        # what `sandbox env` prints
    set_secret(operator, "keyvault://kv-shop/db-password", SecretValue("..."))
    env = pod_token(operator, "shop", "orders", audiences=["vault"], out=Path("pod"))
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from secretsboot._fs import atomic_write_text
from secretsboot.contract import (
    WI_CLIENT_ID_ANNOTATION,
    WI_TENANT_ID_ANNOTATION,
    WORKLOAD_IDENTITY_AUDIENCE,
)
from secretsboot.errors import BadInputError, NotFoundError, UnavailableError
from secretsboot.refs import Ref
from secretsboot.secret import SecretValue

#: Variables of the operator's shell that a pod does not have.
OPERATOR_ONLY = (
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "VAULT_TOKEN",
    "KUBECONFIG",
    "SECRETSBOOT_KUBE_CONTEXT",
)


def set_secret(
    env: Mapping[str, str], uri: str, value: SecretValue, *, namespace: str | None = None
) -> str:
    """Write ``value`` at ``uri`` (keyvault://, vault:// or k8s://) with the operator's
    environment ``env`` (what ``sandbox env`` prints); returns where it went."""
    try:
        ref = Ref.parse(uri)
    except ValueError as exc:
        raise BadInputError(
            f"SOURCE-URI: {exc}", hint="e.g. keyvault://kv-shop/db-password"
        ) from None
    env = dict(env)
    if ref.scheme == "keyvault":
        return _set_keyvault(env, ref, value)
    if ref.scheme == "vault":
        return _set_vault(env, ref, value)
    return _set_k8s(env, ref, value, namespace)


def _keyvault_url(env: dict[str, str], vault: str) -> str:
    url = env.get("SECRETSBOOT_KEYVAULT_" + vault.upper().replace("-", "_"))
    if not url:
        raise NotFoundError(
            f"the sandbox has no Key Vault named {vault!r}",
            hint="start it with `secretsboot sandbox up --spec FILE` naming that vault",
        )
    return url


def _set_keyvault(env: dict[str, str], ref: Ref, value: SecretValue) -> str:
    from azure.core.exceptions import HttpResponseError
    from azure.identity import ClientSecretCredential
    from azure.keyvault.secrets import SecretClient

    ca = env["REQUESTS_CA_BUNDLE"]
    credential = ClientSecretCredential(
        env["AZURE_TENANT_ID"],
        env["AZURE_CLIENT_ID"],
        env["AZURE_CLIENT_SECRET"],
        authority=env["AZURE_AUTHORITY_HOST"],
        disable_instance_discovery=True,
        connection_verify=ca,
    )
    client = SecretClient(
        _keyvault_url(env, ref.store),
        credential,
        verify_challenge_resource=False,  # the vault answers on 127.0.0.1, not *.vault.azure.net
        connection_verify=ca,
    )
    try:
        with client, credential:
            client.set_secret(ref.path, value.reveal())
    except HttpResponseError as exc:
        raise UnavailableError(f"Key Vault refused to set {ref}: {exc.message}") from None
    return str(ref)


def _set_vault(env: dict[str, str], ref: Ref, value: SecretValue) -> str:
    import hvac

    if not ref.key:
        raise BadInputError(
            f"{ref}: a vault:// source needs #KEY", hint="vault://secret/app#password"
        )
    client = hvac.Client(
        url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"], verify=env["VAULT_CACERT"]
    )
    try:
        mounts = client.sys.list_mounted_secrets_engines()["data"]
        mount = mounts.get(f"{ref.store}/")
        if mount is None:
            raise NotFoundError(f"Vault has no secrets engine mounted at {ref.store}/")
        version = str((mount.get("options") or {}).get("version", "1"))
        kv = client.secrets.kv.v2 if version == "2" else client.secrets.kv.v1
        current: dict[str, Any] = {}
        with contextlib.suppress(hvac.exceptions.InvalidPath):
            read = (
                kv.read_secret_version(
                    ref.path, mount_point=ref.store, raise_on_deleted_version=False
                )
                if version == "2"
                else kv.read_secret(ref.path, mount_point=ref.store)
            )
            current = dict((read["data"]["data"] if version == "2" else read["data"]) or {})
        current[ref.key] = value.reveal()
        kv.create_or_update_secret(ref.path, current, mount_point=ref.store)
    finally:
        client.adapter.close()
    return str(ref)


@contextlib.contextmanager
def _core_api(env: dict[str, str]) -> Iterator[Any]:
    from kubernetes import client, config

    api_client = config.new_client_from_config(config_file=env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    try:
        yield client.CoreV1Api(api_client)
    finally:
        api_client.close()


def _kube_namespace(env: dict[str, str], namespace: str | None) -> str:
    if namespace:
        return namespace
    from kubernetes import config

    _, active = config.list_kube_config_contexts(config_file=env["KUBECONFIG"])  # type: ignore[no-untyped-call]
    return str(active["context"].get("namespace") or "default")


def _set_k8s(env: dict[str, str], ref: Ref, value: SecretValue, namespace: str | None) -> str:
    from kubernetes.client.exceptions import ApiException

    if not ref.key:
        raise BadInputError(f"{ref}: a k8s:// source needs #KEY", hint="k8s://app-secrets#password")
    ns = _kube_namespace(env, namespace)
    encoded = base64.b64encode(value.reveal().encode("utf-8")).decode("ascii")
    with _core_api(env) as core:
        try:
            secret = core.read_namespaced_secret(ref.store, ns)
        except ApiException as exc:
            if exc.status != 404:
                raise UnavailableError(
                    f"Kubernetes refused to read Secret {ns}/{ref.store}: {exc.reason}"
                ) from None
            body = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": ref.store, "namespace": ns},
                "type": "Opaque",
                "data": {ref.key: encoded},
            }
            core.create_namespaced_secret(ns, body)
        else:
            secret.data = {**(secret.data or {}), ref.key: encoded}
            core.replace_namespaced_secret(ref.store, ns, secret)
    return f"k8s://{ns}/{ref.store}#{ref.key}"


def pod_token(
    env: Mapping[str, str],
    namespace: str,
    service_account: str,
    *,
    audiences: Sequence[str] = (),
    out: Path,
    expiration_seconds: int = 3600,
) -> dict[str, str]:
    """Mint the pod's projected tokens into ``out``; return the pod's environment.

    ``out/serviceaccount/{token,ca.crt,namespace}`` is what kubelet mounts at
    ``/var/run/secrets/kubernetes.io/serviceaccount``; ``out/azure-identity-token``
    is the workload-identity token (audience ``api://AzureADTokenExchange``); each
    extra audience ``A`` gets ``out/serviceaccount/<A>-token`` (``vault-token`` for
    ``vault``, where inject mounts Vault's jwt token).
    """
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    env = dict(env)
    out = out.resolve()
    sa_dir = out / "serviceaccount"
    sa_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def request(core: Any, audience: list[str] | None) -> str:
        spec = k8s.V1TokenRequestSpec(
            audiences=audience or [], expiration_seconds=expiration_seconds
        )
        body = k8s.AuthenticationV1TokenRequest(spec=spec)
        answer = core.create_namespaced_service_account_token(service_account, namespace, body)
        return str(answer.status.token)

    with _core_api(env) as core:
        try:
            sa = core.read_namespaced_service_account(service_account, namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise NotFoundError(
                    f"no service account {namespace}/{service_account}",
                    hint="run `secretsboot provision --yes` first (it creates them)",
                ) from None
            raise UnavailableError(f"Kubernetes refused: {exc.reason}") from None
        annotations = dict(sa.metadata.annotations or {})
        cluster = core.api_client.configuration.host
        files = {sa_dir / "token": request(core, None)}
        files[out / "azure-identity-token"] = request(core, [WORKLOAD_IDENTITY_AUDIENCE])
        for audience in audiences:
            name = "".join(c if c.isalnum() or c in "-._" else "-" for c in audience)
            files[sa_dir / f"{name}-token"] = request(core, [audience])
    files[sa_dir / "namespace"] = namespace
    files[sa_dir / "ca.crt"] = Path(env["REQUESTS_CA_BUNDLE"]).read_text(encoding="ascii")
    for path, text in files.items():
        atomic_write_text(path, text, mode=0o600, what="pod token")
    host = urlsplit(cluster)
    pod_env = {
        "KUBERNETES_SERVICE_HOST": host.hostname or "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(host.port or 443),
        "SECRETSBOOT_SERVICEACCOUNT_DIR": str(sa_dir),
        "AZURE_FEDERATED_TOKEN_FILE": str(out / "azure-identity-token"),
        "AZURE_AUTHORITY_HOST": env.get("AZURE_AUTHORITY_HOST", ""),
        "AZURE_TENANT_ID": annotations.get(WI_TENANT_ID_ANNOTATION)
        or env.get("AZURE_TENANT_ID", ""),
    }
    if annotations.get(WI_CLIENT_ID_ANNOTATION):
        pod_env["AZURE_CLIENT_ID"] = annotations[WI_CLIENT_ID_ANNOTATION]
    return {k: v for k, v in pod_env.items() if v}
