"""Azure Resource Manager: managed identities, federated credentials, Key Vault grants.

One backend object per run. :meth:`AzureBackend.observe` reads in batches (the
identities of a resource group in one list, the role assignments of each vault's
resource group in one list, each access-policy vault once, the federated
credentials of each identity once); :meth:`AzureBackend.apply` makes one write
per change. SDK exceptions are translated here, once, into our error tree; an ARM
403 names the permission that is missing.

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

import functools
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    SecretsbootError,
    UnavailableError,
)
from secretsboot.provision.desired import (
    KEY_VAULT_SECRETS_USER,
    IdentityInfo,
    role_assignment_name,
)
from secretsboot.provision.model import (
    AZURE_MANAGED_BY_TAG,
    AZURE_SPEC_TAG,
    KNOWN_AFTER_APPLY,
    MANAGED_BY_VALUE,
    Action,
    Change,
    Desired,
    Observed,
    ResourceKey,
    System,
)
from secretsboot.spec import KeyVaultMode, Spec

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_ARM = "https://management.azure.com"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"

# The ARM action each operation needs, named in a 403.
_PERMISSION = {
    ("managed-identity", "read"): "Microsoft.ManagedIdentity/userAssignedIdentities/read",
    ("managed-identity", "write"): "Microsoft.ManagedIdentity/userAssignedIdentities/write",
    ("managed-identity", "delete"): "Microsoft.ManagedIdentity/userAssignedIdentities/delete",
    ("federated-credential", "read"): (
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/read"
    ),
    ("federated-credential", "write"): (
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write"
    ),
    ("federated-credential", "delete"): (
        "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/delete"
    ),
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


class AzureBackend:
    """Reads and writes the Azure side of a spec through the official ARM SDKs."""

    system = System.AZURE

    def __init__(self, spec: Spec, settings: AzureSettings, credential: Any) -> None:
        from azure.mgmt.authorization import AuthorizationManagementClient
        from azure.mgmt.keyvault import KeyVaultManagementClient
        from azure.mgmt.msi import ManagedServiceIdentityClient

        assert spec.azure is not None  # noqa: S101 - from_spec checked
        self.spec = spec
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
        self.msi = ManagedServiceIdentityClient(credential, settings.subscription_id, **common)
        self.auth = AuthorizationManagementClient(credential, settings.subscription_id, **common)
        self.kv = KeyVaultManagementClient(credential, settings.subscription_id, **common)
        self.calls = 0
        self._lock = threading.Lock()
        self.identities: dict[str, IdentityInfo] = {}
        self._principal_to_identity: dict[str, str] = {}
        self._managed_identities: set[str] = set()

    @classmethod
    def connect(cls, spec: Spec) -> AzureBackend:
        settings = AzureSettings.from_spec(spec)
        return cls(spec, settings, make_credential(settings))

    def close(self) -> None:
        for client in (self.msi, self.auth, self.kv):
            client.close()

    # -- error translation: the only place that sees SDK exceptions --------------------

    def _call(self, what: str, kind: str, verb: str, fn: Callable[[], T]) -> T:
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
            ServiceResponseError,
        )

        with self._lock:
            self.calls += 1
        try:
            return fn()
        except ClientAuthenticationError as exc:
            status = getattr(exc, "status_code", None)
            if status == 403:
                raise self._denied(what, kind, verb, exc) from None
            raise DeniedError(
                f"azure: cannot authenticate to ARM for {what}: {_first_line(exc)}",
                hint="set AZURE_CLIENT_ID/AZURE_CLIENT_SECRET/AZURE_TENANT_ID or sign in",
            ) from None
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status == 403:
                raise self._denied(what, kind, verb, exc) from None
            code = _error_code(exc)
            if status == 404 and code == "ResourceGroupNotFound":
                raise NotFoundError(
                    f"azure: {what}: the resource group does not exist ({_message(exc)})",
                    hint="create it first (az group create -n NAME -l LOCATION) or fix "
                    "azure.resourceGroup / azure.keyVaults[].resourceGroup",
                ) from None
            if status == 404:
                raise NotFoundError(
                    f"azure: {what}: not found ({code})",
                    hint="check the resource group, subscription and names in the spec",
                ) from None
            if status == 429 or status >= 500:
                raise UnavailableError(
                    f"azure: {what}: ARM answered {status} ({code})",
                    hint="retry later",
                    retry_after=_retry_after(exc),
                ) from None
            raise BadInputError(
                f"azure: {what}: ARM refused with {status} {code}: {_message(exc)}"
            ) from None
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise UnavailableError(
                f"azure: {what}: cannot reach ARM at {self.settings.arm_endpoint}: "
                f"{type(exc).__name__}",
                hint="check SECRETSBOOT_ARM_ENDPOINT and the network",
            ) from None

    def _denied(self, what: str, kind: str, verb: str, exc: Exception) -> DeniedError:
        action = _PERMISSION.get((kind, verb), f"{kind}/{verb}")
        found = _ACTION_IN_MESSAGE.search(_message(exc))
        if found:
            action = found.group(1)
        return DeniedError(
            f"azure: {what}: permission denied (403); the caller lacks {action}",
            hint=f"grant a role that allows {action} on the resource group "
            f"'{self._rg()}' (e.g. Managed Identity Contributor and Role Based Access "
            "Control Administrator), then re-run",
        )

    def _rg(self) -> str:
        assert self.spec.azure is not None  # noqa: S101
        return self.spec.azure.resource_group

    # -- reads ------------------------------------------------------------------------------

    def observe(
        self, desired: Iterable[Desired], *, prune: bool = False
    ) -> dict[ResourceKey, Observed]:
        """Every Azure object the desired state touches and every one this spec manages."""
        assert self.spec.azure is not None  # noqa: S101
        desired = [d for d in desired if d.system == System.AZURE]
        out: dict[ResourceKey, Observed] = {}
        rg = self._rg()
        spec_name = self.spec.metadata.name
        items = self._call(
            f"list managed identities of resource group '{rg}'",
            "managed-identity",
            "read",
            lambda: list(self.msi.user_assigned_identities.list_by_resource_group(rg)),
        )
        wanted_ids = {d.extra["identity"] for d in desired if d.key.kind == "managed-identity"}
        for item in items:
            tags = dict(item.tags or {})
            managed = (
                tags.get(AZURE_MANAGED_BY_TAG) == MANAGED_BY_VALUE
                and tags.get(AZURE_SPEC_TAG) == spec_name
            )
            if not managed and item.name not in wanted_ids:
                continue
            info = IdentityInfo(str(item.client_id), str(item.principal_id), str(item.id))
            self.identities[item.name] = info
            self._principal_to_identity[info.principal_id.lower()] = item.name
            if managed:
                self._managed_identities.add(item.name)
            key = ResourceKey(System.AZURE, "managed-identity", f"{rg}/{item.name}")
            out[key] = Observed(
                key, {"location": item.location, "tags": tags}, managed=managed, raw=info
            )
        self._observe_fics(rg, out)
        self._observe_role_assignments(out)
        if prune:
            self._observe_orphan_assignments(out, self._managed_identities - wanted_ids)
        self._observe_access_policies(out)
        return out

    def _observe_fics(self, rg: str, out: dict[ResourceKey, Observed]) -> None:
        """GET .../userAssignedIdentities/{name}/federatedIdentityCredentials, per identity."""
        names = sorted(self.identities)

        def one(name: str) -> list[Any]:
            return self._call(
                f"list federated credentials of identity '{name}'",
                "federated-credential",
                "read",
                lambda: list(self.msi.federated_identity_credentials.list(rg, name)),
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(one, names))
        for name, fics in zip(names, results, strict=True):
            for fic in fics:
                key = ResourceKey(System.AZURE, "federated-credential", f"{name}/{fic.name}")
                out[key] = Observed(
                    key,
                    {
                        "issuer": fic.issuer,
                        "subject": fic.subject,
                        "audiences": list(fic.audiences or []),
                    },
                    managed=name in self._managed_identities and str(fic.name).startswith("sb-"),
                    raw={"identity": name, "fic": fic.name},
                )

    def _vault_rgs(self, mode: KeyVaultMode) -> dict[str, str]:
        assert self.spec.azure is not None  # noqa: S101
        return {
            kv.name: kv.resource_group or self.spec.azure.resource_group
            for kv in self.spec.azure.key_vaults
            if kv.mode is mode
        }

    def _observe_role_assignments(self, out: dict[ResourceKey, Observed]) -> None:
        """GET /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Authorization/
        roleAssignments, once per resource group holding an RBAC vault of the spec."""
        vaults = self._vault_rgs(KeyVaultMode.RBAC)
        if not vaults:
            return
        sub = self.settings.subscription_id
        for rg in sorted(set(vaults.values())):
            scope = f"/subscriptions/{sub}/resourceGroups/{rg}"
            items = self._call(
                f"list role assignments of resource group '{rg}'",
                "role-assignment",
                "read",
                functools.partial(self._list_assignments, scope),
            )
            for ra in items:
                self._add_assignment(out, ra)

    def _observe_orphan_assignments(
        self, out: dict[ResourceKey, Observed], going: Iterable[str]
    ) -> None:
        """GET /subscriptions/{s}/providers/Microsoft.Authorization/roleAssignments
        ?$filter=principalId eq '{id}', per managed identity --prune deletes: its grants on
        vaults the spec no longer names would otherwise outlive it."""
        sub = self.settings.subscription_id
        for name in sorted(going):
            principal = self.identities[name].principal_id
            items = self._call(
                f"list role assignments of identity '{name}'",
                "role-assignment",
                "read",
                functools.partial(
                    self._list_assignments,
                    f"/subscriptions/{sub}",
                    f"principalId eq '{principal}'",
                ),
            )
            for ra in items:
                self._add_assignment(out, ra)

    def _add_assignment(self, out: dict[ResourceKey, Observed], ra: Any) -> None:
        identity = self._principal_to_identity.get(str(ra.principal_id).lower())
        role_suffix = KEY_VAULT_SECRETS_USER.lower()
        if identity is None or not str(ra.role_definition_id).lower().endswith(role_suffix):
            return
        short = _vault_scope_short(str(ra.scope))
        if short is None:
            return
        key = ResourceKey(System.AZURE, "role-assignment", f"{identity} -> {short}")
        managed = identity in self._managed_identities and ra.name == (
            role_assignment_name(str(ra.scope), str(ra.principal_id), str(ra.role_definition_id))
        )
        out[key] = Observed(
            key,
            {
                "scope": ra.scope,
                "roleDefinitionId": ra.role_definition_id,
                "principalId": ra.principal_id,
            },
            managed=managed,
            raw={"scope": ra.scope, "name": ra.name},
        )

    def _list_assignments(self, scope: str, flt: str | None = None) -> list[Any]:
        return list(self.auth.role_assignments.list_for_scope(scope, filter=flt))

    def _observe_access_policies(self, out: dict[ResourceKey, Observed]) -> None:
        """GET .../Microsoft.KeyVault/vaults/{vault}, once per access-policy vault."""
        for vault, rg in sorted(self._vault_rgs(KeyVaultMode.ACCESS_POLICY).items()):
            got = self._call(
                f"read Key Vault '{vault}' (resource group '{rg}')",
                "access-policy",
                "read",
                functools.partial(self.kv.vaults.get, rg, vault),
            )
            policies = getattr(got.properties, "access_policies", None) or []
            for p in policies:
                identity = self._principal_to_identity.get(str(p.object_id).lower())
                if identity is None:
                    continue
                secrets = [_enum_text(s) for s in (getattr(p.permissions, "secrets", None) or [])]
                key = ResourceKey(System.AZURE, "access-policy", f"{vault}/{identity}")
                out[key] = Observed(
                    key,
                    {
                        "objectId": p.object_id,
                        "tenantId": p.tenant_id,
                        # A policy granting more than get satisfies "get": compare as such.
                        "permissions": {"secrets": ["get"] if "get" in secrets else secrets},
                    },
                    managed=identity in self._managed_identities,
                    raw={"vault": vault, "resource_group": rg, "secrets": secrets},
                )

    def preflight(self, pending: Iterable[Change]) -> None:
        """Ask ARM whether the caller may make the pending writes, and refuse before
        anything is written anywhere.

        ``GET {scope}/providers/Microsoft.Authorization/permissions`` once per scope: the
        resource group for identities and federated credentials (an identity to create
        does not exist yet), the vault for role assignments and access policies (a grant
        made on the vault itself counts there; a vault not found falls back to its
        resource group). Every missing action is named with its scope, the objects that
        need it and a role that grants it. An ARM without the permissions API (404 with
        no ARM resource code, or 400 ``InvalidResourceType``) is not asked: its 403 then
        surfaces at the write itself.
        """
        needed: dict[_Scope, dict[str, list[str]]] = {}
        for c in pending:
            if c.key.system != System.AZURE or c.action is Action.NOOP:
                continue
            verb = "delete" if c.action is Action.DELETE else "write"
            action = _PERMISSION.get((c.key.kind, verb))
            if action is None:
                continue
            users = needed.setdefault(self._scope_of(c), {}).setdefault(action, [])
            users.append(f"{c.key.kind} {c.key.name}")
        missing: list[tuple[_Scope, str, list[str]]] = []
        for scope, actions in sorted(needed.items(), key=lambda kv: kv[0].sort_key):
            perms = self._permissions_at(scope)
            if perms is None:
                return
            for action, users in sorted(actions.items()):
                if not any(_permits(p, action) for p in perms):
                    missing.append((scope, action, users))
        if missing:
            raise _preflight_denied(missing, self.settings.subscription_id)

    def _permissions_at(self, scope: _Scope) -> list[Any] | None:
        """The caller's permission entries at ``scope`` (None: ARM has no such API)."""
        sub = self.settings.subscription_id
        try:
            got = self._call(
                f"read the caller's permissions on {scope.arm_id(sub)} (preflight)",
                "role-assignment",
                "read",
                functools.partial(self._list_permissions, scope),
            )
        except _NoPermissionsApi:
            log.warning(
                "azure: ARM at %s has no permissions API; a missing permission will show "
                "only at the write",
                self.settings.arm_endpoint,
            )
            return None
        if got is None:  # the vault is not there (yet): ask its resource group
            return self._permissions_at(_Scope(scope.resource_group, None))
        return got

    def _list_permissions(self, scope: _Scope) -> list[Any] | None:
        """GET .../resourcegroups/{rg}[/providers/Microsoft.KeyVault/vaults/{vault}]/
        providers/Microsoft.Authorization/permissions (None: the vault does not exist)."""
        from azure.core.exceptions import HttpResponseError

        try:
            if scope.vault is None:
                return list(self.auth.permissions.list_for_resource_group(scope.resource_group))
            return list(
                self.auth.permissions.list_for_resource(
                    scope.resource_group, "Microsoft.KeyVault", "", "vaults", scope.vault
                )
            )
        except HttpResponseError as exc:
            status, code = exc.status_code or 0, _error_code(exc)
            if status == 404 and code == "ResourceNotFound" and scope.vault is not None:
                return None
            if (status == 404 and code not in _ARM_NOT_FOUND_CODES) or (
                status == 400 and code == "InvalidResourceType"
            ):
                raise _NoPermissionsApi from None
            raise

    def _scope_of(self, change: Change) -> _Scope:
        """Where ARM checks the permission for ``change``: its vault, else its group."""
        src = change.desired.extra if change.desired is not None else {}
        raw = change.observed.raw if change.observed is not None else None
        raw_dict = raw if isinstance(raw, dict) else {}
        scope = ""
        if change.desired is not None:
            scope = str(change.desired.body.get("scope", ""))
        elif raw_dict:
            scope = str(raw_dict.get("scope") or "")
        rg = src.get("resource_group") or raw_dict.get("resource_group")
        if not rg:
            m = re.search(r"/resourceGroups/([^/]+)", scope, re.I)
            rg = m.group(1) if m else None
        if not rg and change.key.kind == "managed-identity":
            rg = change.key.name.partition("/")[0]
        vault: str | None = None
        if change.key.kind in ("role-assignment", "access-policy"):
            vault = src.get("vault") or raw_dict.get("vault")
            if not vault:
                short = _vault_scope_short(scope)
                vault = short.split("/", 1)[0] if short else None
        return _Scope(str(rg or self._rg()), str(vault) if vault else None)

    # -- writes -------------------------------------------------------------------------

    def apply(self, change: Change) -> None:
        kind = change.key.kind
        if change.action is Action.DELETE:
            self._delete(change)
            return
        want = change.desired
        assert want is not None  # noqa: S101
        _refuse_unknown(want)
        what = f"{change.action.value} {kind} '{change.key.name}' (service {_svc(change)})"
        if kind == "managed-identity":
            # PUT replaces the tags: keep the ones other tools set
            have = change.observed.body.get("tags") if change.observed is not None else None
            self._put_identity(want, what, dict(have or {}))
        elif kind == "federated-credential":
            self._put_fic(want, what)
        elif kind == "role-assignment":
            self._put_role_assignment(want, what)
        elif kind == "access-policy":
            self._put_access_policy(want, what)
        else:  # pragma: no cover - desired only builds the kinds above
            raise BadInputError(f"azure: unknown kind {kind}")

    def _put_identity(self, want: Desired, what: str, tags: dict[str, str]) -> None:
        """PUT .../Microsoft.ManagedIdentity/userAssignedIdentities/{name} (create or update)."""
        from azure.mgmt.msi.models import Identity

        name = want.extra["identity"]
        rg = want.extra["resource_group"]
        got = self._call(
            what,
            "managed-identity",
            "write",
            lambda: self.msi.user_assigned_identities.create_or_update(
                rg,
                name,
                Identity(location=want.body["location"], tags={**tags, **want.body["tags"]}),
            ),
        )
        info = IdentityInfo(str(got.client_id), str(got.principal_id), str(got.id))
        with self._lock:
            self.identities[name] = info
            self._principal_to_identity[info.principal_id.lower()] = name

    def _put_fic(self, want: Desired, what: str) -> None:
        """PUT .../userAssignedIdentities/{name}/federatedIdentityCredentials/{fic}."""
        from azure.mgmt.msi.models import FederatedIdentityCredential

        self._call(
            what,
            "federated-credential",
            "write",
            lambda: self.msi.federated_identity_credentials.create_or_update(
                want.extra["resource_group"],
                want.extra["identity"],
                want.extra["fic"],
                FederatedIdentityCredential(
                    issuer=want.body["issuer"],
                    subject=want.body["subject"],
                    audiences=list(want.body["audiences"]),
                ),
            ),
        )

    def _put_role_assignment(self, want: Desired, what: str) -> None:
        """PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{uuid5 name}."""
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        try:
            self._call(
                what,
                "role-assignment",
                "write",
                lambda: self.auth.role_assignments.create(
                    want.body["scope"],
                    want.extra["assignment"],
                    RoleAssignmentCreateParameters(
                        role_definition_id=want.body["roleDefinitionId"],
                        principal_id=want.body["principalId"],
                        principal_type="ServicePrincipal",
                    ),
                ),
            )
        except BadInputError as exc:
            # The same grant under another (foreign) name: the grant exists, nothing to do.
            if "RoleAssignmentExists" not in exc.message:
                raise

    def _put_access_policy(self, want: Desired, what: str) -> None:
        """PUT .../Microsoft.KeyVault/vaults/{vault}/accessPolicies/add (secrets: get)."""
        from azure.mgmt.keyvault.models import VaultAccessPolicyParameters

        body = {
            "properties": {
                "accessPolicies": [
                    {
                        "tenantId": want.body["tenantId"],
                        "objectId": want.body["objectId"],
                        "permissions": {"secrets": ["get"]},
                    }
                ]
            }
        }
        self._call(
            what,
            "access-policy",
            "write",
            lambda: self.kv.vaults.update_access_policy(
                want.extra["resource_group"],
                want.extra["vault"],
                "add",
                VaultAccessPolicyParameters(body),
            ),
        )

    def _delete(self, change: Change) -> None:
        have = change.observed
        assert have is not None  # noqa: S101
        kind = change.key.kind
        what = f"delete {kind} '{change.key.name}'"
        from azure.mgmt.keyvault.models import VaultAccessPolicyParameters

        try:
            if kind == "managed-identity":
                rg, _, name = change.key.name.partition("/")
                self._call(
                    what,
                    kind,
                    "delete",
                    lambda: self.msi.user_assigned_identities.delete(rg, name),
                )
            elif kind == "federated-credential":
                raw = have.raw
                self._call(
                    what,
                    kind,
                    "delete",
                    lambda: self.msi.federated_identity_credentials.delete(
                        self._rg(), raw["identity"], raw["fic"]
                    ),
                )
            elif kind == "role-assignment":
                raw = have.raw
                self._call(
                    what,
                    kind,
                    "delete",
                    lambda: self.auth.role_assignments.delete(raw["scope"], raw["name"]),
                )
            elif kind == "access-policy":
                raw = have.raw
                body = {
                    "properties": {
                        "accessPolicies": [
                            {
                                "tenantId": have.body["tenantId"],
                                "objectId": have.body["objectId"],
                                "permissions": {"secrets": raw["secrets"]},
                            }
                        ]
                    }
                }
                self._call(
                    what,
                    kind,
                    "delete",
                    lambda: self.kv.vaults.update_access_policy(
                        raw["resource_group"],
                        raw["vault"],
                        "remove",
                        VaultAccessPolicyParameters(body),
                    ),
                )
        except NotFoundError:
            return  # already gone: a re-run after a crash


