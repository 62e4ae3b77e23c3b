"""The index of every object in the input, and the lookups classification and detectors need.

Interface (stable; the detectors receive an :class:`Index` from the engine)::

    index = Index(manifests, trusted_registries=("myacr.azurecr.io",))
    index.manifests                       # list[Manifest]: every object, in input order
    index.trusted_registries              # tuple[str, ...] from --trusted-registry
    index.of_kind("ServiceAccount", ...)  # list[Manifest] of those kinds
    index.get(kind, namespace, name)      # Manifest | None (namespace rule below)
    index.service_account(workload)       # the ServiceAccount a workload runs as, or None
    index.service_account_name(workload)  # its name ("default" when the pod names none)
    index.secret_provider_class(ns, name) # SecretProviderClass: same namespace first, then by
                                          # name anywhere in the input ("same repository")
    index.identity_bindings(selector, ns) # AzureIdentityBinding(s) whose selector matches
    index.azure_identity(ns, name)        # AzureIdentity named by a binding
    index.secret(ns, name)                # a Secret object in the input, or None
    index.secret_producers(ns, name)      # list[Producer]: what creates that Secret
                                          # (ExternalSecret, AzureKeyVaultSecret, SPC sync,
                                          # Vault Secrets Operator), each with its approach id
    index.role_bindings_for(ns, sa)       # list[(binding, role-or-None)] naming the SA
    index.pod_template(manifest)          # (spec path, metadata path, spec, metadata)
                                          # of a workload kind, or None

Namespaces. A manifest that leaves ``metadata.namespace`` out has namespace
``""``: "the namespace it is applied to", which the input cannot know. Every
lookup therefore (1) prefers an object in exactly the same namespace, (2) then
accepts one where either side is ``""`` (it could be applied to the same
namespace), and never matches two different explicit namespaces, except where
the source project's own rule is broader (SecretProviderClass by name anywhere,
as the corpus rule says; AzureIdentityBinding in any namespace, as aad-pod-identity
does unless run with ``--forceNamespaced``).

Lookups are precomputed on first use (dicts keyed by name), so classifying
100,000 workloads costs one dict lookup per reference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from secretsboot.audit.model import FieldPath, Manifest

WORKLOAD_KINDS = frozenset(
    {
        "Pod",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "ReplicaSet",
        "ReplicationController",
        "Job",
        "CronJob",
    }
)
# a Pod, ReplicaSet, ReplicationController or Job controlled by one of these is not a workload
# of its own: the owner is (kubectl get -o yaml of a live namespace lists both)
OWNER_KINDS = WORKLOAD_KINDS - {"Pod"}

_SECRET_PRODUCER_KINDS = frozenset(
    {
        "ExternalSecret",
        "ClusterExternalSecret",
        "AzureKeyVaultSecret",
        "SecretProviderClass",
        "VaultStaticSecret",
        "VaultDynamicSecret",
        "VaultPKISecret",
        "HCPVaultSecretsApp",
    }
)


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str:
    """A scalar as text ('' for None, collections and anything unprintable)."""
    if value is None or isinstance(value, dict | list):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def truthy(value: Any) -> bool:
    """A YAML/annotation boolean: true, "true", "True", "yes", "1"."""
    if isinstance(value, bool):
        return value
    return as_str(value).strip().lower() in {"true", "yes", "y", "1", "on"}


def get_ci(mapping: dict[str, Any], key: str) -> Any:
    """``mapping[key]``, falling back to a case-insensitive match (PascalCase CRD fields)."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for k, v in mapping.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def ns_compatible(a: str, b: str) -> bool:
    """Could objects in namespaces ``a`` and ``b`` be in the same namespace once applied?"""
    return a == b or not a or not b


def pod_paths(kind: str) -> tuple[FieldPath, FieldPath] | None:
    """(pod spec path, pod metadata path) of a workload kind, None for other kinds."""
    if kind == "Pod":
        return ("spec",), ("metadata",)
    if kind == "CronJob":
        base: FieldPath = ("spec", "jobTemplate", "spec", "template")
        return (*base, "spec"), (*base, "metadata")
    if kind in WORKLOAD_KINDS:
        return ("spec", "template", "spec"), ("spec", "template", "metadata")
    return None


def dig(body: dict[str, Any], path: FieldPath) -> Any:
    node: Any = body
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and -len(node) <= part < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


@dataclass(frozen=True, slots=True)
class Producer:
    """An object that creates a Secret, and the approach id that delivers it."""

    approach: str  # external-secrets | akv2k8s | keyvault-csi | vault-csi | vault-secrets-operator
    manifest: Manifest
    path: str  # field path naming the Secret, e.g. spec.target.name


