"""The two entry points of ``fetch``/``run``: the fast argparse path and the Typer app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from secretsboot.cli import main as typer_main
from secretsboot.fetch._cli import main as fast_main


def test_fast_path_never_imports_typer(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "secretsboot", "fetch",
         "--config", str(tmp_path / "absent.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: " in result.stderr and "no such config file" in result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "secretsboot.fetch._cli" in imported
    assert not {"typer", "rich", "pydantic", "click"} & imported


@pytest.mark.parametrize("entry", ["fast", "typer"])
def test_both_entry_points_report_bad_input_alike(
    entry: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRETSBOOT_CONFIG", raising=False)
    monkeypatch.delenv("SECRETSBOOT_SECRETS", raising=False)
    args = ["fetch", "--out", str(tmp_path / "out")]
    code = fast_main(args) if entry == "fast" else typer_main(args)
    assert code == 2
    assert "no secrets configured" in capsys.readouterr().err


def test_env_only_config_and_success_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from secretsboot.fetch import runtime
    from secretsboot.secret import SecretValue

    monkeypatch.setenv("SECRETSBOOT_SECRETS", "db=k8s://db#pw")
    monkeypatch.setenv("SECRETSBOOT_OUT", str(tmp_path / "out"))
    monkeypatch.setattr(
        runtime,
        "fetch_secrets",
        lambda config, **kw: {"db": SecretValue("CANARY-cli")},
    )
    assert fast_main(["fetch"]) == 0
    assert (tmp_path / "out" / "db").read_text() == "CANARY-cli"
    err = capsys.readouterr().err
    assert "wrote 1 files for 1 secrets" in err
    assert "CANARY" not in err


def test_help_lists_fetch_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert typer_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "fetch" in out and "run" in out


def test_parse_fetch_and_run_command_lines() -> None:
    from secretsboot.fetch._cli import UsageError, parse

    command, opts, tail = parse(
        ["fetch", "-c", "f.yaml", "--out=/o", "--timeout", "5", "--owner", "10", "-v"]
    )
    assert (command, opts["config"], opts["out"], opts["timeout"], opts["owner"]) == (
        "fetch",
        "f.yaml",
        "/o",
        5.0,
        10,
    )
    assert opts["verbose"] is True and tail == []
    _, opts, tail = parse(["run", "-v", "--", "app", "--port", "80"])
    assert opts["verbose"] and tail == ["app", "--port", "80"]
    assert parse(["run", "app", "-x"])[2] == ["app", "-x"]
    for bad, words in [
        (["fetch", "--timeout", "soon"], "not a number"),
        (["fetch", "--client", "sdk"], "unknown option --client"),
        (["fetch", "--out"], "needs a value"),
        (["run", "--out", "/o", "--", "x"], "option of 'fetch'"),
        (["fetch", "--nope"], "unknown option"),
    ]:
        with pytest.raises(UsageError, match=words):
            parse(bad)


@pytest.mark.parametrize("entry", ["fast", "typer"])
def test_run_execs_with_the_secrets_added_to_the_environment(
    entry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from secretsboot.fetch import _cli, runtime
    from secretsboot.secret import SecretValue

    monkeypatch.setenv("SECRETSBOOT_SECRETS", "db-password=k8s://db#pw")
    monkeypatch.setattr(
        runtime, "fetch_secrets", lambda config, **kw: {"db-password": SecretValue("CANARY-run")}
    )
    seen: dict[str, object] = {}

    def fake_exec(file: str, args: list[str], env: dict[str, str]) -> None:
        seen.update(file=file, args=args, value=env.get("DB_PASSWORD"), path=env.get("PATH"))
        raise SystemExit(0)

    monkeypatch.setattr(_cli.os, "execvpe", fake_exec)
    args = ["run", "--timeout", "5", "--", "app", "--flag", "x"]
    if entry == "fast":
        with pytest.raises(SystemExit):
            _cli.main(args)
    else:
        assert typer_main(args) == 0  # the Typer app turns SystemExit into its code
    assert seen == {
        "file": "app",
        "args": ["app", "--flag", "x"],
        "value": "CANARY-run",
        "path": os.environ.get("PATH"),
    }
