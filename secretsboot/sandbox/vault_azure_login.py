"""``auth/azure/login``: Vault's ``pathLogin``, ``verifyClaims`` and ``verifyResource``.

In Vault's order: ``jwt`` and ``role`` present (400), the role exists (400
``invalid role name "x"``), ``token_bound_cidrs`` admit the caller (403), the
instance fields are well-formed (400), the mount is configured (500), the token
passes go-oidc (500, :mod:`.vault_azure_oidc`), ``nbf`` is past, the ``oid`` is in
``bound_service_principal_ids`` and a ``groups`` entry in ``bound_group_ids``
(500 ``service principal not authorized: OID``), then, only when the role has
resource bindings, the instance is looked up in Azure: a scale set, a VM, a
resource id, or (workload identity: none of those, an ``appid`` claim) the
user-assigned identities of the resource groups; the token's ``oid`` must be one
of the instance's identities (or its ``appid`` a listed identity's client id),
then ``bound_subscription_ids``, ``bound_resource_groups`` and ``bound_locations``
are checked (500 ``subscription not authorized`` ...).

The Azure lookups go through an :class:`AzureDirectory`; the sandbox's reads the
Azure fake's state in process (its ARM has user-assigned identities but no
compute resources, so a VM or scale-set lookup fails as ARM's 404 would).
"""

from __future__ import annotations

import ipaddress
import re
import time
from typing import TYPE_CHECKING, Any, Protocol

from secretsboot.sandbox.vault_azure_fields import settings_error
from secretsboot.sandbox.vault_azure_oidc import LoginError, go_time

if TYPE_CHECKING:
    from secretsboot.sandbox.vault_azure import Mount, VaultAzureAuth

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_RG = re.compile(r"[-\w._()]{1,90}")
_NAME = re.compile(r"[-\w._]{1,80}")
_RESOURCE_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/[^/]+/[^/]+/[^/]+.*", re.IGNORECASE
)
_RESOURCE_BINDINGS = (
    "bound_resource_groups",
    "bound_subscription_ids",
    "bound_locations",
    "bound_scale_sets",
)


class AzureDirectory(Protocol):
    """What Vault reads from ARM to check a role's resource bindings."""

    def instance(self, subscription_id: str, resource_group: str, kind: str, name: str) -> Any:
        """``(location, {principal ids})`` of a ``virtualMachines`` or
        ``virtualMachineScaleSets`` instance (``kind``), or of resource id ``name``
        (``kind`` ``resource``; principal ids None when it has no identity); raises
        LookupError with ARM's error."""

    def identity_client_ids(self, subscription_id: str, resource_group: str) -> set[str]:
        """Client ids of the user-assigned identities in a resource group."""


def login(
    auth: VaultAzureAuth,
    mount: Mount,
    body: dict[str, Any],
    role: dict[str, Any] | None,
    config: dict[str, Any],
    client: str,
) -> dict[str, Any]:
    """What a granted login gets (``create``: the token/create body; ``metadata``);
    raises LoginError with Vault's status and message."""
    jwt, role_name = str(body.get("jwt") or ""), str(body.get("role") or "")
    if not jwt:
        raise LoginError(400, "jwt is required")
    if not role_name:
        raise LoginError(400, "role is required")
    if role is None:
        raise LoginError(400, f'invalid role name "{role_name}"')
    _check_cidrs(role, client)
    fields = {k: str(body.get(k) or "") for k in _INSTANCE_FIELDS}
    _check_fields(fields)
    problem = settings_error(config)
    if problem:
        raise LoginError(500, problem)
    claims = auth.verifier(mount, config).verify(jwt)
    verify_claims(claims, role)
    verify_resource(auth.directory, fields, claims, role)
    metadata = {
        "role": role_name,
        "resource_group_name": fields["resource_group_name"],
        "subscription_id": fields["subscription_id"],
    }
    metadata.update({k: fields[k] for k in ("vm_name", "vmss_name", "resource_id") if fields[k]})
    if claims.get("appid"):
        metadata["app_id"] = str(claims["appid"])
    oid = str(claims.get("oid", ""))
    return {"create": token_request(role, metadata, mount.path, oid), "metadata": metadata}


