"""The resource types the Kubernetes fake serves, and the API's error objects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    builtin: bool = True
    short_names: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, short_names=("ns",)),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, short_names=("sa",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "configmaps", "ConfigMap", True, short_names=("cm",)),
    Resource("", "v1", "pods", "Pod", True, short_names=("po",)),
    Resource("apps", "v1", "deployments", "Deployment", True, short_names=("deploy",)),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, short_names=("sts",)),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, short_names=("ds",)),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, short_names=("rs",)),
    Resource("batch", "v1", "jobs", "Job", True),
    Resource("batch", "v1", "cronjobs", "CronJob", True, short_names=("cj",)),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False),
    Resource(
        "secrets-store.csi.x-k8s.io",
        "v1",
        "secretproviderclasses",
        "SecretProviderClass",
        True,
        builtin=False,
    ),
    Resource("aadpodidentity.k8s.io", "v1", "azureidentities", "AzureIdentity", True, False),
    Resource(
        "aadpodidentity.k8s.io", "v1", "azureidentitybindings", "AzureIdentityBinding", True, False
    ),
    # CRDs of the other secret-delivery approaches `audit` recognises (as if installed)
    Resource("external-secrets.io", "v1beta1", "externalsecrets", "ExternalSecret", True, False),
    Resource("external-secrets.io", "v1beta1", "secretstores", "SecretStore", True, False),
    Resource(
        "external-secrets.io", "v1beta1", "clustersecretstores", "ClusterSecretStore", False, False
    ),
    Resource("spv.no", "v2beta1", "azurekeyvaultsecrets", "AzureKeyVaultSecret", True, False),
    Resource(
        "secrets.hashicorp.com", "v1beta1", "vaultstaticsecrets", "VaultStaticSecret", True, False
    ),
    Resource(
        "secrets.hashicorp.com", "v1beta1", "vaultdynamicsecrets", "VaultDynamicSecret", True, False
    ),
    Resource(
        "", "v1", "replicationcontrollers", "ReplicationController", True, short_names=("rc",)
    ),
    Resource("", "v1", "services", "Service", True, short_names=("svc",)),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCES}
_BY_NAME: dict[str, Resource] = {}
for _r in RESOURCES:
    for _n in (_r.plural, _r.kind, _r.kind.lower(), *_r.short_names):
        _BY_NAME[_n] = _r


def by_path(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> Resource | None:
    return _BY_KIND.get((api_version, kind))


def lookup(name: str) -> Resource:
    """A resource by plural, kind or short name (``"secrets"``, ``"Secret"``, ``"sa"``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown resource {name!r}") from None


def groups() -> dict[str, list[str]]:
    """API group -> versions (the core group is ``""``)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def qualified_name_problem(key: str) -> str | None:
    """Why ``key`` is not a valid label/annotation key (``[prefix/]name``)."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        return "prefix part must be a lowercase RFC 1123 subdomain"
    if not name or len(name) > 63:
        return "name part must be no more than 63 characters and non-empty"
    if not _QUALIFIED_NAME.match(name):
        return (
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character"
        )
    return None


def label_value_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if len(value) > 63:
        return "must be no more than 63 characters"
    if value and not _QUALIFIED_NAME.match(value):
        return (
            "a valid label must be an empty string or consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return None


def config_key_problem(key: str) -> str | None:
    if len(key) > 253 or not _CONFIG_KEY.match(key):
        return "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    return None


def name_problem(resource: Resource, name: str) -> str | None:
    """Why ``name`` is not a valid name for ``resource`` (None when valid)."""
    if resource.plural == "namespaces":
        if len(name) > 63:
            return "must be no more than 63 characters"
        return None if DNS1123_LABEL.match(name) else _LABEL_MSG
    if resource.group == "rbac.authorization.k8s.io":
        # RBAC names are path segments: anything but '/', '%', '.' and '..'
        bad = name in (".", "..") or "/" in name or "%" in name
        return 'may not contain "/" or "%" and may not be "." or ".."' if bad else None
    if len(name) > 253:
        return "must be no more than 253 characters"
    return None if DNS1123_SUBDOMAIN.match(name) else _SUBDOMAIN_MSG


def validate_object(resource: Resource, obj: dict[str, Any], name: str) -> None:
    """Labels, annotations and data keys, as the API server validates them (422)."""
    meta = obj.get("metadata") or {}
    for field in ("labels", "annotations"):
        values = meta.get(field) or {}
        if not isinstance(values, dict):
            raise invalid(resource, name, f"metadata.{field}", values, "must be a map")
        for key, value in values.items():
            problem = qualified_name_problem(str(key))
            if problem:
                raise invalid(resource, name, f"metadata.{field}", key, problem)
            if field == "labels":
                problem = label_value_problem(value)
                if problem:
                    raise invalid(resource, name, "metadata.labels", value, problem)
            elif not isinstance(value, str):
                raise invalid(
                    resource, name, f"metadata.annotations[{key}]", value, "must be a string"
                )
    if resource.plural in ("secrets", "configmaps"):
        for field in ("data", "stringData", "binaryData"):
            for key in obj.get(field) or {}:
                problem = config_key_problem(str(key))
                if problem:
                    raise invalid(resource, name, f"{field}[{key}]", key, problem)


class ApiError(Exception):
    """An API failure carried as a Kubernetes ``Status`` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        *,
        name: str | None = None,
        group: str | None = None,
        kind: str | None = None,
        causes: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details: dict[str, Any] = {}
        if name is not None:
            self.details["name"] = name
        if group:
            self.details["group"] = group
        if kind is not None:
            self.details["kind"] = kind
        if causes:
            self.details["causes"] = causes

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def object_error(
    code: int,
    reason: str,
    resource: Resource,
    name: str,
    message: str,
    *,
    by_kind: bool = False,
    cause: tuple[str, str, str] | None = None,
) -> ApiError:
    """An error about one object, with the details the API server gives: its name, group
    and resource (the kind instead when ``by_kind``, as validation errors do), and
    ``cause`` as ``(reason, message, field)``."""
    return ApiError(
        code,
        reason,
        message,
        name=name,
        group=resource.group,
        kind=resource.kind if by_kind else resource.plural,
        causes=[dict(zip(("reason", "message", "field"), cause, strict=True))] if cause else None,
    )


def qualified(resource: Resource, name: str, *, by_kind: bool = False) -> str:
    """How the API server names an object in a message: ``secrets "db"``,
    ``roles.rbac.authorization.k8s.io "reader"`` (``by_kind``: ``Secret "db"``)."""
    return f'{resource.kind if by_kind else resource.plural}{_dot(resource)} "{name}"'


def not_found(resource: Resource, name: str) -> ApiError:
    message = f"{qualified(resource, name)} not found"
    return object_error(404, "NotFound", resource, name, message)


def already_exists(resource: Resource, name: str) -> ApiError:
    message = f"{qualified(resource, name)} already exists"
    return object_error(409, "AlreadyExists", resource, name, message)


def conflict(resource: Resource, name: str) -> ApiError:
    message = (
        f"Operation cannot be fulfilled on {qualified(resource, name)}: the object has been "
        "modified; please apply your changes to the latest version and try again"
    )
    return object_error(409, "Conflict", resource, name, message)


def field_error(
    resource: Resource, name: str, field: str, detail: str, cause: str = "FieldValueInvalid"
) -> ApiError:
    """422 Invalid on one field: ``Secret "db" is invalid: data[k]: <detail>``."""
    message = f"{qualified(resource, name, by_kind=True)} is invalid: {field}: {detail}"
    return object_error(
        422, "Invalid", resource, name, message, by_kind=True, cause=(cause, detail, field)
    )


def invalid(resource: Resource, name: str, field: str, value: Any, why: str) -> ApiError:
    return field_error(resource, name, field, f'Invalid value: "{value}": {why}')


def invalid_options(options: str, field: str, reason: str, message: str) -> ApiError:
    """A 422 on the request's options (``CreateOptions``...), as ``ValidateCreateOptions``
    and its siblings raise it: ``CreateOptions.meta.k8s.io "" is invalid: dryRun: ...``."""
    return ApiError(
        422,
        "Invalid",
        f'{options}.meta.k8s.io "" is invalid: {field}: {message}',
        name="",
        group="meta.k8s.io",
        kind=options,
        causes=[{"reason": reason, "message": message, "field": field}],
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def _dot(resource: Resource) -> str:
    return f".{resource.group}" if resource.group else ""
