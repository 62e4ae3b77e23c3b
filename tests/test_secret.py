"""SecretValue shows a fingerprint everywhere a value could leak."""

from __future__ import annotations

import copy
import json
import logging
import pickle

import pytest
from rich.console import Console

from secretsboot import SecretValue, fingerprint

CANARY = "CANARY-3f9c1d7e-do-not-print"


def test_reveal_returns_the_value() -> None:
    assert SecretValue(CANARY).reveal() == CANARY
    assert SecretValue(CANARY.encode()).reveal_bytes() == CANARY.encode()


@pytest.mark.parametrize(
    "render",
    [
        repr,
        str,
        lambda v: f"{v}",
        lambda v: f"{v!r}",
        lambda v: f"{v:>40}",
        lambda v: "%s" % v,  # noqa: UP031 - old-style formatting is exactly what we test
        lambda v: "%r" % (v,),  # noqa: UP031
        lambda v: "{}".format(v),  # noqa: UP032
        lambda v: str([v, {"k": v}]),
        lambda v: json.dumps({"v": v}, default=str),
    ],
)
def test_no_rendering_shows_the_value(render: object) -> None:
    value = SecretValue(CANARY)
    text = render(value)  # type: ignore[operator]
    assert CANARY not in text
    assert "sha256:" in text


def test_logging_shows_fingerprint_only(caplog: pytest.LogCaptureFixture) -> None:
    value = SecretValue(CANARY)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("secretsboot.test").warning("got %s and %r", value, value)
        logging.getLogger("secretsboot.test").warning("as arg", extra={"v": value})
    assert CANARY not in caplog.text
    assert value.fingerprint in caplog.text


def test_rich_shows_fingerprint_only() -> None:
    console = Console(record=True, width=120)
    console.print(SecretValue(CANARY), {"x": SecretValue(CANARY)})
    assert CANARY not in console.export_text()


def test_cannot_be_pickled() -> None:
    with pytest.raises(TypeError):
        pickle.dumps(SecretValue(CANARY))


def test_deepcopy_and_equality() -> None:
    value = SecretValue(CANARY)
    assert copy.deepcopy(value) == value
    assert SecretValue("a") != SecretValue("b")
    assert value != CANARY  # never equal to a plain string: no accidental comparisons
    assert len({SecretValue("a"), SecretValue("a")}) == 1


def test_fingerprint_is_stable_and_short() -> None:
    assert fingerprint("abc") == "sha256:ba7816bf8f01"
    assert SecretValue("abc").fingerprint == fingerprint(b"abc")


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        SecretValue(123)  # type: ignore[arg-type]


def test_secret_in_exception_message_shows_fingerprint() -> None:
    value = SecretValue(CANARY)
    with pytest.raises(ValueError) as info:
        raise ValueError(f"bad value {value}")
    assert CANARY not in str(info.value)