def _matches(candidates: list[Manifest], namespace: str) -> Manifest | None:
    exact = None
    loose = None
    for m in candidates:
        if m.namespace == namespace:
            exact = exact or m
        elif loose is None and ns_compatible(m.namespace, namespace):
            loose = m
    return exact or loose


class Index:
    """Every object of one audit, by kind, namespace and name; see the module docstring."""

    def __init__(
        self, manifests: Iterable[Manifest] = (), *, trusted_registries: Iterable[str] = ()
    ) -> None:
        self.manifests: list[Manifest] = []
        self.trusted_registries: tuple[str, ...] = tuple(trusted_registries)
        self._by_kind: dict[str, list[Manifest]] = defaultdict(list)
        self._by_name: dict[tuple[str, str], list[Manifest]] = defaultdict(list)
        self._producers: dict[str, list[Producer]] | None = None
        self._selectors: dict[str, list[Manifest]] | None = None
        self._bindings_by_sa: dict[str, list[Manifest]] | None = None
        # what detectors derive from the index (RBAC grants...), kept as long as it holds
        self.memo: dict[str, Any] = {}
        for m in manifests:
            self.add(m)

    def add(self, manifest: Manifest) -> None:
        kind = manifest.kind
        self.manifests.append(manifest)
        self._by_kind[kind].append(manifest)
        self._by_name[(kind, manifest.name)].append(manifest)
        if kind in _SECRET_PRODUCER_KINDS:
            self._producers = None
        elif kind == "AzureIdentityBinding":
            self._selectors = None
        elif kind in {"RoleBinding", "ClusterRoleBinding"}:
            self._bindings_by_sa = None
        if self.memo and kind in {"RoleBinding", "ClusterRoleBinding", "Role", "ClusterRole"}:
            self.memo.clear()

    def warm(self) -> None:
        """Build every lookup now (a sharded audit's forked workers then share them)."""
        self.identity_bindings("", "")
        self.secret_producers("", "")
        self.role_bindings_for("", "")

    def __len__(self) -> int:
        return len(self.manifests)

    def by_kind(self) -> dict[str, list[Manifest]]:
        """Every object by kind (the index's own dict: read it, do not change it)."""
        return self._by_kind

    def by_name(self) -> dict[tuple[str, str], list[Manifest]]:
        """Every object by (kind, name) (the index's own dict: read it, do not change it)."""
        return self._by_name

    # --- plain lookups ----------------------------------------------------------------------

    def of_kind(self, *kinds: str) -> list[Manifest]:
        out: list[Manifest] = []
        for kind in kinds:
            out.extend(self._by_kind.get(kind, ()))
        return out

    def get(self, kind: str, namespace: str, name: str) -> Manifest | None:
        """The ``kind`` object called ``name`` in (or compatible with) ``namespace``."""
        return _matches(self._by_name.get((kind, name), []), namespace)

    def secret(self, namespace: str, name: str) -> Manifest | None:
        return self.get("Secret", namespace, name)

    # --- workloads --------------------------------------------------------------------------

    @staticmethod
    def pod_template(
        manifest: Manifest,
    ) -> tuple[FieldPath, FieldPath, dict[str, Any], dict[str, Any]] | None:
        paths = pod_paths(manifest.kind)
        if paths is None:
            return None
        spec_path, meta_path = paths
        return (
            spec_path,
            meta_path,
            as_dict(dig(manifest.body, spec_path)),
            as_dict(dig(manifest.body, meta_path)),
        )

    @staticmethod
    def service_account_name(workload: Manifest) -> str:
        tpl = Index.pod_template(workload)
        spec = tpl[2] if tpl else {}
        return as_str(spec.get("serviceAccountName") or spec.get("serviceAccount")) or "default"

    def service_account(self, workload: Manifest) -> Manifest | None:
        return self.get("ServiceAccount", workload.namespace, self.service_account_name(workload))

    # --- CSI, pod identity ------------------------------------------------------------------

    def secret_provider_class(self, namespace: str, name: str) -> Manifest | None:
        """Same namespace first, then by name anywhere in the input (the corpus rule)."""
        candidates = self._by_name.get(("SecretProviderClass", name), [])
        return _matches(candidates, namespace) or (candidates[0] if candidates else None)

    def _build_selectors(self) -> dict[str, list[Manifest]]:
        out: dict[str, list[Manifest]] = defaultdict(list)
        for m in self._by_kind.get("AzureIdentityBinding", ()):
            selector = as_str(get_ci(as_dict(m.body.get("spec")), "selector"))
            if selector:
                out[selector].append(m)
        return out

    def identity_bindings(self, selector: str, namespace: str) -> list[Manifest]:
        """AzureIdentityBindings with this selector: same namespace first, then any."""
        if self._selectors is None:
            self._selectors = self._build_selectors()
        found = self._selectors.get(selector, [])
        return sorted(found, key=lambda m: not ns_compatible(m.namespace, namespace))

    def azure_identity(self, namespace: str, name: str) -> Manifest | None:
        candidates = self._by_name.get(("AzureIdentity", name), [])
        return _matches(candidates, namespace) or (candidates[0] if candidates else None)

    # --- who produces a Secret --------------------------------------------------------------

    def _build_producers(self) -> dict[str, list[Producer]]:
        out: dict[str, list[Producer]] = defaultdict(list)
        for m in self.of_kind(*sorted(_SECRET_PRODUCER_KINDS)):
            for name, approach, path in _produced_secrets(m):
                if name:
                    out[name].append(Producer(approach, m, path))
        return out

    def secret_producers(self, namespace: str, name: str) -> list[Producer]:
        """What creates Secret ``name`` in ``namespace`` (ClusterExternalSecret: any)."""
        if self._producers is None:
            self._producers = self._build_producers()
        return [
            p
            for p in self._producers.get(name, [])
            if p.manifest.kind == "ClusterExternalSecret"
            or ns_compatible(p.manifest.namespace, namespace)
        ]

    # --- RBAC -------------------------------------------------------------------------------

    def _build_bindings(self) -> dict[str, list[Manifest]]:
        out: dict[str, list[Manifest]] = defaultdict(list)
        for m in self.of_kind("RoleBinding", "ClusterRoleBinding"):
            for subject in as_list(m.body.get("subjects")):
                s = as_dict(subject)
                if as_str(s.get("kind")) == "ServiceAccount" and as_str(s.get("name")):
                    out[as_str(s.get("name"))].append(m)
        return out

    def role_bindings_for(
        self, namespace: str, service_account: str
    ) -> list[tuple[Manifest, Manifest | None]]:
        """(RoleBinding or ClusterRoleBinding, the Role/ClusterRole it grants) naming the SA."""
        if self._bindings_by_sa is None:
            self._bindings_by_sa = self._build_bindings()
        out: list[tuple[Manifest, Manifest | None]] = []
        for binding in self._bindings_by_sa.get(service_account, []):
            subject_ns = [
                as_str(as_dict(s).get("namespace")) or binding.namespace
                for s in as_list(binding.body.get("subjects"))
                if as_str(as_dict(s).get("name")) == service_account
            ]
            if not any(ns_compatible(ns, namespace) for ns in subject_ns):
                continue
            ref = as_dict(binding.body.get("roleRef"))
            role_kind = as_str(ref.get("kind")) or "Role"
            role_ns = "" if role_kind == "ClusterRole" else binding.namespace
            out.append((binding, self.get(role_kind, role_ns, as_str(ref.get("name")))))
        return out


