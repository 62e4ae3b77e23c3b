"""Reading a FetchConfig document: parse YAML/JSON, check every field, name the fix.

Every error is a :class:`~secretsboot.errors.BadInputError` (exit 2) that names
``FILE FIELD`` and what to do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from secretsboot.contract import (
    API_VERSION,
    DEFAULT_AUTHORITY,
    IDENTITIES,
    KIND,
    VAULT_AUTH_METHODS,
    AzureConfig,
    FetchConfig,
    SecretEntry,
    VaultAuthConfig,
    VaultConfig,
)
from secretsboot.errors import BadInputError
from secretsboot.refs import Ref, derived_env_name, env_name, file_mode, safe_file_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def guess_identity(env: Mapping[str, str]) -> str:
    if env.get("AZURE_CLIENT_SECRET"):
        return "service-principal"
    if env.get("AZURE_FEDERATED_TOKEN_FILE"):
        return "workload-identity"
    if env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST"):
        return "pod-identity"
    return "none"


def parse_text(text: str, where: str) -> Any:
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


class Reader:
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
                "fallbackOnDenied", "azure", "vault", "secrets", "output", "allowWorldReadable",
            },
            "",
        )  # fmt: skip
        if data.get("apiVersion", API_VERSION) != API_VERSION:
            raise self.fail("apiVersion", "unsupported", f"set apiVersion: {API_VERSION}")
        if data.get("kind", KIND) != KIND:
            raise self.fail("kind", f"expected {KIND}", f"set kind: {KIND}")
        identity = self.identity(data, env)
        fod = data.get("fallbackOnDenied", False)
        if not isinstance(fod, bool):
            raise self.fail("fallbackOnDenied", "must be true or false")
        open_names = self.world_readable(data)
        secrets = self.secrets(data.get("secrets"), frozenset(open_names))
        unknown = sorted(set(open_names) - {s.name for s in secrets})
        if unknown:
            raise self.fail(
                "allowWorldReadable", f"names no secret: {', '.join(unknown)}",
                "list names of the secrets section",
            )  # fmt: skip
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
        dotenv, json_file = self.output(data)
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
            allow_world_readable=tuple(open_names),
        )

    def identity(self, data: Mapping[str, Any], env: Mapping[str, str]) -> str:
        identity = self.text(data, "identity", "") or "workload-identity"
        if identity not in IDENTITIES:
            raise self.fail("identity", f"unknown identity '{identity}'", "; ".join(IDENTITIES))
        if env.get("AZURE_CLIENT_SECRET") and identity != "none":
            identity = "service-principal"
        return identity

    def world_readable(self, data: Mapping[str, Any]) -> list[str]:
        names = data.get("allowWorldReadable") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise self.fail("allowWorldReadable", "must be a list of secret names")
        return names

    def output(self, data: Mapping[str, Any]) -> tuple[str | None, str | None]:
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
        return dotenv, json_file

    def secrets(self, raw: Any, world_readable: frozenset[str]) -> tuple[SecretEntry, ...]:
        if not isinstance(raw, list) or not raw:
            raise self.fail("secrets", "must be a non-empty list", "list the secrets to fetch")
        out: list[SecretEntry] = []
        files: dict[str, str] = {}
        envs: dict[str, str] = {}
        for i, item in enumerate(raw):
            entry = self.secret(item, f"secrets[{i}].", world_readable)
            where = f"secrets[{i}]."
            if any(e.name == entry.name for e in out):
                raise self.fail(f"{where}name", f"duplicate secret '{entry.name}'")
            if entry.file_name and entry.file_name in files:
                raise self.fail(
                    f"{where}file", f"'{entry.name}' and '{files[entry.file_name]}' both write "
                    f"'{entry.file_name}'", "set file: to another name for one of them",
                )  # fmt: skip
            if entry.env_var in envs:
                raise self.fail(
                    f"{where}{'env' if entry.env else 'name'}",
                    f"'{entry.name}' and '{envs[entry.env_var]}' both set ${entry.env_var}",
                    "set env: to another name for one of them",
                )
            if entry.file_name:
                files[entry.file_name] = entry.name
            envs[entry.env_var] = entry.name
            out.append(entry)
        return tuple(out)

    def secret(self, item: Any, where: str, world_readable: frozenset[str]) -> SecretEntry:
        data = self.mapping(item, where.rstrip("."))
        self.known(data, {"name", "from", "fallback", "file", "mode", "env"}, where)
        name = self.text(data, "name", where)
        uri = self.text(data, "from", where)
        if not name or not uri:
            raise self.fail(f"{where}{'name' if not name else 'from'}", "is required")
        fallback = data.get("fallback") or []
        if not isinstance(fallback, list):
            raise self.fail(f"{where}fallback", "must be a list of source URIs")
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
            safe_file_name(name)
            if file is not None:
                safe_file_name(file)
        except ValueError as exc:
            raise self.fail(f"{where}{'file' if file else 'name'}", str(exc)) from None
        try:
            env_name(env_var or derived_env_name(name))
        except ValueError as exc:
            if env_var:
                raise self.fail(f"{where}env", str(exc)) from None
            raise self.fail(
                f"{where}name", f"'{name}' sets ${derived_env_name(name)} in `run`: {exc}"
            ) from None
        try:
            mode = file_mode(data.get("mode", "0400"), world_readable=name in world_readable)
        except ValueError as exc:
            raise self.fail(f"{where}mode", str(exc)) from None
        return SecretEntry(name, tuple(refs), file, mode, env_var)

    def azure(self, raw: Any, env: Mapping[str, str], needed: bool) -> AzureConfig | None:
        data = self.mapping(raw, "azure")
        if not data and not needed:
            return None
        self.known(data, {"tenantId", "authorityHost", "clientId", "keyVaults", "caCert"}, "azure.")
        vaults = self.mapping(data.get("keyVaults"), "azure.keyVaults")
        urls = {str(k): str(v) for k, v in vaults.items()}
        prefix = "SECRETSBOOT_KEYVAULT_"
        for key, value in env.items():  # an operator's per-vault override wins over the file
            if key.startswith(prefix) and value:
                urls[key[len(prefix) :].lower().replace("_", "-")] = value
        for name, url in urls.items():
            if not url.startswith("https://"):
                raise self.fail(
                    f"azure.keyVaults.{name}", "must be an https:// URL",
                    "Key Vault refuses bearer tokens over plain http",
                )  # fmt: skip
        return AzureConfig(
            tenant_id=self.text(data, "tenantId", "azure.") or env.get("AZURE_TENANT_ID"),
            authority_host=(  # the workload-identity webhook's AZURE_AUTHORITY_HOST wins
                env.get("AZURE_AUTHORITY_HOST")
                or self.text(data, "authorityHost", "azure.")
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
        # VAULT_ADDR overrides the file, as it does for Vault Agent
        address = env.get("VAULT_ADDR") or self.text(data, "address", "vault.")
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
        optional = {
            "scope": "scope", "subscription_id": "subscriptionId",
            "resource_group": "resourceGroup", "vm_name": "vmName", "vmss_name": "vmssName",
            "resource_id": "resourceId",
        }  # fmt: skip
        auth = VaultAuthConfig(
            method=method,
            mount=self.text(a, "mount", "vault.auth.") or env.get("SECRETSBOOT_VAULT_MOUNT"),
            role=role,
            token_path=self.text(a, "tokenPath", "vault.auth.")
            or env.get("SECRETSBOOT_VAULT_TOKEN_FILE"),
            jwt_source=jwt_source,
            resource=self.text(a, "resource", "vault.auth.") or "https://management.azure.com/",
            **{k: self.text(a, key, "vault.auth.") for k, key in optional.items()},
        )
        return VaultConfig(
            address=address.rstrip("/"),
            ca_cert=self.text(data, "caCert", "vault.") or env.get("VAULT_CACERT"),
            kv_version=int(kv),
            namespace=self.text(data, "namespace", "vault.") or env.get("VAULT_NAMESPACE"),
            auth=auth,
        )