_INSTANCE_FIELDS = ("subscription_id", "resource_group_name", "vm_name", "vmss_name", "resource_id")


def _check_cidrs(role: dict[str, Any], client: str) -> None:
    cidrs = role.get("token_bound_cidrs") or []
    if not cidrs:
        return
    try:
        addr = ipaddress.ip_address(client)
        if any(addr in ipaddress.ip_network(c, strict=False) for c in cidrs):
            return
    except ValueError:
        pass
    raise LoginError(403, "permission denied")


def _check_fields(fields: dict[str, str]) -> None:
    checks = (
        ("subscription_id", _GUID, "invalid subscription id"),
        ("resource_group_name", _RG, "invalid resource group name"),
        ("vmss_name", _NAME, "invalid vmss_name"),
        ("vm_name", _NAME, "invalid vm name"),
    )
    for key, pattern, message in checks:
        value = fields[key]
        if value and not pattern.fullmatch(value):
            raise LoginError(400, f'{message} "{value}"')


def verify_claims(claims: dict[str, Any], role: dict[str, Any]) -> None:
    """Vault's ``verifyClaims``: ``nbf`` (no leeway), principal ids, groups."""
    nbf = claims.get("nbf")
    if isinstance(nbf, int | float) and nbf > time.time():
        raise LoginError(500, f"token is not yet valid (Token Not Before: {go_time(nbf)})")
    sps, groups = role["bound_service_principal_ids"], role["bound_group_ids"]
    if sps == ["*"] and groups == ["*"]:
        raise LoginError(
            500,
            "expected specific bound_group_ids or bound_service_principal_ids; both cannot be '*'",
        )
    oid = str(claims.get("oid", ""))
    if sps and sps != ["*"] and oid not in sps:
        raise LoginError(500, f"service principal not authorized: {oid}")
    if groups and groups != ["*"]:
        token_groups = [str(g) for g in claims.get("groups") or []]
        if not any(g in groups for g in token_groups):
            raise LoginError(500, f"groups not authorized: [{' '.join(token_groups)}]")


def verify_resource(
    directory: AzureDirectory | None,
    fields: dict[str, str],
    claims: dict[str, Any],
    role: dict[str, Any],
) -> None:
    """Vault's ``verifyResource`` (only when the role binds resources)."""
    if not any(role[f] for f in _RESOURCE_BINDINGS):
        return
    sub, rg = fields["subscription_id"], fields["resource_group_name"]
    if not sub or not rg:
        raise LoginError(500, "subscription_id and resource_group_name are required")
    location, principals = _instance(directory, fields, role, claims)
    wif_match = False
    oid = str(claims.get("oid", ""))
    if oid not in principals:
        appid = str(claims.get("appid") or "")
        if not appid:
            raise LoginError(
                500, "token object id does not match expected identities, and no app id was found"
            )
        client_ids: set[str] = set()
        for group in (rg, *role["bound_resource_groups"]):
            client_ids |= _require(directory, "app ids").identity_client_ids(sub, group)
        if appid not in client_ids:
            raise LoginError(
                500, "neither token object id nor token app id match expected identities"
            )
        wif_match = True
    _check_bindings(role, sub, rg, location, wif_match)


def _check_bindings(
    role: dict[str, Any], sub: str, rg: str, location: str | None, wif_match: bool
) -> None:
    if role["bound_subscription_ids"] and sub not in role["bound_subscription_ids"]:
        raise LoginError(500, "subscription not authorized")
    if not wif_match and role["bound_resource_groups"] and rg not in role["bound_resource_groups"]:
        raise LoginError(500, "resource group not authorized")
    if role["bound_locations"]:
        if location is None:
            raise LoginError(500, "location is empty")
        if location not in role["bound_locations"]:
            raise LoginError(500, "location not authorized")


def _require(directory: AzureDirectory | None, what: str) -> AzureDirectory:
    if directory is None:
        raise LoginError(
            500, f"failed to create client to retrieve {what}: no Azure in this sandbox"
        )
    return directory


