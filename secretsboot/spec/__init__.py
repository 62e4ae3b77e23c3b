"""The declarative spec, ``secretsboot.yaml`` (``apiVersion: secretsboot/v1``).

One document describes a platform: its Azure tenant and Key Vaults, its Vault
server, its cluster, and every service with the secrets it needs and where each
comes from. ``provision`` turns it into identities and grants, ``fetch`` reads
one service's part of it, ``inject`` and ``audit`` compare manifests with it.

>>> spec = load_spec_text('''
... apiVersion: secretsboot/v1
... kind: SecretsbootSpec
... kubernetes: {namespace: shop}
... services:
...   - name: orders
...     identity: none
...     secrets:
...       - {name: db-password, from: "k8s://orders-db#password"}
... ''', "inline.yaml")
>>> spec.services[0].secrets[0].source
Ref(scheme='k8s', store='orders-db', path='', key='password', version=None)

Every problem is reported as ``FILE:LINE FIELD: what is wrong; the fix``.
"""

from __future__ import annotations

import difflib
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from secretsboot import _yaml
from secretsboot.contract import DEFAULT_AUTHORITY
from secretsboot.contract import WORKLOAD_IDENTITY_AUDIENCE as WORKLOAD_IDENTITY_AUDIENCE
from secretsboot.errors import SpecError, SpecErrors
from secretsboot.refs import (
    DNS_SUBDOMAIN,
    ENV_NAME,
    KEYVAULT_NAME,
    file_mode,
    landing_file,
    safe_file_name,
)
from secretsboot.refs import Ref as SourceRef  # re-exported: the spec's source type

__all__ = [
    "SecretSpec",
    "ServiceSpec",
    "SourceRef",
    "Spec",
    "json_schema",
    "load_spec",
    "load_spec_text",
    "safe_file_name",
]

API_VERSION = "secretsboot/v1"
KIND = "SecretsbootSpec"
MAX_FEDERATED_CREDENTIALS = 20  # per user-assigned identity, an Azure limit

# DNS-1123 label (namespaces, service names); the rest are shared with the init path.
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _check_dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a valid name; use lower-case letters, digits and '-' "
            "(at most 63, starting and ending with a letter or digit)"
        )
    return value


def _check_dns_subdomain(value: str) -> str:
    if not DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"'{value}' is not a valid Kubernetes name; use lower-case letters, digits, '-' and '.'"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_check_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_check_dns_subdomain)]
FileName = Annotated[str, AfterValidator(safe_file_name)]


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        str_strip_whitespace=False,
    )


class KeyVaultMode(StrEnum):
    RBAC = "rbac"
    ACCESS_POLICY = "access-policy"


class KeyVaultSpec(_Model):
    name: str = Field(pattern=KEYVAULT_NAME.pattern)
    mode: KeyVaultMode = KeyVaultMode.RBAC
    resource_group: str | None = None
    url: str | None = Field(
        default=None, description="Data-plane URL; default https://NAME.vault.azure.net"
    )

    @property
    def vault_url(self) -> str:
        return self.url or f"https://{self.name}.vault.azure.net"


