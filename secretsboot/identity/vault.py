"""Vault logins: the request body of ``POST /v1/auth/<mount>/login`` for each method.

The Vault backend sends what :func:`login_request` builds:

- ``kubernetes``: ``{"role", "jwt": <service-account token>}`` (Vault checks it with a
  TokenReview);
- ``jwt``: ``{"role", "jwt"}`` with the service-account token, or with an Entra ID token
  of the pod's Azure identity (``jwtSource: entra``); Vault validates it offline;
- ``azure`` (HashiCorp Vault only): ``{"role", "jwt": <managed-identity token for
  resource>, "subscription_id", "resource_group_name", "vm_name"|"vmss_name"|"resource_id"}``
  (on AKS the node is a scale set: ``vmssName``).

>>> from secretsboot.contract import VaultAuthConfig
>>> login_request(VaultAuthConfig(method="kubernetes", role="orders"), lambda: "JWT", None)[0]
'auth/kubernetes/login'
"""

from __future__ import annotations

from collections.abc import Callable

from secretsboot.contract import WORKLOAD_IDENTITY_AUDIENCE
from secretsboot.errors import BadInputError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from secretsboot.contract import VaultAuthConfig
    from secretsboot.identity.azure import TokenSource
    from secretsboot.transport import Deadline


def login_request(
    auth: VaultAuthConfig,
    serviceaccount_token: Callable[[], str],
    azure: TokenSource | None,
    deadline: Deadline | None = None,
) -> tuple[str, dict[str, Any]]:
    """``(path, json body)`` of the login; tokens are read only when the method needs them
    (an Azure token within ``deadline``, by default ten seconds)."""
    if deadline is None:
        from secretsboot.transport import Deadline

        deadline = Deadline.after(10.0)
    path = f"auth/{auth.mount_path}/login"
    if auth.method == "kubernetes":
        return path, {"role": auth.role, "jwt": serviceaccount_token()}
    if auth.method == "jwt":
        if auth.jwt_source == "entra":
            if azure is None:
                raise BadInputError(
                    "vault.auth.jwtSource: entra needs an Azure identity",
                    hint="set identity: workload-identity or pod-identity",
                )
            scope = auth.scope or f"{WORKLOAD_IDENTITY_AUDIENCE}/.default"
            return path, {"role": auth.role, "jwt": azure.token(scope, deadline)}
        return path, {"role": auth.role, "jwt": serviceaccount_token()}
    if auth.method == "azure":
        if azure is None:
            raise BadInputError(
                "Vault azure auth needs a managed identity",
                hint="set identity: workload-identity or pod-identity",
            )
        # resource + "/.default", as MSAL and Vault Agent form it: the token's aud is then
        # the resource exactly as Vault's config names it (https://management.azure.com/
        # -> scope https://management.azure.com//.default); Vault compares aud verbatim
        body: dict[str, Any] = {
            "role": auth.role,
            "jwt": azure.token(auth.resource + "/.default", deadline),
        }
        for key, value in (
            ("subscription_id", auth.subscription_id),
            ("resource_group_name", auth.resource_group),
            ("vm_name", auth.vm_name),
            ("vmss_name", auth.vmss_name),
            ("resource_id", auth.resource_id),
        ):
            if value:
                body[key] = value
        return path, body
    raise BadInputError(f"Vault auth method '{auth.method}' has no login")


def describe_login(auth: VaultAuthConfig, who: str | None) -> str:
    """``SUBJECT (Vault role 'R', METHOD auth at auth/MOUNT)``, for error messages."""
    role = f"Vault role '{auth.role}', {auth.method} auth at auth/{auth.mount_path}"
    return f"{who} ({role})" if who else role
