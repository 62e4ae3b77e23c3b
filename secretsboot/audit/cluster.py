"""Read a live cluster for ``secretsboot audit --cluster``: every kind the audit needs.

>>> from secretsboot.audit.cluster import KINDS
>>> [k.kind for k in KINDS][:3]
['Pod', 'ServiceAccount', 'Secret']

Lists go through the official ``kubernetes`` client (imported here, lazily: the
file audit never pays for it), page by page (``limit``/``continue``), as raw JSON
so objects keep their camelCase fields exactly as the API serves them. Custom
resources (SecretProviderClass, AzureIdentity/Binding, ExternalSecret,
AzureKeyVaultSecret, Vault Secrets Operator kinds) are listed through
``CustomObjectsApi``; a 404 means the CRD is not installed: none of that kind.
A 403 on one kind is a :class:`LoadError` (the rest is still audited).

Secrets are listed as metadata only: the request asks for a
``PartialObjectMetadataList`` (``Accept: application/json;as=PartialObjectMetadataList;
g=meta.k8s.io;v=v1``), so the API server sends names, labels and annotations and no
value ever enters the process (nor ``type``, nor key names). Every object loses
``managedFields`` and the ``last-applied-configuration`` annotation (which repeats
a Secret's values).
The result is a :class:`~secretsboot.audit.loader.LoadResult`, fed to the same
pipeline as files.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from secretsboot.audit.loader import LoadResult
from secretsboot.audit.model import LoadError, Manifest
from secretsboot.errors import BadInputError, DeniedError, UnavailableError

PAGE_SIZE = 500
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_ONLY_KINDS = frozenset({"Secret"})


@dataclass(frozen=True, slots=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True
    custom: bool = False
    other_versions: tuple[str, ...] = ()  # served versions to try when this one is not (404)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        return f"{prefix}/{self.plural}"


_RBAC = "rbac.authorization.k8s.io"
KINDS: tuple[Kind, ...] = (
    Kind("Pod", "", "v1", "pods"),
    Kind("ServiceAccount", "", "v1", "serviceaccounts"),
    Kind("Secret", "", "v1", "secrets"),
    Kind("ConfigMap", "", "v1", "configmaps"),
    Kind("ReplicationController", "", "v1", "replicationcontrollers"),
    Kind("Deployment", "apps", "v1", "deployments"),
    Kind("StatefulSet", "apps", "v1", "statefulsets"),
    Kind("DaemonSet", "apps", "v1", "daemonsets"),
    Kind("ReplicaSet", "apps", "v1", "replicasets"),
    Kind("Job", "batch", "v1", "jobs"),
    Kind("CronJob", "batch", "v1", "cronjobs"),
    Kind("Role", _RBAC, "v1", "roles"),
    Kind("RoleBinding", _RBAC, "v1", "rolebindings"),
    Kind("ClusterRole", _RBAC, "v1", "clusterroles", namespaced=False),
    Kind("ClusterRoleBinding", _RBAC, "v1", "clusterrolebindings", namespaced=False),
    Kind(
        "SecretProviderClass",
        "secrets-store.csi.x-k8s.io",
        "v1",
        "secretproviderclasses",
        custom=True,
        other_versions=("v1alpha1",),
    ),
    Kind("AzureIdentity", "aadpodidentity.k8s.io", "v1", "azureidentities", custom=True),
    Kind(
        "AzureIdentityBinding", "aadpodidentity.k8s.io", "v1", "azureidentitybindings", custom=True
    ),
    Kind(
        "ExternalSecret",
        "external-secrets.io",
        "v1",
        "externalsecrets",
        custom=True,
        other_versions=("v1beta1", "v1alpha1"),
    ),
    Kind(
        "ClusterExternalSecret",
        "external-secrets.io",
        "v1",
        "clusterexternalsecrets",
        namespaced=False,
        custom=True,
        other_versions=("v1beta1",),
    ),
    Kind(
        "ExternalSecret", "kubernetes-client.io", "v1", "externalsecrets", custom=True
    ),  # the older GoDaddy operator
    Kind(
        "AzureKeyVaultSecret",
        "spv.no",
        "v2beta1",
        "azurekeyvaultsecrets",
        custom=True,
        other_versions=("v2alpha1", "v1"),
    ),
    Kind(
        "VaultStaticSecret", "secrets.hashicorp.com", "v1beta1", "vaultstaticsecrets", custom=True
    ),
    Kind(
        "VaultDynamicSecret", "secrets.hashicorp.com", "v1beta1", "vaultdynamicsecrets", custom=True
    ),
    Kind("VaultPKISecret", "secrets.hashicorp.com", "v1beta1", "vaultpkisecrets", custom=True),
)


def _slim(obj: dict[str, Any], kind: Kind) -> dict[str, Any]:
    if kind.kind in METADATA_ONLY_KINDS or obj.get("kind") == "PartialObjectMetadata":
        obj = {"metadata": obj.get("metadata") or {}}  # nothing but metadata is kept
    obj["kind"] = obj.get("kind") or kind.kind
    obj["apiVersion"] = obj.get("apiVersion") or kind.api_version
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return obj


class ClusterReader:
    """Lists :data:`KINDS` page by page through one ``kubernetes.client.ApiClient``."""

    def __init__(self, api_client: Any, *, source: str, page_size: int = PAGE_SIZE) -> None:
        self.api = api_client
        self.source = source
        self.page_size = page_size

    def _pages(self, kind: Kind, namespace: str | None) -> Iterator[dict[str, Any]]:
        from kubernetes import client

        token: str | None = None
        page: Any
        while True:
            kwargs: dict[str, Any] = {"limit": self.page_size}
            if token:
                kwargs["_continue"] = token
            if kind.custom:
                custom = client.CustomObjectsApi(self.api)
                if namespace and kind.namespaced:
                    page = custom.list_namespaced_custom_object(
                        kind.group, kind.version, namespace, kind.plural, **kwargs
                    )
                else:
                    page = custom.list_cluster_custom_object(
                        kind.group, kind.version, kind.plural, **kwargs
                    )
            else:
                page = self._typed_list(kind, namespace, kwargs)
            yield page
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def _typed_list(
        self, kind: Kind, namespace: str | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        from kubernetes import client

        api_class = {
            "": client.CoreV1Api,
            "apps": client.AppsV1Api,
            "batch": client.BatchV1Api,
            _RBAC: client.RbacAuthorizationV1Api,
        }[kind.group]
        if kind.kind in METADATA_ONLY_KINDS:
            return self._metadata_list(kind, namespace, kwargs)
        api = api_class(self.api)
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in kind.kind).lstrip("_")
        if not kind.namespaced:
            method = getattr(api, f"list_{snake}")
            response = method(_preload_content=False, **kwargs)
        elif namespace:
            method = getattr(api, f"list_namespaced_{snake}")
            response = method(namespace, _preload_content=False, **kwargs)
        else:
            method = getattr(api, f"list_{snake}_for_all_namespaces")
            response = method(_preload_content=False, **kwargs)
        try:
            data: dict[str, Any] = json.loads(response.data)
        finally:
            response.release_conn()
        return data

    def _metadata_list(
        self, kind: Kind, namespace: str | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """A list of ``kind`` as a PartialObjectMetadataList: metadata only, no value."""
        path = (
            kind.path
            if not namespace
            else kind.path.replace(f"/{kind.plural}", f"/namespaces/{namespace}/{kind.plural}")
        )
        query = [("limit", kwargs["limit"])]
        if kwargs.get("_continue"):
            query.append(("continue", kwargs["_continue"]))
        request = self.api.param_serialize(
            method="GET",
            resource_path=path,
            query_params=query,
            header_params={"Accept": METADATA_ONLY},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request)
        try:
            status = int(getattr(response, "status", 200))
            raw = response.read()
        finally:
            response.close()
        if status >= 400:
            from kubernetes.client.exceptions import ApiException

            raise ApiException(status=status, reason=getattr(response, "reason", ""))
        data: dict[str, Any] = json.loads(raw)
        if data.get("kind") != "PartialObjectMetadataList":
            raise UnavailableError(
                f"{self.source}: the API server answered a metadata-only list of "
                f"{kind.plural} with {data.get('kind')!r}",
                hint="the audit reads Secrets as metadata only; use a server that serves it",
            )
        return data

    def read(self, namespace: str | None = None) -> LoadResult:
        """Every object of every kind (``namespace`` limits the namespaced kinds)."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        result = LoadResult()
        result.coverage.files = 0
        doc = 0
        for listed in KINDS:
            versions = [replace(listed, version=v) for v in listed.other_versions]
            kind = listed
            try:
                while True:
                    try:
                        pages = self._pages(kind, namespace)
                        first = next(pages)
                        break
                    except ApiException as exc:
                        if exc.status != 404 or not versions:
                            raise
                        kind = versions.pop(0)  # this version is not served: an older one?
                for page in itertools.chain([first], pages):
                    result.coverage.documents += 1
                    for item in page.get("items") or []:
                        if not isinstance(item, dict):
                            continue
                        body = _slim(item, kind)
                        result.manifests.append(Manifest(self.source, doc, 0, body))
                        result.coverage.objects += 1
                    doc += 1
            except ApiException as exc:
                if exc.status == 404:
                    continue  # the CRD (or the API group) is not installed: none of that kind
                if exc.status in (401,):
                    raise DeniedError(
                        f"{self.source}: the cluster refused our credentials (401)",
                        hint="check the kubeconfig user or log in again",
                    ) from None
                reason = f"cannot list {kind.plural}: HTTP {exc.status} {exc.reason or ''}".strip()
                result.errors.append(LoadError(self.source, doc, 0, reason))
            except HTTPError as exc:
                raise UnavailableError(
                    f"{self.source}: cannot reach the API server ({type(exc).__name__})",
                    hint="check the cluster is up and the kubeconfig server URL",
                ) from None
        return result