class AzureSpec(_Model):
    tenant_id: str = Field(pattern=_UUID.pattern)
    subscription_id: str = Field(pattern=_UUID.pattern)
    resource_group: str = Field(min_length=1, max_length=90)
    location: str = Field(min_length=1)
    oidc_issuer: str | None = Field(default=None, description="The cluster's OIDC issuer URL")
    authority_host: str = DEFAULT_AUTHORITY
    key_vaults: list[KeyVaultSpec] = Field(default_factory=list)

    @field_validator("oidc_issuer")
    @classmethod
    def _https_issuer(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError(
                "the OIDC issuer must be an https:// URL (see `az aks show "
                "--query oidcIssuerProfile.issuerUrl`)"
            )
        return value

    def key_vault(self, name: str) -> KeyVaultSpec | None:
        return next((kv for kv in self.key_vaults if kv.name == name), None)


class VaultKubernetesAuth(_Model):
    mount: str = "kubernetes"
    host: str | None = Field(
        default=None, description="Kubernetes API URL Vault calls for TokenReview"
    )
    ca_cert: str | None = None
    audience: str | None = None


class VaultJwtAuth(_Model):
    mount: str = "jwt"
    oidc_discovery_url: str | None = None
    jwks_url: str | None = None
    bound_issuer: str | None = None
    audience: str = "vault"


class VaultAzureAuth(_Model):
    mount: str = "azure"
    resource: str = "https://management.azure.com/"


class VaultAuth(_Model):
    kubernetes: VaultKubernetesAuth | None = None
    jwt: VaultJwtAuth | None = None
    azure: VaultAzureAuth | None = None


class VaultSpec(_Model):
    address: str = Field(pattern=r"^https?://")
    ca_cert: str | None = None
    namespace: str | None = None
    kv_mount: str = "secret"
    kv_version: Literal[1, 2] = 2
    auth: VaultAuth = Field(default_factory=VaultAuth)
    token_ttl: str = Field(default="5m", pattern=r"^[0-9]+[smh]$")


class KubernetesSpec(_Model):
    context: str | None = None
    namespace: DnsLabel = "default"


class Identity(StrEnum):
    WORKLOAD_IDENTITY = "workload-identity"
    POD_IDENTITY = "pod-identity"
    NONE = "none"


class Delivery(StrEnum):
    INIT_CONTAINER = "init-container"
    CSI = "csi"
    FLEXVOLUME = "flexvolume"
    ENV = "env"


class VaultAuthMethod(StrEnum):
    KUBERNETES = "kubernetes"
    JWT = "jwt"
    AZURE = "azure"


class SecretSpec(_Model):
    name: FileName
    from_: str = Field(
        alias="from",
        description="keyvault://VAULT/NAME[@VERSION], vault://MOUNT/PATH#KEY or k8s://SECRET#KEY",
    )
    fallback: list[str] = Field(default_factory=list)
    file: FileName | None = None
    mode: str = Field(default="0400", description='A quoted octal file mode, e.g. "0400"')
    env: str | None = Field(default=None, pattern=ENV_NAME.pattern)

    @field_validator("from_")
    @classmethod
    def _from_uri(cls, value: str) -> str:
        SourceRef.parse(value)
        return value

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        file_mode(value)  # as fetch parses it: quoted octal, owner-readable, not world-open
        return value

    @field_validator("fallback")
    @classmethod
    def _fallback_uris(cls, value: list[str]) -> list[str]:
        for item in value:
            SourceRef.parse(item)
        return value

    @property
    def source(self) -> SourceRef:
        return SourceRef.parse(self.from_)

    @property
    def sources(self) -> list[SourceRef]:
        """The primary source then each fallback, in order."""
        return [SourceRef.parse(u) for u in (self.from_, *self.fallback)]

    @property
    def file_name(self) -> str | None:
        """Where it lands under the output folder; None when it goes to env only."""
        return landing_file(self.name, self.file, self.env)

    @property
    def file_mode(self) -> int:
        return int(self.mode, 8)


class ServiceSpec(_Model):
    name: DnsLabel
    namespace: DnsLabel | None = None
    service_account: DnsSubdomain | None = None
    identity: Identity = Identity.WORKLOAD_IDENTITY
    managed_identity: str | None = Field(
        default=None,
        description="User-assigned identity name; services naming the same one share it",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$",
    )
    delivery: Delivery = Delivery.INIT_CONTAINER
    vault_auth: VaultAuthMethod = VaultAuthMethod.KUBERNETES
    key_vault_scope: Literal["vault", "secret"] = "vault"
    fallback_on_denied: bool = False
    secrets: list[SecretSpec] = Field(default_factory=list)

    def resolved_namespace(self, spec: Spec) -> str:
        return self.namespace or spec.kubernetes.namespace

    @property
    def service_account_name(self) -> str:
        return self.service_account or self.name

    @property
    def identity_name(self) -> str:
        return self.managed_identity or f"id-{self.name}"


class Metadata(_Model):
    name: DnsSubdomain = "secretsboot"
    labels: dict[str, str] = Field(default_factory=dict)


class Spec(_Model):
    api_version: Literal["secretsboot/v1"]
    kind: Literal["SecretsbootSpec"]
    metadata: Metadata = Field(default_factory=Metadata)
    azure: AzureSpec | None = None
    vault: VaultSpec | None = None
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec)
    services: list[ServiceSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _cross_references(self) -> Spec:
        from secretsboot.spec._checks import FieldErrors, cross_reference_errors

        entries = [(i, s, None, False) for i, s in enumerate(self.services)]
        errors = cross_reference_errors(self.azure, self.vault, self.kubernetes, entries)
        if errors:
            raise FieldErrors(errors)
        return self

    def service(self, name: str) -> ServiceSpec:
        for svc in self.services:
            if svc.name == name:
                return svc
        raise SpecError(
            f"no service named '{name}'",
            hint=_suggest(name, [s.name for s in self.services]),
        )


def _suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else "see `services`"


def load_spec_text(text: str, file: str = "<spec>") -> Spec:
    """Parse and validate spec text. Raises :class:`SpecErrors` (a ``SpecError``) only."""
    try:
        data, lines = _yaml.load_with_lines(text)
    except _yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecErrors(
            [
                SpecError(
                    f"invalid YAML: {problem}", file=file, line=line, hint="fix the YAML syntax"
                )
            ]
        ) from None
    except (RecursionError, ValueError, TypeError) as exc:
        raise SpecErrors(
            [SpecError(f"invalid YAML: {exc}", file=file, hint="fix the YAML syntax")]
        ) from None
    if not isinstance(data, dict):
        raise SpecErrors(
            [
                SpecError(
                    "the spec must be a YAML mapping",
                    file=file,
                    line=1,
                    hint=f"start with apiVersion: {API_VERSION}",
                )
            ]
        )
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise SpecErrors(
            [
                SpecError(
                    f"non-text key {bad_keys[0]!r}", file=file, line=1, hint="keys are field names"
                )
            ]
        )
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        from secretsboot.spec._errors import collect

        raise collect(exc, data, file, lines) from None
    except (RecursionError, TypeError) as exc:  # pathological input
        raise SpecErrors(
            [
                SpecError(
                    f"cannot read the spec: {type(exc).__name__}",
                    file=file,
                    hint="simplify the document",
                )
            ]
        ) from None


def load_spec(path: str | Path) -> Spec:
    """Read and validate a spec file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            "no such file", file=str(p), hint="pass the path of secretsboot.yaml"
        ) from None
    except UnicodeDecodeError:
        raise SpecError("not UTF-8 text", file=str(p), hint="save the spec as UTF-8") from None
    except OSError as exc:
        raise SpecError(
            f"cannot read: {exc.strerror}", file=str(p), hint="check the path"
        ) from None
    return load_spec_text(text, str(p))


def json_schema() -> dict[str, Any]:
    """The spec's JSON Schema (for editors: yaml-language-server, VS Code)."""
    schema = Spec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://secretsboot.dev/schema/secretsboot-v1.json"
    schema["title"] = "secretsboot spec (secretsboot/v1)"
    return schema
