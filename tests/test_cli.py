"""The CLI skeleton: command groups, global flags, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from secretsboot import __version__
from secretsboot.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "drone-delivery.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "secretsboot", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_lists_every_command_group() -> None:
    result = run("--help")
    assert result.returncode == 0
    for group in ("plan", "provision", "fetch", "run", "audit", "inject", "sandbox", "spec"):
        assert f" {group} " in result.stdout, group


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"secretsboot {__version__}"


def test_spec_validate_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(EXAMPLE)]) == 0
    assert "valid (5 services)" in capsys.readouterr().out


def test_spec_validate_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec", "validate", str(EXAMPLE), "--output", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "file": str(EXAMPLE),
        "valid": True,
        "services": 5,
    }


def test_spec_validate_bad_spec_is_exit_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "secretsboot.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace(
            "keyvault://kv-dd-delivery/delivery-redis-key", "kv://kv-dd-delivery/delivery-redis-key"
        )
    )
    result = run("spec", "validate", str(bad))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{bad}:" in result.stderr
    assert "services[0].secrets[1].from: unknown scheme 'kv'" in result.stderr


def test_quiet_prints_nothing_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--quiet", "spec", "validate", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == ""


def test_unknown_flag_is_a_usage_error() -> None:
    result = run("spec", "validate", "--bogus")
    assert result.returncode == 2


def test_schema_is_json() -> None:
    result = run("spec", "schema")
    assert result.returncode == 0
    assert json.loads(result.stdout)["title"].startswith("secretsboot spec")


def test_missing_spec_file_is_bad_input(tmp_path: Path) -> None:
    assert main(["spec", "validate", str(tmp_path / "absent.yaml")]) == 2