def _refuse_unknown(want: Desired) -> None:
    def walk(value: Any) -> bool:
        if isinstance(value, dict):
            return any(walk(v) for v in value.values())
        if isinstance(value, list):
            return any(walk(v) for v in value)
        return bool(value == KNOWN_AFTER_APPLY)

    if bool(walk(want.body)) or bool(walk(want.extra)):
        raise SecretsbootError(f"{want.key}: a value is still unknown at apply time (a bug)")


def _svc(change: Change) -> str:
    return ", ".join(change.services) or "-"


def _vault_scope_short(scope: str) -> str | None:
    """``.../vaults/NAME`` -> NAME, ``.../vaults/NAME/secrets/S`` -> NAME/S, else None."""
    m = re.search(
        r"/providers/Microsoft\.KeyVault/vaults/([^/]+)(?:/secrets/([^/]+))?/?$", scope, re.I
    )
    if not m:
        return None
    return f"{m.group(1)}/{m.group(2)}" if m.group(2) else m.group(1)


def _permits(permission: Any, action: str) -> bool:
    """Does one ARM permission entry allow ``action``? Its ``actions`` must match and its
    ``notActions`` must not (they subtract from this entry only; another entry may still
    grant the action). Matching is ARM's: case-insensitive, ``*`` spans any characters,
    ``/`` included (``*``, ``Microsoft.Authorization/*``, ``*/read``)."""
    allowed = any(_action_matches(str(a), action) for a in permission.actions or [])
    denied = any(_action_matches(str(a), action) for a in permission.not_actions or [])
    return allowed and not denied


