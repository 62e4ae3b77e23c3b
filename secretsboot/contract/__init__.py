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
import re
from collections.abc import Mapping

from secretsboot.errors import BadInputError
from secretsboot.refs import Ref, env_name, file_mode, safe_file_name

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
        if self.file:
            return self.file
        return None if self.env else self.name

    @property
    def env_var(self) -> str:
        """The variable ``run`` sets: ``env``, else the name upper-cased with '_' for '-'/'.'."""
        return self.env or re.sub(r"[^A-Za-z0-9_]", "_", self.name).upper()


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

    # ---- construction -------------------------------------------------------------

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], env: Mapping[str, str] | None = None
    ) -> FetchConfig:
        """Read a YAML or JSON FetchConfig file, then fill gaps from ``env`` (AZURE_*, VAULT_*).

        A file that starts with ``{`` is read as JSON without loading PyYAML.
        """
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
        data = _parse_text(text, where)
        return cls.from_dict(data, where, os.environ if env is None else env)

    @classmethod
    def from_dict(
        cls, data: Any, source: str = "<config>", env: Mapping[str, str] | None = None
    ) -> FetchConfig:
        """Validate a parsed document; ``BadInputError`` names the field and the fix."""
        return _Reader(source).config(data, {} if env is None else env)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FetchConfig:
        """Build the config from environment variables alone.

        ``SECRETSBOOT_SECRETS="name=uri[|fallback...];..."`` lists the secrets;
        ``SECRETSBOOT_IDENTITY``, ``SECRETSBOOT_NAMESPACE``, ``SECRETSBOOT_VAULT_AUTH``,
        ``SECRETSBOOT_VAULT_ROLE``, ``SECRETSBOOT_KEYVAULT_<NAME>=url`` and the usual
        ``AZURE_*`` / ``VAULT_*`` variables fill the rest.
        """
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
        identity = env.get("SECRETSBOOT_IDENTITY") or _guess_identity(env)
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
        return _Reader("environment").config(data, env)

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
        out: dict[str, Any] = {"apiVersion": API_VERSION, "kind": KIND}
        for key, value in (
            ("service", self.service),
            ("namespace", self.namespace),
            ("serviceAccount", self.service_account),
        ):
            if value is not None:
                out[key] = value
        out["identity"] = self.identity
        out["fallbackOnDenied"] = self.fallback_on_denied
        if self.azure is not None:
            az: dict[str, Any] = {
                "tenantId": self.azure.tenant_id,
                "authorityHost": self.azure.authority_host,
            }
            if self.azure.client_id:
                az["clientId"] = self.azure.client_id
            if self.azure.ca_cert:
                az["caCert"] = self.azure.ca_cert
            az["keyVaults"] = dict(self.azure.key_vaults)
            out["azure"] = az
        if self.vault is not None:
            auth = self.vault.auth
            auth_d: dict[str, Any] = {"method": auth.method, "mount": auth.mount_path}
            for key, value in (
                ("role", auth.role),
                ("tokenPath", auth.token_path),
                ("scope", auth.scope),
                ("subscriptionId", auth.subscription_id),
                ("resourceGroup", auth.resource_group),
                ("vmName", auth.vm_name),
                ("vmssName", auth.vmss_name),
                ("resourceId", auth.resource_id),
            ):
                if value is not None:
                    auth_d[key] = value
            if auth.jwt_source != "serviceaccount":
                auth_d["jwtSource"] = auth.jwt_source
            if auth.method == "azure":
                auth_d["resource"] = auth.resource
            v: dict[str, Any] = {"address": self.vault.address}
            if self.vault.ca_cert:
                v["caCert"] = self.vault.ca_cert
            if self.vault.namespace:
                v["namespace"] = self.vault.namespace
            v["kvVersion"] = self.vault.kv_version
            v["auth"] = auth_d
            out["vault"] = v
        secrets = []
        for s in self.secrets:
            item: dict[str, Any] = {"name": s.name, "from": str(s.sources[0])}
            if len(s.sources) > 1:
                item["fallback"] = [str(r) for r in s.sources[1:]]
            if s.file:
                item["file"] = s.file
            item["mode"] = f"0{s.mode:o}"
            if s.env:
                item["env"] = s.env
            secrets.append(item)
        out["secrets"] = secrets
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


def _file_name(value: str, what: str) -> str:
    try:
        return safe_file_name(value)
    except ValueError as exc:
        raise BadInputError(f"{what}: {exc}", hint="name a file inside the output folder") from None


def _guess_identity(env: Mapping[str, str]) -> str:
    if env.get("AZURE_CLIENT_SECRET"):
        return "service-principal"
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return "workload-identity"
    if env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        return "pod-identity"
    return "none"


def _parse_text(text: str, where: str) -> Any:
    if text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BadInputError(f"{where}: invalid JSON: {exc}", hint="fix the syntax") from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "syntax error"
        raise BadInputError(
            f"{where}{line}: invalid YAML: {problem}", hint="fix the syntax"
        ) from None


