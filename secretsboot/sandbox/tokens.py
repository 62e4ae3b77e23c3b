"""RS256 signing keys, JWKS documents and token verification for the fakes.

The Kubernetes fake signs service-account tokens and the Entra ID fake signs
access tokens with a :class:`SigningKey`; relying parties (the fakes themselves,
OpenBao, the SDKs) verify them against the published JWKS.

Example::

    key = SigningKey.generate()
    token = key.sign({"iss": "https://issuer", "aud": "api://x", "sub": "me", "exp": ...})
    claims = verify(token, jwks([key]), audience="api://x", issuer="https://issuer")

RSA-2048 generation costs ~50-100 ms: :meth:`SigningKey.shared` returns one key
per name per process (the sandbox restarts often in tests; keys need not change).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ALGORITHM = "RS256"


def _b64u_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class TokenError(Exception):
    """A token failed verification; ``reason`` is a short machine-friendly word."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class SigningKey:
    """An RSA-2048 key that signs RS256 JWTs, with a ``kid``."""

    _shared: ClassVar[dict[str, SigningKey]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, private_key: rsa.RSAPrivateKey, kid: str | None = None) -> None:
        self._private_key = private_key
        self.kid = kid or self.thumbprint()

    @classmethod
    def generate(cls, kid: str | None = None) -> SigningKey:
        """A fresh key (~50-100 ms); ``kid`` defaults to the RFC 7638 thumbprint."""
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=2048), kid)

    @classmethod
    def shared(cls, name: str) -> SigningKey:
        """One key per ``name`` per process, generated on first use."""
        with cls._shared_lock:
            key = cls._shared.get(name)
            if key is None:
                key = cls._shared[name] = cls.generate()
            return key

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self._private_key.public_key()

    def thumbprint(self) -> str:
        numbers = self._private_key.public_key().public_numbers()
        canonical = json.dumps(
            {"e": _b64u_uint(numbers.e), "kty": "RSA", "n": _b64u_uint(numbers.n)},
            separators=(",", ":"),
            sort_keys=True,
        )
        digest = hashlib.sha256(canonical.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def sign(self, claims: Mapping[str, Any], headers: Mapping[str, Any] | None = None) -> str:
        """A compact RS256 JWS of ``claims`` with this key's ``kid`` in the header."""
        header = {"kid": self.kid, "typ": "JWT", **(headers or {})}
        return jwt.encode(dict(claims), self._private_key, algorithm=ALGORITHM, headers=header)

    def public_jwk(self) -> dict[str, str]:
        numbers = self._private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": ALGORITHM,
            "kid": self.kid,
            "n": _b64u_uint(numbers.n),
            "e": _b64u_uint(numbers.e),
        }

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives import serialization

        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode("ascii")

    def __repr__(self) -> str:
        return f"SigningKey(kid={self.kid!r})"


def jwks(keys: Iterable[SigningKey]) -> dict[str, list[dict[str, str]]]:
    """A JWKS document (``{"keys": [...]}``) of the public halves of ``keys``."""
    return {"keys": [k.public_jwk() for k in keys]}


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of ``token`` without checking anything (for routing, never for trust)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", f"not a JWT: {type(exc).__name__}") from None
    return dict(claims)


def verify(
    token: str,
    key_set: Mapping[str, Any],
    *,
    audience: str | Sequence[str] | None,
    issuer: str | None,
    leeway: float = 0,
) -> dict[str, Any]:
    """Check the signature (by ``kid``), ``exp``/``nbf``, audience and issuer.

    ``audience=None`` skips the audience check, ``issuer=None`` the issuer check.
    Raises :class:`TokenError` with ``reason`` one of ``malformed``, ``unknown_key``,
    ``bad_signature``, ``expired``, ``not_yet_valid``, ``bad_audience``, ``bad_issuer``.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError("malformed", f"not a JWT: {type(exc).__name__}") from None
    if header.get("alg") != ALGORITHM:
        raise TokenError("malformed", f"unsupported alg {header.get('alg')!r}")
    kid = header.get("kid")
    candidates = [k for k in key_set.get("keys", []) if kid is None or k.get("kid") == kid]
    if not candidates:
        raise TokenError("unknown_key", f"no key with kid {kid!r} in the key set")
    last: TokenError | None = None
    for jwk in candidates:
        public = jwt.PyJWK.from_dict(dict(jwk), algorithm=ALGORITHM).key
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=[ALGORITHM],
                audience=list(audience) if isinstance(audience, list | tuple) else audience,
                issuer=issuer,
                leeway=leeway,
                options={
                    "verify_aud": audience is not None,
                    "verify_iss": issuer is not None,
                    "require": ["exp"],
                },
            )
            return dict(claims)
        except jwt.InvalidSignatureError:
            last = TokenError("bad_signature", "signature does not verify")
        except jwt.ExpiredSignatureError:
            raise TokenError("expired", "token has expired") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("not_yet_valid", "token is not valid yet (nbf/iat)") from None
        except jwt.InvalidAudienceError:
            raise TokenError("bad_audience", f"audience is not {audience!r}") from None
        except jwt.InvalidIssuerError:
            raise TokenError("bad_issuer", f"issuer is not {issuer!r}") from None
        except jwt.PyJWTError as exc:
            raise TokenError("malformed", f"invalid token: {type(exc).__name__}") from None
    raise last or TokenError("unknown_key", "no usable key")
