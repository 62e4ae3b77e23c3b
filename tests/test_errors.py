"""One exception tree, one mapping to exit codes."""

from __future__ import annotations

import pytest

from secretsboot import errors as e


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (e.BadInputError("x"), 2),
        (e.SpecError("x", file="f", line=1, field="a"), 2),
        (e.DeniedError("x"), 3),
        (e.NotFoundError("x"), 4),
        (e.UnavailableError("x", retry_after=2.0), 5),
        (e.WriteError("x"), 6),
        (e.PlanChangesPending("x"), 10),
        (e.FindingsOverThreshold("x"), 11),
        (e.SecretsbootError("x"), 1),
        (RuntimeError("boom"), 1),
    ],
)
def test_exit_codes(exc: BaseException, code: int) -> None:
    assert e.exit_code_for(exc) == code


def test_exit_codes_are_distinct() -> None:
    values = [c.value for c in e.ExitCode]
    assert len(values) == len(set(values))


def test_spec_error_names_location_and_fix() -> None:
    err = e.SpecError(
        "unknown scheme 'kv'",
        file="s.yaml",
        line=14,
        field="services[2].secrets[0].from",
        hint="expected keyvault://",
    )
    assert (
        str(err)
        == "s.yaml:14 services[2].secrets[0].from: unknown scheme 'kv'; expected keyvault://"
    )


def test_spec_errors_needs_one() -> None:
    with pytest.raises(ValueError):
        e.SpecErrors([])
