"""The FetchConfig: what one pod fetches, from where, as whom (see the fetch-config contract).

``provision`` writes it into the ConfigMap ``secretsboot-<service>`` (key
``fetch.yaml``); the init container reads it with :meth:`FetchConfig.load`, or
builds it from environment variables alone with :meth:`FetchConfig.from_env` so
a manifest needs no file::

    apiVersion: secretsboot/v1
    kind: FetchConfig
    service: delivery
    namespace: backend-dev
    serviceAccount: delivery
    identity: workload-identity        # workload-identity | pod-identity | service-principal | none
    fallbackOnDenied: false
    azure: {tenantId: ..., authorityHost: ..., clientId: ..., keyVaults: {NAME: URL}}
    vault:
      address: https://vault:8200
      caCert: /etc/secretsboot/vault-ca.pem
      kvVersion: 2
      auth: {method: kubernetes, mount: kubernetes, role: delivery}
    secrets:
      - {name: cosmosdb-key, from: "keyvault://kv-dd-delivery/delivery-cosmosdb-key"}
    output: {dotenv: null, json: null}

Standard library only (plus PyYAML, imported when a YAML file is read): the init
container must not pay for pydantic.

>>> cfg = FetchConfig.from_env({"SECRETSBOOT_SECRETS": "db=k8s://orders-db#password"})
>>> [(s.name, str(s.sources[0])) for s in cfg.secrets]
[('db', 'k8s://orders-db#password')]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from secretsboot.errors import BadInputError
from secretsboot.refs import Ref, derived_env_name, landing_file, safe_file_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NamedTuple

    from secretsboot.spec import Spec
else:
    from secretsboot._records import NamedTuple

API_VERSION = "secretsboot/v1"
KIND = "FetchConfig"
IDENTITIES = ("workload-identity", "pod-identity", "service-principal", "none")
VAULT_AUTH_METHODS = ("kubernetes", "jwt", "azure")
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
#: The audience of a workload-identity token (what Entra's token exchange accepts).
WORKLOAD_IDENTITY_AUDIENCE = "api://AzureADTokenExchange"
#: The service-account annotations the workload-identity webhook turns into AZURE_* variables.
WI_CLIENT_ID_ANNOTATION = "azure.workload.identity/client-id"
WI_TENANT_ID_ANNOTATION = "azure.workload.identity/tenant-id"
#: The built-in Azure role "Key Vault Secrets User" (reads secret values), by its fixed id.
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
SERVICEACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: Where inject projects the service-account token with Vault's jwt audience.
VAULT_JWT_TOKEN_PATH = SERVICEACCOUNT_DIR + "/vault-token"


class SecretEntry(NamedTuple):
    """One secret: its sources in order (primary then fallbacks) and where it lands."""

    name: str
    sources: tuple[Ref, ...]
    file: str | None = None
    mode: int = 0o400
    env: str | None = None

    @property
    def file_name(self) -> str | None:
        """The file under the output folder; None when the secret goes to env only."""
        return landing_file(self.name, self.file, self.env)

    @property
    def env_var(self) -> str:
        """The variable ``run`` sets: ``env``, else the name upper-cased with '_' for '-'/'.'."""
        return self.env or derived_env_name(self.name)


class AzureConfig(NamedTuple):
    tenant_id: str | None = None
    authority_host: str = DEFAULT_AUTHORITY
    client_id: str | None = None
    key_vaults: Mapping[str, str] = {}
    ca_cert: str | None = None

    def vault_url(self, name: str) -> str:
        """The data-plane URL of vault ``name`` (Key Vault names are case-insensitive)."""
        lowered = {k.lower(): v for k, v in self.key_vaults.items()}
        return lowered.get(name.lower()) or f"https://{name.lower()}.vault.azure.net"


class VaultAuthConfig(NamedTuple):
    """How the pod logs in to Vault.

    ``kubernetes`` and ``jwt`` send a service-account token (``tokenPath``, default the
    pod's own); ``jwt`` with ``jwtSource: entra`` sends an Entra ID token of the pod's
    Azure identity instead; ``azure`` (HashiCorp Vault only) sends a managed-identity
    token for ``resource``.
    """

    method: str = "kubernetes"
    mount: str | None = None
    role: str | None = None
    token_path: str | None = None
    jwt_source: str = "serviceaccount"
    scope: str | None = None
    resource: str = "https://management.azure.com/"
    subscription_id: str | None = None
    resource_group: str | None = None
    vm_name: str | None = None
    vmss_name: str | None = None
    resource_id: str | None = None

    @property
    def mount_path(self) -> str:
        return (self.mount or self.method).strip("/")


class VaultConfig(NamedTuple):
    address: str
    ca_cert: str | None = None
    kv_version: int = 2
    namespace: str | None = None
    auth: VaultAuthConfig = VaultAuthConfig()


class FetchConfig(NamedTuple):
    """Everything ``secretsboot fetch`` needs. Build with :meth:`load`, :meth:`from_env`
    or :meth:`from_spec`; immutable."""

    secrets: tuple[SecretEntry, ...]
    service: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    identity: str = "workload-identity"
    fallback_on_denied: bool = False
    azure: AzureConfig | None = None
    vault: VaultConfig | None = None
    dotenv: str | None = None
    json: str | None = None
    source: str = "<config>"
    #: secrets whose file mode may let every user read it (``allowWorldReadable``)
    allow_world_readable: tuple[str, ...] = ()

    # ---- construction -------------------------------------------------------------

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> FetchConfig:
        """Read a YAML or JSON FetchConfig file, then fill gaps from ``env`` (AZURE_*, VAULT_*).

        A file that starts with ``{`` is read as JSON without loading PyYAML.
        """
        from secretsboot.contract import _reader  # needs the types above

        where = str(path)
        try:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        except FileNotFoundError:
            raise BadInputError(
                f"{where}: no such config file",
                hint="pass --config with the path of fetch.yaml (or set SECRETSBOOT_SECRETS)",
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise BadInputError(f"{where}: cannot read the config ({exc})") from None
        data = _reader.parse_text(text, where)
        return cls.from_dict(data, where, os.environ if env is None else env)

    @classmethod
    def from_dict(
        cls, data: Any, source: str = "<config>", env: Mapping[str, str] | None = None
    ) -> FetchConfig:
        """Validate a parsed document; ``BadInputError`` names the field and the fix."""
        from secretsboot.contract import _reader  # needs the types above

        return _reader.Reader(source).config(data, {} if env is None else env)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchConfig:
        """Build the config from environment variables alone.

        ``SECRETSBOOT_SECRETS="name=uri[|fallback...];..."`` lists the secrets;
        ``SECRETSBOOT_IDENTITY``, ``SECRETSBOOT_NAMESPACE``, ``SECRETSBOOT_VAULT_AUTH``,
        ``SECRETSBOOT_VAULT_ROLE``, ``SECRETSBOOT_KEYVAULT_<NAME>=url`` and the usual
        ``AZURE_*`` / ``VAULT_*`` variables fill the rest.
        """
        from secretsboot.contract import _reader  # needs the types above

        env = os.environ if env is None else env
        raw = env.get("SECRETSBOOT_SECRETS", "").strip()
        if not raw:
            raise BadInputError(
                "no secrets configured",
                hint="pass --config FILE, or set SECRETSBOOT_CONFIG or SECRETSBOOT_SECRETS "
                "('name=uri[|fallback];...')",
            )
        items: list[dict[str, Any]] = []
        for i, part in enumerate(p for p in raw.split(";") if p.strip()):
            name, eq, uris = part.strip().partition("=")
            if not eq or not name or not uris:
                raise BadInputError(
                    f"SECRETSBOOT_SECRETS item {i + 1}: expected name=uri[|fallback...]"
                )
            sources = [u.strip() for u in uris.split("|")]
            items.append({"name": name.strip(), "from": sources[0], "fallback": sources[1:]})
        identity = env.get("SECRETSBOOT_IDENTITY") or _reader.guess_identity(env)
        data: dict[str, Any] = {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "identity": identity,
            "secrets": items,
            "fallbackOnDenied": env.get("SECRETSBOOT_FALLBACK_ON_DENIED", "").lower()
            in {"1", "true", "yes"},
        }
        if env.get("SECRETSBOOT_NAMESPACE"):
            data["namespace"] = env["SECRETSBOOT_NAMESPACE"]
        return _reader.Reader("environment").config(data, env)

    @classmethod
    def from_spec(cls, spec: Spec, service: str) -> FetchConfig:
        """The config of one service of a validated spec (what ``provision`` writes)."""
        svc = spec.service(service)
        uses = {ref.scheme for s in svc.secrets for ref in s.sources}
        azure = None
        if spec.azure is not None and ("keyvault" in uses or svc.vault_auth.value == "azure"):
            stores = {r.store for s in svc.secrets for r in s.sources if r.scheme == "keyvault"}
            azure = AzureConfig(
                tenant_id=spec.azure.tenant_id,
                authority_host=spec.azure.authority_host,
                key_vaults={
                    kv.name: kv.vault_url for kv in spec.azure.key_vaults if kv.name in stores
                },
            )
        vault = None
        if spec.vault is not None and "vault" in uses:
            method = svc.vault_auth.value
            auth_spec = getattr(spec.vault.auth, method)
            vault = VaultConfig(
                address=spec.vault.address,
                ca_cert=spec.vault.ca_cert,
                kv_version=spec.vault.kv_version,
                namespace=spec.vault.namespace,
                auth=VaultAuthConfig(
                    method=method,
                    mount=auth_spec.mount if auth_spec is not None else method,
                    role=svc.name,
                    # jwt: the projected token with Vault's audience that inject mounts
                    token_path=VAULT_JWT_TOKEN_PATH if method == "jwt" else None,
                    # azure: the token's audience must be the resource the mount's config
                    # names, verbatim (Vault compares it as a string)
                    **(
                        {"resource": auth_spec.resource}
                        if method == "azure" and auth_spec is not None
                        else {}
                    ),
                ),
            )
        secrets = tuple(
            SecretEntry(
                name=s.name,
                sources=tuple(Ref.parse(u) for u in (s.from_, *s.fallback)),
                file=s.file,
                mode=s.file_mode,
                env=s.env,
            )
            for s in svc.secrets
        )
        return cls(
            secrets=secrets,
            service=svc.name,
            namespace=svc.resolved_namespace(spec),
            service_account=svc.service_account_name,
            identity=svc.identity.value,
            fallback_on_denied=svc.fallback_on_denied,
            azure=azure,
            vault=vault,
            source=f"spec service '{service}'",
        )

    # ---- output ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = _some(
            ("apiVersion", API_VERSION), ("kind", KIND), ("service", self.service),
            ("namespace", self.namespace), ("serviceAccount", self.service_account),
            ("identity", self.identity), ("fallbackOnDenied", self.fallback_on_denied),
        )  # fmt: skip
        if (az := self.azure) is not None:
            out["azure"] = {"tenantId": az.tenant_id, "authorityHost": az.authority_host}
            out["azure"].update(_some(("clientId", az.client_id), ("caCert", az.ca_cert)))
            out["azure"]["keyVaults"] = dict(az.key_vaults)
        if self.vault is not None:
            a = self.vault.auth
            auth = _some(
                ("method", a.method), ("mount", a.mount_path), ("role", a.role),
                ("tokenPath", a.token_path), ("scope", a.scope),
                ("subscriptionId", a.subscription_id), ("resourceGroup", a.resource_group),
                ("vmName", a.vm_name), ("vmssName", a.vmss_name), ("resourceId", a.resource_id),
                ("jwtSource", a.jwt_source if a.jwt_source != "serviceaccount" else None),
                ("resource", a.resource if a.method == "azure" else None),
            )  # fmt: skip
            out["vault"] = _some(
                ("address", self.vault.address), ("caCert", self.vault.ca_cert),
                ("namespace", self.vault.namespace), ("kvVersion", self.vault.kv_version),
                ("auth", auth),
            )  # fmt: skip
        out["secrets"] = [_secret_dict(s) for s in self.secrets]
        if self.allow_world_readable:
            out["allowWorldReadable"] = list(self.allow_world_readable)
        out["output"] = {"dotenv": self.dotenv, "json": self.json}
        return out

    def to_yaml(self) -> str:
        """The config for the ConfigMap ``secretsboot-<service>`` (key ``fetch.yaml``).

        Written in YAML's JSON subset (indented, one field a line): every YAML parser
        reads it, and the init container reads it with :mod:`json` alone, without
        loading PyYAML (~15 ms of a fetch that should take a few tens). Hand-written
        YAML configs are read too.
        """
        return json.dumps(self.to_dict(), indent=2) + "\n"

    def with_output(
        self, *, dotenv: str | None = None, json_file: str | None = None
    ) -> FetchConfig:
        """A copy whose dotenv / JSON bundle names are overridden where given."""
        return self._replace(
            dotenv=self.dotenv if dotenv is None else _file_name(dotenv, "--dotenv"),
            json=self.json if json_file is None else _file_name(json_file, "--json"),
        )

    @property
    def schemes(self) -> set[str]:
        return {ref.scheme for s in self.secrets for ref in s.sources}


def resolve_config(path: str | None, env: Mapping[str, str] | None = None) -> FetchConfig:
    """``--config PATH``, else ``$SECRETSBOOT_CONFIG``, else the environment alone."""
    env = os.environ if env is None else env
    path = path or env.get("SECRETSBOOT_CONFIG") or None
    if path:
        return FetchConfig.load(path, env)
    return FetchConfig.from_env(env)


def _secret_dict(s: SecretEntry) -> dict[str, Any]:
    fallback = [str(r) for r in s.sources[1:]] or None
    return _some(
        ("name", s.name), ("from", str(s.sources[0])), ("fallback", fallback), ("file", s.file),
        ("mode", f"0{s.mode:o}"), ("env", s.env),
    )  # fmt: skip


def _some(*pairs: tuple[str, Any]) -> dict[str, Any]:
    """The pairs whose value is set (not None, not empty text), in order."""
    return {k: v for k, v in pairs if v is not None and v != ""}


def _file_name(value: str, what: str) -> str:
    try:
        return safe_file_name(value)
    except ValueError as exc:
        raise BadInputError(f"{what}: {exc}", hint="name a file inside the output folder") from None
