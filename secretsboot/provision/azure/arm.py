"""The connection to Azure Resource Manager: settings, credential, the SDK clients, and
the one place that translates ARM SDK exceptions into our error tree.

Connection (environment wins over the spec):

- ``SECRETSBOOT_ARM_ENDPOINT`` (default ``https://management.azure.com``)
- ``SECRETSBOOT_SUBSCRIPTION_ID`` (default ``azure.subscriptionId``)
- ``AZURE_AUTHORITY_HOST`` (default ``azure.authorityHost``)
- credentials: ``AZURE_CLIENT_ID`` + ``AZURE_CLIENT_SECRET`` (+ ``AZURE_TENANT_ID``) ->
  ``ClientSecretCredential``; ``AZURE_FEDERATED_TOKEN_FILE`` -> ``WorkloadIdentityCredential``;
  otherwise ``DefaultAzureCredential``
- ``REQUESTS_CA_BUNDLE``: the CA bundle trusted for ARM and Entra ID
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from secretsboot.contract import DEFAULT_AUTHORITY
from secretsboot.errors import BadInputError, DeniedError, NotFoundError, UnavailableError
from secretsboot.provision._calls import CountedApi, first_line
from secretsboot.provision.desired import IdentityInfo
from secretsboot.spec import Spec

T = TypeVar("T")

DEFAULT_ARM = "https://management.azure.com"

# The ARM action each operation needs, named in a 403.
_MI = "Microsoft.ManagedIdentity/userAssignedIdentities"
PERMISSION = {
    ("managed-identity", "read"): f"{_MI}/read",
    ("managed-identity", "write"): f"{_MI}/write",
    ("managed-identity", "delete"): f"{_MI}/delete",
    ("federated-credential", "read"): f"{_MI}/federatedIdentityCredentials/read",
    ("federated-credential", "write"): f"{_MI}/federatedIdentityCredentials/write",
    ("federated-credential", "delete"): f"{_MI}/federatedIdentityCredentials/delete",
    ("role-assignment", "read"): "Microsoft.Authorization/roleAssignments/read",
    ("role-assignment", "write"): "Microsoft.Authorization/roleAssignments/write",
    ("role-assignment", "delete"): "Microsoft.Authorization/roleAssignments/delete",
    ("access-policy", "read"): "Microsoft.KeyVault/vaults/read",
    ("access-policy", "write"): "Microsoft.KeyVault/vaults/accessPolicies/write",
    ("access-policy", "delete"): "Microsoft.KeyVault/vaults/accessPolicies/write",
}
_ACTION_IN_MESSAGE = re.compile(r"perform action '([^']+)'")


@dataclass(frozen=True)
class AzureSettings:
    arm_endpoint: str
    subscription_id: str
    tenant_id: str
    authority_host: str
    ca_bundle: str | None

    @classmethod
    def from_spec(cls, spec: Spec, env: dict[str, str] | None = None) -> AzureSettings:
        if spec.azure is None:
            raise BadInputError("the spec has no azure section")
        e = dict(os.environ if env is None else env)
        authority = e.get("AZURE_AUTHORITY_HOST") or spec.azure.authority_host
        if not authority.startswith(("https://", "http://")):
            authority = "https://" + authority
        return cls(
            arm_endpoint=(e.get("SECRETSBOOT_ARM_ENDPOINT") or DEFAULT_ARM).rstrip("/"),
            subscription_id=e.get("SECRETSBOOT_SUBSCRIPTION_ID") or spec.azure.subscription_id,
            tenant_id=e.get("AZURE_TENANT_ID") or spec.azure.tenant_id,
            authority_host=authority.rstrip("/"),
            ca_bundle=e.get("REQUESTS_CA_BUNDLE") or None,
        )


def make_credential(settings: AzureSettings) -> Any:
    """The ARM credential: a service principal from AZURE_* variables, else the default chain."""
    from azure.identity import (
        ClientSecretCredential,
        DefaultAzureCredential,
        WorkloadIdentityCredential,
    )

    kwargs: dict[str, Any] = {"authority": settings.authority_host}
    if settings.authority_host != DEFAULT_AUTHORITY:
        # MSAL would ask login.microsoftonline.com to validate an unknown authority.
        kwargs["disable_instance_discovery"] = True
    if settings.ca_bundle:
        kwargs["connection_verify"] = settings.ca_bundle
    client_id = os.environ.get("AZURE_CLIENT_ID")
    secret = os.environ.get("AZURE_CLIENT_SECRET")
    if client_id and secret:
        return ClientSecretCredential(settings.tenant_id, client_id, secret, **kwargs)
    token_file = os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
    if client_id and token_file:
        return WorkloadIdentityCredential(
            tenant_id=settings.tenant_id,
            client_id=client_id,
            token_file_path=token_file,
            **kwargs,
        )
    return DefaultAzureCredential(authority=settings.authority_host)


@dataclass
class IdentityIndex:
    """What observation learnt of the identities, shared by the resource families."""

    infos: dict[str, IdentityInfo] = field(default_factory=dict)
    by_principal: dict[str, str] = field(default_factory=dict)  # principal id -> name
    managed: set[str] = field(default_factory=set)  # carrying this spec's tags
    created: set[str] = field(default_factory=set)  # ... and recorded as created by it

    def remember(self, name: str, info: IdentityInfo) -> None:
        self.infos[name] = info
        self.by_principal[info.principal_id.lower()] = name


class Arm(CountedApi):
    """The ARM SDK clients of one run and the one translation of their exceptions."""

    def __init__(self, spec: Spec, settings: AzureSettings, credential: Any) -> None:
        from azure.mgmt.authorization import AuthorizationManagementClient
        from azure.mgmt.keyvault import KeyVaultManagementClient
        from azure.mgmt.msi import ManagedServiceIdentityClient

        assert spec.azure is not None  # noqa: S101 - from_spec checked
        super().__init__(spec)
        self.settings = settings
        self.credential = credential
        common: dict[str, Any] = {
            "base_url": settings.arm_endpoint,
            "credential_scopes": [f"{DEFAULT_ARM}/.default"],
            "retry_total": 3,
            "retry_backoff_factor": 0.2,
            "retry_backoff_max": 5,
        }
        if settings.ca_bundle:
            common["connection_verify"] = settings.ca_bundle
        sub = settings.subscription_id
        self.msi = ManagedServiceIdentityClient(credential, sub, **common)
        self.auth = AuthorizationManagementClient(credential, sub, **common)
        self.kv = KeyVaultManagementClient(credential, sub, **common)
        self.lock = threading.Lock()  # guards the index
        self.index = IdentityIndex()

    def close(self) -> None:
        for client in (self.msi, self.auth, self.kv):
            client.close()

    @property
    def rg(self) -> str:
        assert self.spec.azure is not None  # noqa: S101
        return self.spec.azure.resource_group

    def call(self, what: str, kind: str, verb: str, fn: Callable[[], T]) -> T:
        """Run one SDK call; raise only our errors (an ARM 403 names the permission)."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        self.count_call()
        try:
            return fn()
        except ClientAuthenticationError as exc:
            if getattr(exc, "status_code", None) == 403:
                raise self.denied(what, kind, verb, exc) from None
            raise DeniedError(
                f"azure: cannot authenticate to ARM for {what}: {first_line(exc)}",
                hint="set AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID or sign in",
            ) from None
        except HttpResponseError as exc:
            raise self.translate(what, kind, verb, exc) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise UnavailableError(
                f"azure: {what}: cannot reach ARM at {self.settings.arm_endpoint}: "
                f"{type(exc).__name__}",
                hint="check SECRETSBOOT_ARM_ENDPOINT and the network",
            ) from None

    def translate(self, what: str, kind: str, verb: str, exc: Any) -> Exception:
        status = exc.status_code or 0
        if status == 403:
            return self.denied(what, kind, verb, exc)
        code = error_code(exc)
        if status == 404 and code == "ResourceGroupNotFound":
            return NotFoundError(
                f"azure: {what}: the resource group does not exist ({message(exc)})",
                hint="create it first (az group create -n NAME -l LOCATION) or fix "
                "azure.resourceGroup / azure.keyVaults[].resourceGroup",
            )
        if status == 404:
            return NotFoundError(
                f"azure: {what}: not found ({code})",
                hint="check the resource group, subscription and names in the spec",
            )
        if status == 429 or status >= 500:
            return UnavailableError(
                f"azure: {what}: ARM answered {status} ({code})",
                hint="retry later",
                retry_after=retry_after(exc),
            )
        return BadInputError(f"azure: {what}: ARM refused with {status} {code}: {message(exc)}")

    def denied(self, what: str, kind: str, verb: str, exc: Exception) -> DeniedError:
        action = PERMISSION.get((kind, verb), f"{kind}/{verb}")
        found = _ACTION_IN_MESSAGE.search(message(exc))
        if found:
            action = found.group(1)
        return DeniedError(
            f"azure: {what}: permission denied (403); the caller lacks {action}",
            hint=f"grant a role that allows {action} on the resource group "
            f"'{self.rg}' (e.g. Managed Identity Contributor and Role Based Access "
            "Control Administrator), then re-run",
        )


def message(exc: Any) -> str:
    err = getattr(exc, "error", None)
    msg = getattr(err, "message", None) or getattr(exc, "message", None) or str(exc)
    return str(msg).splitlines()[0][:400] if msg else ""


def error_code(exc: Any) -> str:
    err = getattr(exc, "error", None)
    return str(getattr(err, "code", None) or getattr(exc, "reason", None) or "error")


def retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def svc_of(services: tuple[str, ...]) -> str:
    return ", ".join(services) or "-"
