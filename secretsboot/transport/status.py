"""The one place where a reply's status and error body become an error of our tree.

Every system shares one base rule (:func:`base_error`): 429 and 5xx are
:class:`~secretsboot.errors.UnavailableError` (retried, ``Retry-After`` kept), 401 and
403 :class:`~secretsboot.errors.DeniedError`, 404 :class:`~secretsboot.errors.NotFoundError`,
any other status :class:`~secretsboot.errors.BadInputError`. One function per system
refines it with what that system's body says and the fix to name:

- :func:`keyvault_error`: 403 inner code ``ForbiddenByRbac`` (RBAC mode) or
  ``AccessDenied`` (access-policy mode; older vaults said ``ForbiddenByPolicy``) is a
  grant that may still be propagating (:class:`~secretsboot.errors.PropagationPendingError`);
  ``ForbiddenByFirewall`` and ``SecretDisabled`` fail at once, naming the fix;
- :func:`entra_error`: AADSTS70021, 700211 (issuer), 700212 (audience) and 700213
  (subject) are a federated credential that may still be propagating; 7002138 (the
  subject matches only when case is ignored) is a configuration error;
- :func:`vault_error`: a refused login names the role; a denied read the policy;
- :func:`kubernetes_error`: a denied read names the Role to add.

>>> type(keyvault_error(403, {"error": {"code": "Forbidden",
...     "innererror": {"code": "AccessDenied"}}}, "kv", "db", "me")).__name__
'PropagationPendingError'
"""

from __future__ import annotations

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    SecretsbootError,
    UnavailableError,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def base_error(
    status: int, message: str, *, hint: str | None = None, retry_after: float | None = None
) -> SecretsbootError:
    """The error every system's status means unless its body says more."""
    if status == 429 or status >= 500:
        return UnavailableError(message, hint=hint, retry_after=retry_after)
    if status in (401, 403):
        return DeniedError(message, hint=hint)
    if status == 404:
        return NotFoundError(message, hint=hint)
    return BadInputError(message, hint=hint)


def _lower_keys(value: Any) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in value.items()} if isinstance(value, dict) else {}


# ---- Azure Key Vault -------------------------------------------------------------------

#: 403 inner codes that a grant still propagating produces (retried for the window)
KEYVAULT_PROPAGATING = frozenset({"ForbiddenByRbac", "AccessDenied", "ForbiddenByPolicy", ""})


def keyvault_codes(body: Any) -> tuple[str, str]:
    """``(code, inner code)`` of a Key Vault error body (``innererror`` in any case)."""
    err = _lower_keys(_lower_keys(body).get("error"))
    inner = _lower_keys(err.get("innererror"))
    return str(err.get("code") or ""), str(inner.get("code") or "")


def keyvault_error(
    status: int,
    body: Any,
    vault: str,
    what: str,
    who: str,
    retry_after: float | None = None,
) -> SecretsbootError:
    """A Key Vault data-plane error (``what``: the secret's name, or the reference)."""
    code, inner = keyvault_codes(body)
    if status == 404:
        return NotFoundError(f"secret '{what}' not found in Key Vault {vault}")
    if status == 401:
        return DeniedError(
            f"Key Vault {vault} rejected the token of {who} ({code or 'Unauthorized'})",
            hint="check the tenant and authority host",
        )
    if status == 403 and inner == "ForbiddenByFirewall":
        return DeniedError(
            f"Key Vault {vault} refused {who}: its firewall does not allow this pod's "
            "network (ForbiddenByFirewall; waiting does not help)",
            hint="add the cluster's egress IP or subnet to the vault's network rules, "
            "or reach it through a private endpoint",
        )
    if status == 403 and inner == "SecretDisabled":
        return DeniedError(
            f"secret '{what}' in Key Vault {vault} is disabled (SecretDisabled)",
            hint="enable it (az keyvault secret set-attributes --enabled true) "
            "or pin an enabled version",
        )
    if status == 403 and inner in KEYVAULT_PROPAGATING:
        why = {
            "ForbiddenByRbac": "no 'Key Vault Secrets User' role (vault in RBAC mode)",
            "AccessDenied": "no access policy with secret 'get' (vault in access-policy mode)",
            "ForbiddenByPolicy": "no access policy with secret 'get' (vault in access-policy mode)",
        }.get(inner, "no 'Key Vault Secrets User' role and no access policy")
        # A fresh grant takes minutes to reach the data plane: retried for a while.
        return PropagationPendingError(
            f"Key Vault {vault} denied {who}: {why}",
            hint="run secretsboot provision (new grants take a few minutes to apply)",
        )
    if status == 403:
        return DeniedError(f"Key Vault {vault} denied {who} ({inner or code})")
    detail = f"{status} {code}" if code else str(status)
    return base_error(
        status, f"Key Vault {vault} answered {detail} for {what}", retry_after=retry_after
    )


# ---- Entra ID (and IMDS) ---------------------------------------------------------------

#: federated-credential mismatches that a credential still propagating also produces
ENTRA_PROPAGATING = {
    70021: "none matches the token's issuer, subject and audience",
    700211: "none has the token's issuer",
    700212: "none has the token's audience",
    700213: "none has the token's subject",
}
_ENTRA_CREDENTIAL = (700016, 700024, 7000215, 7000222)


