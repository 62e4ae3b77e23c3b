"""The package's public names load lazily and import nothing heavy on their own."""

from __future__ import annotations

import subprocess
import sys

import secretsboot


def test_public_names_resolve() -> None:
    from secretsboot import FetchConfig, SecretValue, fetch_secrets, write_secrets

    assert callable(fetch_secrets) and callable(write_secrets)
    assert FetchConfig.__name__ == "FetchConfig"
    assert str(SecretValue("x")).startswith("sha256:")
    assert set(secretsboot.__all__) >= {"FetchConfig", "fetch_secrets", "SecretValue"}


def test_unknown_name_is_an_attribute_error() -> None:
    try:
        secretsboot.nope  # noqa: B018 - the lookup is the test
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_cheap() -> None:
    code = (
        "import sys, secretsboot; "
        "heavy = [m for m in ('pydantic', 'typer', 'rich', 'azure', 'hvac', 'kubernetes', "
        "'yaml') if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
