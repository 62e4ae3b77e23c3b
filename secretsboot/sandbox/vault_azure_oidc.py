"""How Vault's ``auth/azure`` checks an Entra ID token: go-oidc's verifier, its order and words.

Vault builds its verifier from Entra's **v1** discovery document
(``{authority}{tenant}/.well-known/openid-configuration``): the expected issuer
is that document's ``issuer`` (``https://sts.windows.net/{tenant}/``), the keys
come from its ``jwks_uri`` (fetched over HTTPS, refetched once when no cached key
verifies), the audience is the mount's configured ``resource``, and only RS256 is
accepted. go-oidc checks, in this order: the token parses; the issuer; the
audience; the expiry; ``nbf`` (five minutes of leeway); the algorithm; the
signature. Each failure has go-oidc's message, which Vault answers with status
500 (``{"errors": ["oidc: ..."]}``): a v2.0 token (``iss`` ending in ``/v2.0``) is
refused with "id token issued by a different provider", as in Vault.

Example::

    verifier = Verifier.discover("https://127.0.0.1:8443/", tenant, resource, ca_path)
    claims = verifier.verify(token)          # raises LoginError with Vault's message
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt

#: go-oidc's leeway on ``nbf`` (its comment: what other OIDC providers do for clock skew)
NBF_LEEWAY_S = 300
_FETCH_TIMEOUT_S = 5.0


class LoginError(Exception):
    """A login refused with Vault's ``status`` and message (never a token or secret)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def go_time(seconds: float) -> str:
    """A Unix time as Go prints a ``time.Time`` in UTC: ``2026-12-04 22:00:00 +0000 UTC``."""
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def go_quote_list(items: list[str]) -> str:
    """Go's ``%q`` of a ``[]string``: ``["a" "b"]``."""
    return "[" + " ".join(json.dumps(i) for i in items) + "]"


def _b64_json(part: str) -> Any:
    padded = part + "=" * (-len(part) % 4)
    return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def _fetch_json(url: str, context: ssl.SSLContext) -> Any:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=_FETCH_TIMEOUT_S, context=context) as resp:  # noqa: S310
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            body = exc.read().decode("utf-8", "replace")[:300]
        raise LoginError(500, f"{exc.code} {exc.reason}: {body}") from None
    except (OSError, ValueError) as exc:
        raise LoginError(500, f'Get "{url}": {exc}') from None


class Verifier:
    """The token verifier of one configured mount (issuer, JWKS URL, audience)."""

    def __init__(self, issuer: str, jwks_url: str, audience: str, context: ssl.SSLContext):
        self.issuer = issuer
        self.jwks_url = jwks_url
        self.audience = audience
        self._context = context
        self._keys: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @classmethod
    def discover(
        cls, authority: str, tenant_id: str, resource: str, ca_path: Path | None
    ) -> Verifier:
        """Read the v1 discovery document as Vault does (issuer and ``jwks_uri``)."""
        context = ssl.create_default_context(cafile=str(ca_path) if ca_path else None)
        url = f"{authority.rstrip('/')}/{tenant_id}/.well-known/openid-configuration"
        doc = _fetch_json(url, context)
        if not isinstance(doc, dict):
            raise LoginError(500, "unable to unmarshal discovery url: not a JSON object")
        return cls(str(doc.get("issuer", "")), str(doc.get("jwks_uri", "")), resource, context)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims, checked in go-oidc's order; raises :class:`LoginError`."""
        parts = token.split(".")
        if len(parts) < 2:
            raise LoginError(500, f"oidc: malformed jwt, expected 3 parts got {len(parts)}")
        try:
            claims = _b64_json(parts[1])
        except (ValueError, UnicodeDecodeError) as exc:
            raise LoginError(500, f"oidc: malformed jwt payload: {exc}") from None
        if not isinstance(claims, dict):
            raise LoginError(500, "oidc: failed to unmarshal claims: not a JSON object")
        self._check_claims(claims)
        self._check_signature(token)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        issuer = str(claims.get("iss", ""))
        if issuer != self.issuer:
            raise LoginError(
                500,
                f"oidc: id token issued by a different provider, expected "
                f"{json.dumps(self.issuer)} got {json.dumps(issuer)}",
            )
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else [str(a) for a in aud or []]
        if self.audience not in audiences:
            raise LoginError(
                500,
                f"oidc: expected audience {json.dumps(self.audience)} got "
                f"{go_quote_list(audiences)}",
            )
        now = time.time()
        exp = _number(claims.get("exp"))
        if exp < now:
            raise LoginError(500, f"oidc: token is expired (Token Expiry: {go_time(exp)})")
        nbf = claims.get("nbf")
        if nbf is not None and now + NBF_LEEWAY_S < _number(nbf):
            raise LoginError(
                500,
                f"oidc: current time {go_time(now)} before the nbf (not before) time: "
                f"{go_time(_number(nbf))}",
            )

    def _check_signature(self, token: str) -> None:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise LoginError(500, f"oidc: malformed jwt: {exc}") from None
        alg = str(header.get("alg", ""))
        if alg != "RS256":
            raise LoginError(
                500,
                'oidc: id token signed with unsupported algorithm, expected ["RS256"] '
                f"got {json.dumps(alg)}",
            )
        kid = str(header.get("kid", ""))
        with self._lock:
            keys = self._keys
        if self._verifies(token, keys, kid):
            return
        keys = self._refresh()  # an unknown or rotated key: fetch the set once more
        if not self._verifies(token, keys, kid):
            raise LoginError(500, "failed to verify signature: failed to verify id token signature")

    def _refresh(self) -> list[dict[str, Any]]:
        doc = _fetch_json(self.jwks_url, self._context)
        keys = [k for k in (doc or {}).get("keys") or [] if isinstance(k, dict)]
        if not keys:
            raise LoginError(
                500, "failed to verify signature: fetching keys oidc: no keys in the key set"
            )
        with self._lock:
            self._keys = keys
        return keys

    @staticmethod
    def _verifies(token: str, keys: list[dict[str, Any]], kid: str) -> bool:
        for jwk in keys:
            if kid and jwk.get("kid") not in ("", None, kid):
                continue
            try:
                key = jwt.PyJWK(jwk, algorithm="RS256").key
                jwt.api_jws.PyJWS().decode_complete(token, key, algorithms=["RS256"])
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
            return True
        return False


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0
