"""Entra ID tokens through azure-identity (the ``--client sdk`` path).

The same three identities as :mod:`secretsboot.identity.azure`, configured only by
endpoint and CA: ``WorkloadIdentityCredential`` (the webhook's variables),
``ManagedIdentityCredential`` (IMDS; honours ``AZURE_POD_IDENTITY_AUTHORITY_HOST``),
``ClientSecretCredential``. Errors are translated in :func:`credential_error`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from secretsboot.backends._http import ca_file_from_env
from secretsboot.errors import BadInputError, UnavailableError
from secretsboot.identity.azure import entra_error, token_subject

_AZURE_AUTHORITIES = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
)


def sdk_credential(
    identity: str,
    env: Mapping[str, str],
    *,
    tenant_id: str | None,
    client_id: str | None,
    authority_host: str | None,
    ca_file: str | None,
) -> tuple[Any, str, str | None]:
    """``(credential, who, subject)`` for a FetchConfig ``identity``."""
    from azure.identity import (
        ClientSecretCredential,
        ManagedIdentityCredential,
        WorkloadIdentityCredential,
    )

    tenant = tenant_id or env.get("AZURE_TENANT_ID")
    client = client_id or env.get("AZURE_CLIENT_ID")
    authority = authority_host or env.get("AZURE_AUTHORITY_HOST")
    kwargs: dict[str, Any] = {}
    ca = ca_file_from_env(ca_file)
    if ca:
        kwargs["connection_verify"] = ca
    if authority:
        kwargs["authority"] = authority
        host = urlsplit(authority if "://" in authority else f"https://{authority}").hostname
        if host not in _AZURE_AUTHORITIES:
            kwargs["disable_instance_discovery"] = True
    if identity == "workload-identity":
        token_file = env.get("AZURE_FEDERATED_TOKEN_FILE")
        if not (tenant and client and token_file):
            raise BadInputError(
                "workload identity is not set up in this pod (AZURE_* variables missing)",
                hint="label the POD azure.workload.identity/use: 'true' and annotate its "
                "service account azure.workload.identity/client-id",
            )
        subject = None
        try:
            with open(token_file, encoding="utf-8") as fh:
                subject = token_subject(fh.read().strip())
        except OSError:
            subject = None
        cred = WorkloadIdentityCredential(
            tenant_id=tenant, client_id=client, token_file_path=token_file, **kwargs
        )
        return cred, f"workload identity {client}", subject
    if identity == "service-principal":
        secret = env.get("AZURE_CLIENT_SECRET")
        if not (tenant and client and secret):
            raise BadInputError(
                "service principal needs AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
            )
        sp: Any = ClientSecretCredential(tenant, client, secret, **kwargs)
        return sp, f"service principal {client}", None
    if identity == "pod-identity":
        mi_kwargs: dict[str, Any] = {}
        if ca:
            mi_kwargs["connection_verify"] = ca
        if client:
            mi_kwargs["client_id"] = client
        endpoint = env.get("AZURE_POD_IDENTITY_AUTHORITY_HOST", "IMDS")
        return (
            ManagedIdentityCredential(**mi_kwargs),
            f"managed identity{' ' + client if client else ''} (IMDS {endpoint})",
            None,
        )
    raise BadInputError(f"identity '{identity}' cannot get Azure tokens")


def credential_error(exc: BaseException, who: str, subject: str | None = None) -> Exception:
    """Translate an azure-identity failure (``ClientAuthenticationError`` and kin)."""
    text = str(getattr(exc, "message", None) or exc)
    status = getattr(exc, "status_code", None) or 0
    response = getattr(exc, "response", None)
    if response is not None and not status:
        status = getattr(response, "status_code", 0) or 0
    for code in ("AADSTS70021", "AADSTS700016", "AADSTS7000215", "AADSTS700024"):
        if code in text:
            return entra_error(400, {"error_description": f"{code}: x"}, who, subject)
    if status == 429 or status >= 500 or "timed out" in text.lower():
        return UnavailableError(f"Entra ID token request for {who} failed ({status or 'network'})")
    if "connection" in text.lower() or "unreachable" in text.lower():
        return UnavailableError(f"identity endpoint for {who} unreachable")
    return entra_error(status or 401, {"error": type(exc).__name__}, who, subject)


class SdkTokenSource:
    """An azure-identity credential behind the lean :class:`TokenSource` interface
    (Vault azure/jwt-entra logins on the SDK path)."""

    def __init__(self, credential: Any, who: str, subject: str | None) -> None:
        self._credential = credential
        self._who = who
        self._subject = subject

    def token(self, scope: str, timeout: float) -> str:
        from azure.core.exceptions import AzureError

        try:
            return str(self._credential.get_token(scope).token)
        except AzureError as exc:
            raise credential_error(exc, self._who, self._subject) from None

    def describe(self) -> str:
        return self._who

    def close(self) -> None:
        close = getattr(self._credential, "close", None)
        if close is not None:
            close()