def api_client(*, context: str | None, kubeconfig: Path | None) -> Any:
    """A ``kubernetes.client.ApiClient`` from the kubeconfig (or in-cluster config)."""
    import os

    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # untyped package

    try:
        return config.new_client_from_config(
            config_file=str(kubeconfig) if kubeconfig else None, context=context
        )
    except (ConfigException, OSError) as exc:
        if kubeconfig is None and context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            configuration = client.Configuration()
            config.load_incluster_config(client_configuration=configuration)
            return client.ApiClient(configuration)
        raise BadInputError(
            f"cannot load the kubeconfig{f' {kubeconfig}' if kubeconfig else ''}: {exc}",
            hint="pass --kubeconfig FILE and --context NAME, or set KUBECONFIG",
        ) from None


def current_context(kubeconfig: Path | None = None) -> str | None:
    """The kubeconfig's current context (the default name of a cluster's report)."""
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # untyped package
    try:
        _, active = config.list_kube_config_contexts(
            config_file=str(kubeconfig) if kubeconfig else None
        )
    except (ConfigException, OSError, TypeError):
        return None
    return str(active.get("name")) if isinstance(active, dict) and active.get("name") else None


def load_cluster(
    *,
    context: str | None = None,
    namespace: str | None = None,
    kubeconfig: Path | None = None,
    page_size: int = PAGE_SIZE,
) -> LoadResult:
    """Read the cluster the kubeconfig (and ``context``) points at."""
    client = api_client(context=context, kubeconfig=kubeconfig)
    try:
        source = f"cluster:{context or 'current-context'}"
        if namespace:
            source += f"/{namespace}"
        return ClusterReader(client, source=source, page_size=page_size).read(namespace)
    finally:
        client.close()