def _produced_secrets(m: Manifest) -> list[tuple[str, str, str]]:
    """(secret name, approach id, field path) for each Secret the object creates."""
    spec = as_dict(m.body.get("spec"))
    kind = m.kind
    if kind == "ExternalSecret":
        target = as_dict(spec.get("target"))
        if "kubernetes-client.io" in m.api_version:  # the older GoDaddy operator: Secret = name
            return [(m.name, "external-secrets", "metadata.name")]
        name = as_str(target.get("name"))
        return [
            (name or m.name, "external-secrets", "spec.target.name" if name else "metadata.name")
        ]
    if kind == "ClusterExternalSecret":
        name = as_str(spec.get("externalSecretName")) or m.name
        target = as_dict(as_dict(spec.get("externalSecretSpec")).get("target"))
        return [(as_str(target.get("name")) or name, "external-secrets", "spec.externalSecretSpec")]
    if kind == "AzureKeyVaultSecret":
        output = as_dict(as_dict(spec.get("output")).get("secret"))
        name = as_str(output.get("name"))
        return [(name, "akv2k8s", "spec.output.secret.name")] if name else []
    if kind == "SecretProviderClass":
        provider = as_str(spec.get("provider")).lower()
        approach = "vault-csi" if provider == "vault" else "keyvault-csi"
        return [
            (
                as_str(as_dict(obj).get("secretName")),
                approach,
                f"spec.secretObjects[{i}].secretName",
            )
            for i, obj in enumerate(as_list(spec.get("secretObjects")))
        ]
    if kind in {"VaultStaticSecret", "VaultDynamicSecret", "VaultPKISecret", "HCPVaultSecretsApp"}:
        dest = as_dict(spec.get("destination"))
        name = as_str(dest.get("name"))
        return [(name, "vault-secrets-operator", "spec.destination.name")] if name else []
    return []
