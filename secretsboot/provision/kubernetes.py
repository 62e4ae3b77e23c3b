"""Kubernetes: namespaces, service accounts, Roles and RoleBindings, Secrets, CRDs.

Everything goes through the official client's ``ApiClient`` (kubeconfig,
auth, TLS) with plain REST paths, so built-in kinds and CRDs
(``SecretProviderClass``, ``AzureIdentity``) share one code path. Reads are
batched: one list per kind per namespace, plus one list per kind across
namespaces for this spec's labelled objects. Writes are a POST on create and a
JSON merge patch of only the managed fields on update.

Connection: ``KUBECONFIG`` (default ``~/.kube/config``) and the spec's
``kubernetes.context`` (``SECRETSBOOT_KUBE_CONTEXT`` overrides it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.provision._calls import CountedApi, first_line, read_retried
from secretsboot.provision.desired import PLACEHOLDER
from secretsboot.provision.model import (
    ANY_VALUE,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNERSHIP_ANNOTATION,
    SERVICE_LABEL,
    SPEC_LABEL,
    Action,
    Change,
    Desired,
    Note,
    Observed,
    ResourceKey,
    System,
)
from secretsboot.provision.ownership import KUBE_MARKS, known
from secretsboot.secret import fingerprint
from secretsboot.spec import Spec


@dataclass(frozen=True)
class Kind:
    kind: str
    api_version: str
    plural: str
    namespaced: bool = True

    def base(self, namespace: str | None) -> str:
        prefix = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{prefix}/namespaces/{namespace}/{self.plural}"
        return f"{prefix}/{self.plural}"


KINDS = {
    k.kind: k
    for k in (
        Kind("Namespace", "v1", "namespaces", namespaced=False),
        Kind("ServiceAccount", "v1", "serviceaccounts"),
        Kind("Secret", "v1", "secrets"),
        Kind("ConfigMap", "v1", "configmaps"),
        Kind("Role", "rbac.authorization.k8s.io/v1", "roles"),
        Kind("RoleBinding", "rbac.authorization.k8s.io/v1", "rolebindings"),
        Kind("SecretProviderClass", "secrets-store.csi.x-k8s.io/v1", "secretproviderclasses"),
        Kind("AzureIdentity", "aadpodidentity.k8s.io/v1", "azureidentities"),
        Kind("AzureIdentityBinding", "aadpodidentity.k8s.io/v1", "azureidentitybindings"),
    )
}
PLACEHOLDER_ANNOTATION = "secretsboot.dev/placeholder"  # keys holding the placeholder
_VERB_RBAC = {"read": "list", "create": "create", "update": "patch", "delete": "delete"}


class KubernetesBackend(CountedApi):
    system = System.KUBERNETES

    def __init__(self, spec: Spec, api_client: Any) -> None:
        super().__init__(spec)
        self.api = api_client

    @classmethod
    def connect(cls, spec: Spec) -> KubernetesBackend:
        from kubernetes import client as k8s
        from kubernetes import config
        from kubernetes.config.config_exception import ConfigException

        context = os.environ.get("SECRETSBOOT_KUBE_CONTEXT") or spec.kubernetes.context
        try:
            configuration = k8s.Configuration()
            config.load_kube_config(  # type: ignore[no-untyped-call]
                # KUBECONFIG read now: the client reads it once, at import
                config_file=os.environ.get("KUBECONFIG") or None,
                context=context,
                client_configuration=configuration,
            )
            # one connection per apply worker (the default pool of 10 drops connections)
            configuration.connection_pool_maxsize = 32
            client = k8s.ApiClient(configuration)
        except (ConfigException, OSError) as exc:
            raise BadInputError(
                f"kubernetes: cannot load the kubeconfig (context {context or '(current)'}): "
                f"{first_line(exc)}",
                hint="set KUBECONFIG, or kubernetes.context / SECRETSBOOT_KUBE_CONTEXT",
            ) from None
        return cls(spec, client)

    def close(self) -> None:
        self.api.close()

    # -- the one seam to the API ----------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        verb: str,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        """One REST call; returns the parsed JSON body; raises our errors only."""
        import urllib3

        self.count_call()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        try:
            params = self.api.param_serialize(
                method,
                path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api.call_api(*params, _request_timeout=30)
            data = resp.read()
        except urllib3.exceptions.HTTPError as exc:
            raise UnavailableError(
                f"kubernetes: {what}: cannot reach the API server: {type(exc).__name__}",
                hint="check KUBECONFIG and that the cluster is up",
            ) from None
        except Exception as exc:  # ApiException(status=0) for TLS failures
            if type(exc).__name__ == "ApiException":
                raise UnavailableError(
                    f"kubernetes: {what}: {first_line(exc)}",
                    hint="check the API server's CA in the kubeconfig",
                ) from None
            raise
        status = int(resp.status)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        if 200 <= status < 300:
            return parsed
        message = parsed.get("message", "") if isinstance(parsed, dict) else ""
        if status in (401, 403):
            rbac_verb = _VERB_RBAC.get(verb, verb)
            raise DeniedError(
                f"kubernetes: {what}: forbidden ({status}): {message[:300]}",
                hint=f"grant the caller '{rbac_verb}' on this resource (a Role or ClusterRole)",
            )
        if status == 404:
            raise NotFoundError(f"kubernetes: {what}: not found: {message[:300]}")
        if status == 409:
            raise _Conflict(f"kubernetes: {what}: {message[:300]}")
        if status == 429 or status >= 500:
            retry = resp.headers.get("Retry-After") if resp.headers else None
            raise UnavailableError(
                f"kubernetes: {what}: the API server answered {status}",
                hint="retry later",
                retry_after=float(retry) if retry and retry.isdigit() else None,
            )
        raise BadInputError(f"kubernetes: {what}: refused ({status}): {message[:300]}")

    def read(self, path: str, *, what: str, query: list[tuple[str, str]]) -> Any:
        """A GET, retried on 429/5xx and connection failures (writes retry in apply)."""
        return read_retried(lambda: self.request("GET", path, what=what, verb="read", query=query))

    def _list(self, kind: Kind, namespace: str | None, selector: str | None) -> list[Any]:
        items: list[Any] = []
        token = ""
        where = f"namespace {namespace}" if namespace else "all namespaces"
        while True:
            query = [("limit", "500")]
            if selector:
                query.append(("labelSelector", selector))
            if token:
                query.append(("continue", token))
            got = self.read(kind.base(namespace), what=f"list {kind.kind} in {where}", query=query)
            items.extend((got or {}).get("items") or [])
            token = ((got or {}).get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    # -- reads ---------------------------------------------------------------------------

    def observe(self, desired: Iterable[Desired], *, prune: bool) -> dict[ResourceKey, Observed]:
        desired = [d for d in desired if d.system == System.KUBERNETES]
        out: dict[ResourceKey, Observed] = {}
        ns_kind = KINDS["Namespace"]
        existing_ns = set()
        for item in self._list(ns_kind, None, None):
            name = item["metadata"]["name"]
            existing_ns.add(name)
            key = ResourceKey(System.KUBERNETES, "Namespace", name)
            out[key] = Observed(key, {}, managed=False, raw=item)
        wanted: dict[str, set[str]] = {}
        for d in desired:
            if d.key.kind != "Namespace":
                ns = d.key.name.split("/", 1)[0]
                wanted.setdefault(d.key.kind, set()).add(ns)
        for kind_name, namespaces in sorted(wanted.items()):
            kind = KINDS[kind_name]
            for ns in sorted(namespaces & existing_ns):
                for item in self._list(kind, ns, None):
                    self._add(out, kind, item)
        if prune:
            selector = f"{SPEC_LABEL}={self.spec.metadata.name}"
            for kind in KINDS.values():
                if kind.kind == "Namespace":
                    continue  # secretsboot never deletes a namespace
                for item in self._list(kind, None, selector):
                    self._add(out, kind, item)
        return out

    def _add(self, out: dict[ResourceKey, Observed], kind: Kind, item: dict[str, Any]) -> None:
        meta = item.get("metadata") or {}
        key = ResourceKey(System.KUBERNETES, kind.kind, f"{meta.get('namespace')}/{meta['name']}")
        labels = dict(meta.get("labels") or {})
        managed = (
            labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
            and labels.get(SPEC_LABEL) == self.spec.metadata.name
        )
        service = labels.get(SERVICE_LABEL)
        annotations = meta.get("annotations") or {}
        out[key] = Observed(
            key,
            _project(kind.kind, item),
            managed=managed,
            services=(service,) if service else (),
            raw=item,
            ownership=known(annotations.get(OWNERSHIP_ANNOTATION)) if managed else None,
        )

    def check_primaries(self, primaries: Iterable[tuple[str, str, str, str]]) -> list[Note]:
        """GET each Secret a ``k8s://`` primary source names: the operator creates and fills
        it (secretsboot never does); a missing Secret or key is an action for the plan."""
        wanted: dict[tuple[str, str], dict[str, list[str]]] = {}
        for service, ns, name, key in primaries:
            wanted.setdefault((ns, name), {}).setdefault(key, []).append(service)
        notes: list[Note] = []
        kind = KINDS["Secret"]
        for (ns, name), keys in sorted(wanted.items()):
            try:
                got = self.read(
                    f"{kind.base(ns)}/{name}", what=f"read Secret {ns}/{name}", query=[]
                )
            except NotFoundError:
                got = None
            present = set(((got or {}).get("data") or {}).keys())
            for key, services in sorted(keys.items()):
                if key in present:
                    continue
                what = "does not exist" if got is None else f"has no key '{key}'"
                notes.append(
                    Note(
                        ", ".join(sorted(set(services))),
                        "action",
                        f"kubernetes: the primary source k8s://{name}#{key} is the operator's "
                        f"Secret {ns}/{name}, which {what}; secretsboot never creates or "
                        "fills a primary Secret",
                        f"create it before the pods start: kubectl -n {ns} create secret "
                        f"generic {name} --from-literal={key}=VALUE (or add the key)",
                    )
                )
        return notes

    def request_token(
        self, namespace: str, service_account: str, audiences: list[str] | None, seconds: int
    ) -> str:
        """``POST .../serviceaccounts/{sa}/token`` (TokenRequest): a token of the service
        account, as kubelet projects it into the service's pods (``provision --verify``)."""
        spec: dict[str, Any] = {"expirationSeconds": seconds}
        if audiences:
            spec["audiences"] = audiences
        got = self.request(
            "POST",
            f"{KINDS['ServiceAccount'].base(namespace)}/{service_account}/token",
            what=f"request a token of ServiceAccount {namespace}/{service_account}",
            verb="create",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec},
        )
        token = ((got or {}).get("status") or {}).get("token")
        if not token:
            raise UnavailableError(
                f"kubernetes: no token in the TokenRequest of {namespace}/{service_account}"
            )
        return str(token)

    def preflight(self, changes: Iterable[Change]) -> None:
        """Ask the API server (SelfSubjectAccessReview) whether every pending write is allowed.

        One review per kind, verb and namespace; a refusal raises before anything is written.
        """
        verbs = {
            Action.CREATE: "create",
            Action.UPDATE: "patch",
            Action.DELETE: "delete",
            Action.RELEASE: "patch",
        }
        checks: set[tuple[str, str, str]] = set()
        for c in changes:
            if c.key.system != System.KUBERNETES or c.action is Action.NOOP:
                continue
            ns = c.key.name.rpartition("/")[0]
            checks.add((c.key.kind, verbs[c.action], ns))
        for kind_name, verb, ns in sorted(checks):
            kind = KINDS[kind_name]
            group = "" if kind.api_version == "v1" else kind.api_version.split("/")[0]
            review = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "group": group,
                        "resource": kind.plural,
                        **({"namespace": ns} if ns else {}),
                    }
                },
            }
            where = f"in namespace {ns}" if ns else "(cluster scope)"
            try:
                got = self.request(
                    "POST",
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    what=f"check permission to {verb} {kind.plural} {where} (preflight)",
                    verb="create",
                    body=review,
                )
            except NotFoundError:
                return  # an API server without access reviews: the writes will tell
            if not ((got or {}).get("status") or {}).get("allowed"):
                raise DeniedError(
                    f"kubernetes: the caller may not {verb} {kind.plural} {where} "
                    "(SelfSubjectAccessReview, preflight); nothing was written",
                    hint=f"grant '{verb}' on {kind.plural}"
                    + (f" in {ns} (a Role and RoleBinding)" if ns else " (a ClusterRole)"),
                )

    # -- writes -----------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        kind = KINDS[change.key.kind]
        ns, _, name = change.key.name.rpartition("/")
        what = f"{change.action.value} {kind.kind} {change.key.name} (service {_svc(change)})"
        if change.action is Action.DELETE:
            with contextlib.suppress(NotFoundError):
                self.request("DELETE", f"{kind.base(ns or None)}/{name}", what=what, verb="delete")
            return
        if change.action is Action.RELEASE:
            # a merge patch with null removes exactly secretsboot's labels and annotations
            marks = {part: dict.fromkeys(names) for part, names in KUBE_MARKS.items()}
            with contextlib.suppress(NotFoundError):
                self.request(
                    "PATCH",
                    f"{kind.base(ns or None)}/{name}",
                    what=what,
                    verb="update",
                    body={"metadata": marks},
                    content_type="application/merge-patch+json",
                )
            return
        want = change.desired
        assert want is not None  # noqa: S101
        if change.action is Action.CREATE:
            obj = self._manifest(kind, ns, name, want, existing=None)
            try:
                self.request("POST", kind.base(ns or None), what=what, verb="create", body=obj)
                return
            except _Conflict:
                pass  # created meanwhile (a concurrent or killed run): patch it instead
        patch = self._manifest(kind, ns, name, want, existing=change.observed)
        patch.pop("apiVersion", None)
        patch.pop("kind", None)
        self.request(
            "PATCH",
            f"{kind.base(ns or None)}/{name}",
            what=what,
            verb="update",
            body=patch,
            content_type="application/merge-patch+json",
        )

    def manifest(self, want: Desired) -> dict[str, Any]:
        """The object as a manifest (``--out``): placeholders for unsynced Secret values."""
        kind = KINDS[want.key.kind]
        ns, _, name = want.key.name.rpartition("/")
        return self._manifest(kind, ns, name, want, existing=None)

    @staticmethod
    def _manifest(
        kind: Kind, ns: str, name: str, want: Desired, existing: Observed | None
    ) -> dict[str, Any]:
        body = json.loads(json.dumps(want.body))
        meta = body.setdefault("metadata", {})
        meta["name"] = name
        if kind.namespaced:
            meta["namespace"] = ns
        if kind.kind == "Namespace":
            meta.setdefault("labels", {}).update(want.extra.get("labels", {}))
        if kind.kind == "Secret":
            have = (existing.body.get("data") or {}) if existing is not None else {}
            data: dict[str, str] = {}
            for k, v in (body.get("data") or {}).items():
                if k in want.secrets:
                    data[k] = base64.b64encode(want.secrets[k].reveal_bytes()).decode()
                elif v == ANY_VALUE and k not in have:
                    data[k] = base64.b64encode(PLACEHOLDER.encode()).decode()
            body["data"] = data
            if existing is not None and want.secrets:
                # synced from the primary: the key no longer holds a placeholder
                meta.setdefault("annotations", {})[PLACEHOLDER_ANNOTATION] = None
            if existing is None:
                body["type"] = "Opaque"
                unset = sorted(k for k in data if k not in want.secrets)
                if unset:
                    meta.setdefault("annotations", {})[PLACEHOLDER_ANNOTATION] = ",".join(unset)
        return {"apiVersion": kind.api_version, "kind": kind.kind, **body}


class _Conflict(BadInputError):
    pass


def _project(kind: str, item: dict[str, Any]) -> dict[str, Any]:
    """What a diff compares: the object itself, Secret values as fingerprints only."""
    if kind != "Secret":
        return item
    data = {}
    for k, v in (item.get("data") or {}).items():
        try:
            data[k] = fingerprint(base64.b64decode(v))
        except (ValueError, TypeError):
            data[k] = "(undecodable)"
    meta = item.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    kept = (
        {OWNERSHIP_ANNOTATION: annotations[OWNERSHIP_ANNOTATION]}
        if (OWNERSHIP_ANNOTATION in annotations)
        else {}
    )
    return {
        "metadata": {"labels": dict(meta.get("labels") or {}), "annotations": kept},
        "data": data,
    }


def _svc(change: Change) -> str:
    return ", ".join(change.services) or "-"