def entra_code(body: Any) -> int | None:
    """The AADSTS number of an Entra error body (``error_codes`` or the description)."""
    data = _lower_keys(body)
    codes = data.get("error_codes")
    if isinstance(codes, list) and codes and str(codes[0]).isdigit():
        return int(codes[0])
    description = str(data.get("error_description") or data.get("error") or "")
    if description.startswith("AADSTS"):
        number = description[6:].split(":", 1)[0].strip()
        return int(number) if number.isdigit() else None
    return None


def entra_error(
    status: int,
    body: Any,
    who: str,
    subject: str | None,
    retry_after: float | None = None,
) -> SecretsbootError:
    """An Entra ID token-endpoint (or IMDS) error; ``subject``: the assertion's ``sub``."""
    code = entra_code(body)
    sub = subject or "the pod's service account"
    if code in ENTRA_PROPAGATING:
        return PropagationPendingError(
            f"federated credential for subject {sub} not found on {who} "
            f"(AADSTS{code}: {ENTRA_PROPAGATING[code]})",
            hint="run secretsboot provision (a new credential takes a minute or two to apply); "
            "check the issuer (the cluster's OIDC issuer URL), the subject "
            "system:serviceaccount:NAMESPACE:NAME and the audience api://AzureADTokenExchange",
        )
    if code == 7002138:
        return DeniedError(
            f"AADSTS7002138: the federated credential's subject on {who} matches {sub} only "
            "when case is ignored; Entra ID compares subjects case-sensitively",
            hint=f"set the credential's subject to exactly {sub} (secretsboot provision)",
        )
    if code in _ENTRA_CREDENTIAL:
        return DeniedError(
            f"Entra ID rejected {who}: AADSTS{code}",
            hint="check the client id, tenant and credential (secret or federated token)",
        )
    if status in (400, 401, 403):
        data = _lower_keys(body)
        text = f"AADSTS{code}" if code else str(data.get("error") or status)
        return DeniedError(f"Entra ID refused a token for {who}: {text}")
    if status == 404:
        return NotFoundError(f"no identity endpoint for {who} (HTTP 404)")
    return base_error(
        status, f"Entra ID token endpoint answered {status} for {who}", retry_after=retry_after
    )


# ---- Vault / OpenBao -------------------------------------------------------------------


#: words of Vault's azure auth login refusals (go-oidc's checks, verifyClaims, verifyResource)
_AZURE_LOGIN_REFUSALS = (
    "oidc:",
    "failed to verify signature",
    "not authorized",
    "token is not yet valid",
    "expected identities",
    "are required",
)


def vault_error(
    status: int,
    body: Any,
    what: str,
    who: str,
    *,
    login: bool = False,
    retry_after: float | None = None,
) -> SecretsbootError:
    """A Vault error (HTTP status + ``{"errors": [...]}``)."""
    errors = _lower_keys(body).get("errors")
    detail = "; ".join(str(e) for e in errors)[:200] if isinstance(errors, list) and errors else ""
    if login and status == 500 and any(w in detail for w in _AZURE_LOGIN_REFUSALS):
        # Vault's azure auth answers a refused token or binding with 500 (its plugin
        # returns a plain error): a denial to report, not an outage to retry
        status = 403
    if login and status in (400, 401, 403):
        hint = "run secretsboot provision (the Vault role or its bindings are missing)"
        if "invalid role" in detail or ("role" in detail and "not found" in detail):
            hint = "create the Vault role (secretsboot provision) or fix vault.auth.role"
        return DeniedError(f"Vault login refused for {who}: {detail or status}", hint=hint)
    if status in (401, 403):
        return DeniedError(
            f"Vault denied {who} reading {what}",
            hint="grant 'read' on this path in a policy of the role (secretsboot provision)",
        )
    message = (
        f"{what} not found in Vault" if status == 404 else f"Vault answered {status} for {what}"
    )
    if detail and status != 404:
        message += f": {detail}"
    return base_error(status, message, retry_after=retry_after)


# ---- Kubernetes ------------------------------------------------------------------------


def kubernetes_error(
    status: int, namespace: str, name: str, who: str, retry_after: float | None = None
) -> SecretsbootError:
    """A Kubernetes API error reading Secret ``namespace/name``."""
    where = f"Secret {namespace}/{name}"
    if status == 403:
        return DeniedError(
            f"Kubernetes denied {who} reading {where}",
            hint=f"add a Role with 'get' on secrets/{name} bound to the service account "
            "(secretsboot provision)",
        )
    if status == 401:
        return DeniedError(
            f"Kubernetes rejected the credentials of {who}",
            hint="the service-account token is expired or not for this cluster",
        )
    if status == 404:
        return base_error(status, f"{where} not found", hint=create_secret_hint(namespace, name))
    message = f"Kubernetes API answered {status} for {where}"
    return base_error(status, message, retry_after=retry_after)


def create_secret_hint(namespace: str, name: str, key: str = "KEY") -> str:
    """A missing k8s:// Secret is the operator's to create (provision never fills one)."""
    return (
        f"create it (kubectl -n {namespace} create secret generic {name} "
        f"--from-literal={key}=VALUE, or add the key); secretsboot never fills a primary Secret"
    )
