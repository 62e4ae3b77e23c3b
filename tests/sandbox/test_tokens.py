"""Signing keys, JWKS and verification reasons."""

from __future__ import annotations

import time

import jwt
import pytest

from secretsboot.sandbox.tokens import SigningKey, TokenError, jwks, unverified_claims, verify


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.shared("test-tokens")


def _claims(**over: object) -> dict[str, object]:
    now = int(time.time())
    base: dict[str, object] = {
        "iss": "https://issuer",
        "aud": ["api://a"],
        "sub": "s",
        "iat": now,
        "nbf": now,
        "exp": now + 60,
    }
    base.update(over)
    return base


def test_sign_verify_roundtrip(key: SigningKey) -> None:
    token = key.sign(_claims())
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    claims = verify(token, jwks([key]), audience="api://a", issuer="https://issuer")
    assert claims["sub"] == "s"
    assert unverified_claims(token)["aud"] == ["api://a"]


def test_shared_is_cached_and_jwk_shape(key: SigningKey) -> None:
    assert SigningKey.shared("test-tokens") is key
    jwk = key.public_jwk()
    assert set(jwk) == {"kty", "use", "alg", "kid", "n", "e"}
    assert jwk["e"] == "AQAB"
    assert key.kid == key.thumbprint()


@pytest.mark.parametrize(
    ("over", "audience", "issuer", "reason"),
    [
        ({"exp": 1}, "api://a", "https://issuer", "expired"),
        ({"nbf": int(time.time()) + 3600}, "api://a", "https://issuer", "not_yet_valid"),
        ({}, "api://other", "https://issuer", "bad_audience"),
        ({}, "api://a", "https://other", "bad_issuer"),
    ],
)
def test_verify_reasons(
    key: SigningKey, over: dict[str, object], audience: str, issuer: str, reason: str
) -> None:
    with pytest.raises(TokenError) as err:
        verify(key.sign(_claims(**over)), jwks([key]), audience=audience, issuer=issuer)
    assert err.value.reason == reason


def test_wrong_key_and_garbage(key: SigningKey) -> None:
    other = SigningKey.shared("test-tokens-other")
    impostor = SigningKey(other._private_key, kid=key.kid)  # same kid, other key
    with pytest.raises(TokenError) as err:
        verify(impostor.sign(_claims()), jwks([key]), audience=None, issuer=None)
    assert err.value.reason == "bad_signature"
    with pytest.raises(TokenError) as err:
        verify(other.sign(_claims()), jwks([key]), audience=None, issuer=None)
    assert err.value.reason == "unknown_key"
    with pytest.raises(TokenError) as err:
        verify("not.a.jwt", jwks([key]), audience=None, issuer=None)
    assert err.value.reason == "malformed"
    with pytest.raises(TokenError) as err:
        verify(
            jwt.encode(_claims(), "k" * 32, algorithm="HS256"),
            jwks([key]),
            audience=None,
            issuer=None,
        )
    assert err.value.reason == "malformed"