class _Reader:
    """Validates a parsed FetchConfig document, naming ``FILE FIELD`` in every error."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field_: str, message: str, hint: str | None = None) -> BadInputError:
        return BadInputError(f"{self.source} {field_}: {message}", hint=hint)

    def mapping(self, value: Any, field_: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(field_, "must be a mapping")
        return value

    def text(self, data: Mapping[str, Any], key: str, where: str) -> str | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise self.fail(f"{where}{key}", "must be text")
        return str(value)

    def known(self, data: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key not in allowed:
                raise self.fail(
                    f"{where}{key}", "unknown field", f"known fields: {', '.join(sorted(allowed))}"
                )

    def config(self, raw: Any, env: Mapping[str, str]) -> FetchConfig:
        data = self.mapping(raw, "(document)")
        self.known(
            data,
            {
                "apiVersion", "kind", "service", "namespace", "serviceAccount", "identity",
                "fallbackOnDenied", "azure", "vault", "secrets", "output",
            },
            "",
        )  # fmt: skip
        if data.get("apiVersion", API_VERSION) != API_VERSION:
            raise self.fail("apiVersion", "unsupported", f"set apiVersion: {API_VERSION}")
        if data.get("kind", KIND) != KIND:
            raise self.fail("kind", f"expected {KIND}", f"set kind: {KIND}")
        identity = self.text(data, "identity", "") or "workload-identity"
        if identity not in IDENTITIES:
            raise self.fail("identity", f"unknown identity '{identity}'", "; ".join(IDENTITIES))
        if env.get("AZURE_CLIENT_SECRET") and identity != "none":
            identity = "service-principal"
        fod = data.get("fallbackOnDenied", False)
        if not isinstance(fod, bool):
            raise self.fail("fallbackOnDenied", "must be true or false")
        secrets = self.secrets(data.get("secrets"))
        schemes = {r.scheme for s in secrets for r in s.sources}
        vault = self.vault(data.get("vault"), env, "vault" in schemes)
        needs_azure = "keyvault" in schemes or (vault is not None and vault.auth.method == "azure")
        needs_azure = needs_azure or (vault is not None and vault.auth.jwt_source == "entra")
        azure = self.azure(data.get("azure"), env, needs_azure)
        if needs_azure and identity == "none":
            raise self.fail(
                "identity", "keyvault:// sources need an Azure identity",
                "set identity: workload-identity, pod-identity or service-principal",
            )  # fmt: skip
        output = self.mapping(data.get("output"), "output")
        self.known(output, {"dotenv", "json"}, "output.")
        dotenv = self.text(output, "dotenv", "output.")
        json_file = self.text(output, "json", "output.")
        for key, value in (("output.dotenv", dotenv), ("output.json", json_file)):
            if value is not None:
                try:
                    safe_file_name(value)
                except ValueError as exc:
                    raise self.fail(key, str(exc)) from None
        namespace = self.text(data, "namespace", "") or env.get("SECRETSBOOT_NAMESPACE")
        return FetchConfig(
            secrets=secrets,
            service=self.text(data, "service", ""),
            namespace=namespace,
            service_account=self.text(data, "serviceAccount", ""),
            identity=identity,
            fallback_on_denied=fod,
            azure=azure,
            vault=vault,
            dotenv=dotenv,
            json=json_file,
            source=self.source,
        )

    def secrets(self, raw: Any) -> tuple[SecretEntry, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("secrets", "must be a non-empty list", "list the secrets to fetch")
        out: list[SecretEntry] = []
        names: set[str] = set()
        files: set[str] = set()
        envs: set[str] = set()
        for i, item in enumerate(raw):
            where = f"secrets[{i}]."
            data = self.mapping(item, f"secrets[{i}]")
            self.known(data, {"name", "from", "fallback", "file", "mode", "env"}, where)
            name = self.text(data, "name", where)
            uri = self.text(data, "from", where)
            if not name or not uri:
                raise self.fail(f"{where}{'name' if not name else 'from'}", "is required")
            fallback = data.get("fallback") or []
            if not isinstance(fallback, list):
                raise self.fail(f"{where}fallback", "must be a list of source URIs")
            try:
                safe_file_name(name)
            except ValueError as exc:
                raise self.fail(f"{where}name", str(exc)) from None
            refs = []
            for j, u in enumerate([uri, *fallback]):
                key = "from" if j == 0 else f"fallback[{j - 1}]"
                try:
                    refs.append(Ref.parse(u))
                except ValueError as exc:
                    raise self.fail(f"{where}{key}", str(exc)) from None
            file = self.text(data, "file", where)
            env_var = self.text(data, "env", where)
            try:
                if file is not None:
                    safe_file_name(file)
                if env_var is not None:
                    env_name(env_var)
                mode = file_mode(self.text(data, "mode", where) or "0400")
            except ValueError as exc:
                raise self.fail(f"{where}{'file' if file else 'mode'}", str(exc)) from None
            entry = SecretEntry(name, tuple(refs), file, mode, env_var)
            if name in names:
                raise self.fail(f"{where}name", f"duplicate secret '{name}'")
            if entry.file_name and entry.file_name in files:
                raise self.fail(f"{where}file", f"two secrets write '{entry.file_name}'")
            if env_var and env_var in envs:
                raise self.fail(f"{where}env", f"two secrets set ${env_var}")
            names.add(name)
            files.add(entry.file_name or "")
            envs.add(env_var or "")
            out.append(entry)
        return tuple(out)

    def azure(self, raw: Any, env: Mapping[str, str], needed: bool) -> AzureConfig | None:
        data = self.mapping(raw, "azure")
        if not data and not needed:
            return None
        self.known(data, {"tenantId", "authorityHost", "clientId", "keyVaults", "caCert"}, "azure.")
        vaults = self.mapping(data.get("keyVaults"), "azure.keyVaults")
        urls = {str(k): str(v) for k, v in vaults.items()}
        prefix = "SECRETSBOOT_KEYVAULT_"
        for key, value in env.items():
            if key.startswith(prefix) and value:
                urls.setdefault(key[len(prefix) :].lower().replace("_", "-"), value)
        for name, url in urls.items():
            if not url.startswith("https://"):
                raise self.fail(
                    f"azure.keyVaults.{name}", "must be an https:// URL",
                    "Key Vault refuses bearer tokens over plain http",
                )  # fmt: skip
        return AzureConfig(
            tenant_id=self.text(data, "tenantId", "azure.") or env.get("AZURE_TENANT_ID"),
            authority_host=(
                self.text(data, "authorityHost", "azure.")
                or env.get("AZURE_AUTHORITY_HOST")
                or DEFAULT_AUTHORITY
            ).rstrip("/"),
            client_id=self.text(data, "clientId", "azure.") or env.get("AZURE_CLIENT_ID"),
            key_vaults=urls,
            ca_cert=self.text(data, "caCert", "azure."),
        )

    def vault(self, raw: Any, env: Mapping[str, str], needed: bool) -> VaultConfig | None:
        data = self.mapping(raw, "vault")
        if not data and not needed:
            return None
        self.known(data, {"address", "caCert", "kvVersion", "namespace", "auth"}, "vault.")
        address = self.text(data, "address", "vault.") or env.get("VAULT_ADDR")
        if not address or not re.match(r"^https?://", address):
            raise self.fail(
                "vault.address", "missing or not an http(s) URL",
                "set vault.address or VAULT_ADDR, e.g. https://vault.example:8200",
            )  # fmt: skip
        kv = data.get("kvVersion", 2)
        if kv not in (1, 2, "1", "2"):
            raise self.fail("vault.kvVersion", "must be 1 or 2")
        a = self.mapping(data.get("auth"), "vault.auth")
        self.known(
            a,
            {
                "method", "mount", "role", "tokenPath", "jwtSource", "scope", "resource",
                "subscriptionId", "resourceGroup", "vmName", "vmssName", "resourceId",
            },
            "vault.auth.",
        )  # fmt: skip
        method = (
            self.text(a, "method", "vault.auth.")
            or env.get("SECRETSBOOT_VAULT_AUTH")
            or "kubernetes"
        )
        if method not in VAULT_AUTH_METHODS:
            raise self.fail(
                "vault.auth.method", f"unknown method '{method}'", ", ".join(VAULT_AUTH_METHODS)
            )
        role = self.text(a, "role", "vault.auth.") or env.get("SECRETSBOOT_VAULT_ROLE")
        if not role:
            raise self.fail(
                "vault.auth.role", "is required", "set vault.auth.role or SECRETSBOOT_VAULT_ROLE"
            )
        jwt_source = self.text(a, "jwtSource", "vault.auth.") or "serviceaccount"
        if jwt_source not in ("serviceaccount", "entra"):
            raise self.fail("vault.auth.jwtSource", "must be serviceaccount or entra")
        auth = VaultAuthConfig(
            method=method,
            mount=self.text(a, "mount", "vault.auth.") or env.get("SECRETSBOOT_VAULT_MOUNT"),
            role=role,
            token_path=self.text(a, "tokenPath", "vault.auth.")
            or env.get("SECRETSBOOT_VAULT_TOKEN_FILE"),
            jwt_source=jwt_source,
            scope=self.text(a, "scope", "vault.auth."),
            resource=self.text(a, "resource", "vault.auth.") or "https://management.azure.com/",
            subscription_id=self.text(a, "subscriptionId", "vault.auth."),
            resource_group=self.text(a, "resourceGroup", "vault.auth."),
            vm_name=self.text(a, "vmName", "vault.auth."),
            vmss_name=self.text(a, "vmssName", "vault.auth."),
            resource_id=self.text(a, "resourceId", "vault.auth."),
        )
        return VaultConfig(
            address=address.rstrip("/"),
            ca_cert=self.text(data, "caCert", "vault.") or env.get("VAULT_CACERT"),
            kv_version=int(kv),
            namespace=self.text(data, "namespace", "vault.") or env.get("VAULT_NAMESPACE"),
            auth=auth,
        )
