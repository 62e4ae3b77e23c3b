"""Access tokens of the Entra ID fake: minted by Entra and IMDS, checked by ARM and Key Vault.

RS256 JWTs signed by the tenant's one key (published by :meth:`TokenIssuer.jwks`).
The token version follows the resource, as in Entra, where it is the resource
application's ``accessTokenAcceptedVersion``: Microsoft's first-party resources
(Key Vault, ARM, Graph, Storage, the database resources) get **v1** tokens
(``ver`` ``"1.0"``, ``iss`` and ``idp`` ``https://sts.windows.net/{tenant}/``,
``appid``/``appidacr``), whatever endpoint (v1 or v2.0) issued them; any other
resource (an app's ``api://...`` id, such as ``api://AzureADTokenExchange`` used
for Vault's jwt auth) gets **v2.0** tokens (``iss`` ``{authority}/{tenant}/v2.0``,
the issuer of the fake's discovery document, so a relying party such as OpenBao's
jwt auth can discover the JWKS from loopback; ``azp``/``azpacr``). Both carry
``aud`` (the resource as requested), ``oid`` and ``sub`` (the principal's object id),
``tid``, ``idtyp`` ``"app"``, and ``xms_mirid`` for a managed identity.
Example::

    issuer = TokenIssuer(state, SigningKey.shared("azure-entra"))
    issuer.authority = "https://127.0.0.1:8443"
    token, expires_in = issuer.mint(oid, client_id, "https://vault.azure.net", acr="2")
    claims = issuer.verify(token, VAULT_AUDIENCES)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from secretsboot.sandbox.azure.state import TOKEN_EXCHANGE_AUDIENCE, AzureState
from secretsboot.sandbox.tokens import SigningKey, TokenError, jwks, verify

TOKEN_LIFETIME_S = 3600
VAULT_RESOURCE = "https://vault.azure.net"
VAULT_AUDIENCES = (
    "https://vault.azure.net",
    "https://vault.azure.net/",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093",  # Key Vault's first-party application id
)
ARM_AUDIENCES = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)
KNOWN_RESOURCES = frozenset(
    a.rstrip("/")
    for a in (
        *VAULT_AUDIENCES[:2],
        *ARM_AUDIENCES,
        "https://graph.microsoft.com",
        "https://storage.azure.com",
        "https://ossrdbms-aad.database.windows.net",
        TOKEN_EXCHANGE_AUDIENCE,
    )
)
# resources whose tokens are v1 (first-party apps with accessTokenAcceptedVersion null/1)
V1_RESOURCES = frozenset(r for r in KNOWN_RESOURCES if not r.startswith("api://"))

__all__ = [
    "ARM_AUDIENCES",
    "KNOWN_RESOURCES",
    "V1_RESOURCES",
    "VAULT_AUDIENCES",
    "VAULT_RESOURCE",
    "TokenError",
    "TokenIssuer",
    "token_version",
]


class TokenIssuer:
    """The tenant's token factory and verifier (one signing key, published as JWKS)."""

    def __init__(self, state: AzureState, key: SigningKey) -> None:
        self.state = state
        self.key = key
        self.authority = ""  # the Entra fake's base URL, set once it listens

    @property
    def issuer(self) -> str:
        return f"{self.authority}/{self.state.tenant_id}/v2.0"

    @property
    def v1_issuer(self) -> str:
        return f"https://sts.windows.net/{self.state.tenant_id}/"

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        doc = jwks([self.key])
        for k in doc["keys"]:
            k["issuer"] = self.issuer
        return doc

    def mint(
        self,
        object_id: str,
        client_id: str,
        resource: str,
        *,
        acr: str = "1",
        managed_identity_id: str | None = None,
        lifetime_s: int = TOKEN_LIFETIME_S,
    ) -> tuple[str, int]:
        """An access token for ``resource`` and its lifetime in seconds (v1 or v2.0
        by resource, see the module docstring)."""
        now = int(time.time())
        v1 = token_version(resource) == "1.0"
        iss = self.v1_issuer if v1 else self.issuer
        claims: dict[str, Any] = {
            "aud": resource,
            "iss": iss,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime_s,
            "aio": uuid.uuid4().hex,
        }
        if v1:
            claims.update({"appid": client_id, "appidacr": acr, "idp": iss})
        else:
            claims.update({"azp": client_id, "azpacr": acr})
        claims.update(
            {
                "idtyp": "app",
                "oid": object_id,
                "rh": "0.sandbox.",
                "sub": object_id,
                "tid": self.state.tenant_id,
                "uti": uuid.uuid4().hex[:22],
                "ver": "1.0" if v1 else "2.0",
            }
        )
        if managed_identity_id:
            claims["xms_mirid"] = managed_identity_id
        return self.key.sign(claims), lifetime_s

    def verify(self, token: str, audiences: tuple[str, ...]) -> dict[str, Any]:
        """Signature, lifetime (5 min skew, as Azure services allow), audience, issuer
        (v2.0 or v1 form of this tenant) and ``tid``; raises :class:`TokenError`."""
        claims = verify(token, self.jwks(), audience=list(audiences), issuer=None, leeway=300)
        if claims.get("iss") not in (self.issuer, self.v1_issuer):
            raise TokenError("bad_issuer", f"issuer {claims.get('iss')!r} is not this tenant")
        if str(claims.get("tid", "")).lower() != self.state.tenant_id.lower():
            raise TokenError("bad_tenant", "token of another tenant")
        return claims


def token_version(resource: str) -> str:
    """``"1.0"`` for Microsoft's first-party resources, ``"2.0"`` for any other."""
    return "1.0" if resource.rstrip("/") in V1_RESOURCES else "2.0"
