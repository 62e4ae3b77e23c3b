"""A fallback Secret that still holds provision's placeholder is not a value."""

from __future__ import annotations

import base64

import pytest

from secretsboot.backends.kubernetes import extract
from secretsboot.errors import NotFoundError
from secretsboot.refs import Ref
from secretsboot.secret import FALLBACK_PLACEHOLDER

REF = Ref.parse("k8s://orders-fallback#password")


def _secret(value: bytes) -> dict[str, object]:
    return {"data": {"password": base64.b64encode(value).decode()}}


def test_placeholder_is_not_found_so_the_chain_goes_on() -> None:
    with pytest.raises(NotFoundError) as info:
        extract(_secret(FALLBACK_PLACEHOLDER.encode()), REF, "shop")
    assert "placeholder" in str(info.value)
    assert "--sync-fallbacks" in str(info.value)


def test_a_real_value_is_returned() -> None:
    value = extract(_secret(b"CANARY-real-value"), REF, "shop")
    assert value.reveal() == "CANARY-real-value"


def test_provision_writes_the_same_placeholder_fetch_refuses() -> None:
    from secretsboot.provision.desired import PLACEHOLDER

    assert PLACEHOLDER == FALLBACK_PLACEHOLDER