@functools.lru_cache(maxsize=256)
def _action_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$", re.IGNORECASE
    )


def _action_matches(pattern: str, action: str) -> bool:
    return _action_pattern(pattern).match(action) is not None


@dataclass(frozen=True)
class _Scope:
    """Where a permission is checked: a resource group, or a Key Vault inside one."""

    resource_group: str
    vault: str | None

    @property
    def sort_key(self) -> tuple[str, str]:
        return (self.resource_group.lower(), (self.vault or "").lower())

    def arm_id(self, subscription_id: str) -> str:
        rg = f"/subscriptions/{subscription_id}/resourceGroups/{self.resource_group}"
        return f"{rg}/providers/Microsoft.KeyVault/vaults/{self.vault}" if self.vault else rg


class _NoPermissionsApi(Exception):
    """This ARM does not serve Microsoft.Authorization/permissions."""


# 404 codes ARM gives for a missing scope (any other 404: the API itself is missing)
_ARM_NOT_FOUND_CODES = frozenset(
    {"ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"}
)

# A built-in role that grants each action the provisioner writes with (the narrowest one).
_GRANTING_ROLE = {
    "Microsoft.ManagedIdentity/": "Managed Identity Contributor",
    "Microsoft.Authorization/roleAssignments/": "Role Based Access Control Administrator",
    "Microsoft.KeyVault/": "Key Vault Contributor",
}


