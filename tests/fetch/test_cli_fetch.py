"""``fetch``/``run``: one argparse definition, reached from the console script and the Typer app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from test_runtime import FakeStore, cfg

from secretsboot.cli import main as typer_main
from secretsboot.errors import DeniedError, NotFoundError
from secretsboot.fetch import check
from secretsboot.fetch._cli import build_parser
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


@pytest.mark.parametrize("entry", ["fast", "typer"])
def test_both_entry_points_print_the_one_help(
    entry: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = fast_main(["fetch", "--help"]) if entry == "fast" else typer_main(["fetch", "--help"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: secretsboot fetch")
    for flag in ("--out DIR", "--check", "-o {table,json}, --output {table,json}", "-q, --quiet"):
        assert flag in out, flag
    assert "143 SIGTERM" in out


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
    assert fast_main(["fetch", "-q"]) == 0
    assert capsys.readouterr().err == ""  # -q: errors only


def test_help_lists_fetch_and_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert typer_main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "fetch" in out and "run" in out


def test_one_cli_language() -> None:
    fetch = {a.dest: a.option_strings for a in build_parser("fetch")._actions}
    assert fetch["out"] == ["--out"]  # the folder has no short flag
    assert fetch["output"] == ["-o", "--output"]  # -o is a format, as everywhere
    assert fetch["config"] == ["-c", "--config"]
    assert fetch["quiet"] == ["-q", "--quiet"]
    run = {a.dest for a in build_parser("run")._actions}
    assert "out" not in run and "check" not in run


def test_parse_fetch_and_run_command_lines(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser("fetch").parse_args(
        ["-c", "f.yaml", "--out=/o", "--timeout", "5", "--owner", "10", "-v"]
    )
    assert (args.config, args.out, args.timeout, args.owner, args.verbose) == (
        "f.yaml", "/o", 5.0, 10, True,
    )  # fmt: skip
    run = build_parser("run")
    assert run.parse_args(["-q", "--", "app", "--port", "80"]).command == [
        "--", "app", "--port", "80",
    ]  # fmt: skip
    assert run.parse_args(["app", "-x"]).command == ["app", "-x"]
    for bad, words in [
        (["fetch", "--timeout", "soon"], "invalid float value"),
        (["fetch", "--client", "sdk"], "unrecognized arguments"),  # one client now
        (["fetch", "--out"], "expected one argument"),
        (["fetch", "-o", "/var/run/secrets"], "invalid choice"),  # -o is not the folder
        (["run", "--out", "/o", "--", "x"], "unrecognized arguments"),
        (["fetch", "--nope"], "unrecognized arguments"),
    ]:
        assert fast_main(bad) == 2
        assert words in capsys.readouterr().err


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


def test_check_reports_every_secret_and_keeps_going_after_a_failure() -> None:
    store = FakeStore(
        "k8s",
        {
            "k8s://a#k": "CANARY-a",
            "k8s://b#k": DeniedError("forbidden", hint="grant get on b"),
            "k8s://c2#k": "CANARY-c",
        },
    )
    config = cfg("a=k8s://a#k;b=k8s://b#k;c=k8s://c1#k|k8s://c2#k;d=k8s://d#k")
    results = check.check_secrets(config, timeout=2, backends={"k8s": store})
    assert [(r.name, r.ok, r.source) for r in results] == [
        ("a", True, "k8s://a#k"),
        ("b", False, "k8s://b#k"),
        ("c", True, "k8s://c2#k"),  # the fallback answered
        ("d", False, "k8s://d#k"),
    ]
    assert results[0].fingerprint and results[0].fingerprint.startswith("sha256:")
    assert isinstance(results[3].error, NotFoundError)
    assert check.exit_code(results) == 3  # as fetch: the first failure's code
    table = check.render(results)
    assert "CANARY" not in table and "CANARY" not in check.render(results, "json")
    lines = table.splitlines()
    assert lines[1].startswith("FAIL  b") and "as fake identity" in lines[1]
    assert "grant get on b" in lines[1]
    assert lines[-1] == "2 of 4 secrets fetched; nothing was written"