def _instance(
    directory: AzureDirectory | None,
    fields: dict[str, str],
    role: dict[str, Any],
    claims: dict[str, Any],
) -> tuple[str | None, set[str]]:
    """The location and principal ids of the instance named in the login (none for WIF)."""
    sub, rg = fields["subscription_id"], fields["resource_group_name"]
    if fields["vmss_name"]:
        found = _lookup(directory, sub, rg, "virtualMachineScaleSets", fields["vmss_name"])
        if role["bound_scale_sets"] and fields["vmss_name"] not in role["bound_scale_sets"]:
            raise LoginError(500, "scale set not authorized")
        return found
    if fields["vm_name"]:
        found = _lookup(directory, sub, rg, "virtualMachines", fields["vm_name"])
        if role["bound_scale_sets"]:
            raise LoginError(500, "bound scale set defined but this vm isn't in a scale set")
        return found
    if fields["resource_id"]:
        if role["bound_scale_sets"]:
            raise LoginError(500, "scale set requires the vmss_name field to be set")
        if not _RESOURCE_ID.fullmatch(fields["resource_id"]):
            raise LoginError(500, f'unable to parse the resource ID: "{fields["resource_id"]}"')
        return _lookup(directory, sub, rg, "resource", fields["resource_id"])
    if not claims.get("appid"):
        raise LoginError(
            500, "one of vm_name, vmss_name, resource_id, or an appid JWT claim must be provided"
        )
    return None, set()


_LOOKUP_ERRORS = {
    "virtualMachineScaleSets": "unable to retrieve virtual machine scale set metadata",
    "virtualMachines": "unable to retrieve virtual machine metadata",
    "resource": "unable to retrieve user assigned identity metadata",
}
_NO_IDENTITY = {
    "virtualMachineScaleSets": "vmss client did not return identity information",
    "virtualMachines": "vm client did not return identity information",
    "resource": "client did not return identity information",
}


def _lookup(
    directory: AzureDirectory | None, sub: str, rg: str, kind: str, name: str
) -> tuple[str | None, set[str]]:
    try:
        location, principals = _require(directory, "the instance").instance(sub, rg, kind, name)
    except LookupError as exc:
        raise LoginError(500, f"{_LOOKUP_ERRORS[kind]}: {exc}") from None
    if principals is None:
        raise LoginError(500, _NO_IDENTITY[kind])
    return location, set(principals)


def token_request(
    role: dict[str, Any], metadata: dict[str, str], mount_path: str, oid: str
) -> dict[str, Any]:
    """The ``auth/token/create`` body of the token a login of ``role`` gets: an orphan
    with the role's policies, TTLs, use limit and token type, and the login's metadata."""
    body: dict[str, Any] = {
        "policies": list(role["token_policies"]),
        "meta": dict(metadata),
        "no_parent": True,
        "no_default_policy": bool(role["token_no_default_policy"]),
        "display_name": f"{mount_path.replace('/', '-')}-{oid}",
        "renewable": True,
        "num_uses": int(role["token_num_uses"]),
        "type": "batch" if role["token_type"] in ("batch", "default-batch") else "service",
    }
    if role["token_ttl"]:
        body["ttl"] = f"{role['token_ttl']}s"
    caps = [v for v in (role["token_max_ttl"], role["token_explicit_max_ttl"]) if v]
    if caps:
        body["explicit_max_ttl"] = f"{min(caps)}s"
    if role["token_period"]:
        body["period"] = f"{role['token_period']}s"
    return body


class SandboxDirectory:
    """:class:`AzureDirectory` over the Azure fake's state (read in process)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def instance(self, subscription_id: str, resource_group: str, kind: str, name: str) -> Any:
        if kind == "resource":
            with self.state.lock:
                identity = self.state.identities.get(name.rstrip("/").lower())
            if identity is not None:
                return identity.location, None  # an identity has no identity of its own
        target = (
            name
            if kind == "resource"
            else (
                f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}"
                f"/providers/Microsoft.Compute/{kind}/{name}"
            )
        )
        raise LookupError(
            f"RESPONSE 404: 404 Not Found\nERROR CODE: ResourceNotFound\n"
            f"The Resource '{target}' was not found."
        )

    def identity_client_ids(self, subscription_id: str, resource_group: str) -> set[str]:
        prefix = f"/subscriptions/{subscription_id}/resourcegroups/{resource_group}/".lower()
        with self.state.lock:
            found = list(self.state.identities.values())
        return {i.client_id for i in found if i.id.lower().startswith(prefix)}