def _granting_role(action: str) -> str:
    for prefix, role in _GRANTING_ROLE.items():
        if action.lower().startswith(prefix.lower()):
            return role
    return "Owner"


def _preflight_denied(missing: list[tuple[_Scope, str, list[str]]], sub: str) -> DeniedError:
    """One line naming every missing action, its scope and what needs it; the fix."""
    parts = []
    for scope, action, users in missing:
        shown = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        parts.append(f"{action} on scope '{scope.arm_id(sub)}' (needed by {shown})")
    assignee = os.environ.get("AZURE_CLIENT_ID") or "<the provisioning principal>"
    fixes = []
    for scope, action, _ in missing:
        fix = (
            f'az role assignment create --assignee {assignee} --role "{_granting_role(action)}" '
            f"--scope {scope.arm_id(sub)}"
        )
        if fix not in fixes:
            fixes.append(fix)
    return DeniedError(
        "azure: the caller lacks " + "; ".join(parts) + " (ARM permissions API, preflight); "
        "nothing was written anywhere",
        hint="grant a role that allows it at that scope or above, then re-run: " + "; ".join(fixes),
    )


def _enum_text(value: Any) -> str:
    """``SecretPermissions.GET`` -> ``get`` (the SDK hands back enums or strings)."""
    return str(getattr(value, "value", value)).lower()


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _message(exc: Any) -> str:
    err = getattr(exc, "error", None)
    msg = getattr(err, "message", None) or getattr(exc, "message", None) or str(exc)
    return str(msg).splitlines()[0][:400] if msg else ""


def _error_code(exc: Any) -> str:
    err = getattr(exc, "error", None)
    return str(getattr(err, "code", None) or getattr(exc, "reason", None) or "error")


def _retry_after(exc: Any) -> float | None:
    response = getattr(exc, "response", None)
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
