"""One CLI language across every command (issue 13, finding 6).

Walks every command of the Typer app (and the init container's own fetch/run
parser) and checks the cross-command rules:

- the spec is ``-f/--file`` wherever it is taken (``--spec`` nowhere);
- ``-o`` is always ``--output``, and ``--output`` is always a format with choices;
- no short flag means two things across commands;
- a choice shows its choices, a plain flag shows no ``<bool>`` metavar;
- ``-q`` silences everything but errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer._click import Context  # the Click Typer vendors (it has no public Option type)
from typer.core import TyperOption

from secretsboot.cli import command, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "drone-delivery.yaml"


def walk(cmd: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    yield " ".join(path) or "secretsboot", cmd
    for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
        yield from walk(sub, (*path, name))


def options() -> list[tuple[str, TyperOption]]:
    return [
        (where, p)
        for where, cmd in walk(command())
        for p in cmd.params
        if isinstance(p, TyperOption)
    ]


def is_choice(opt: TyperOption) -> bool:
    return bool(opt.type_descriptor.is_choice)


def fetch_options() -> list[tuple[str, list[str]]]:
    """(long name, its short names) of the init container's own fetch/run parser."""
    from secretsboot.fetch import _cli

    out = []
    for name in ("fetch", "run"):
        for action in _cli.build_parser(name)._actions:
            longs = [o for o in action.option_strings if o.startswith("--")]
            shorts = [o for o in action.option_strings if not o.startswith("--")]
            if longs:
                out.append((longs[0], shorts))
    return out


def test_the_spec_is_dash_f_file_everywhere() -> None:
    for where, opt in options():
        if "--spec" in opt.opts:  # an older spelling may stay, as an alias of --file
            assert "--file" in opt.opts, f"{where}: the spec is -f/--file, not --spec"
        if "-f" in opt.opts:
            assert "--file" in opt.opts, f"{where}: -f means --file, not {opt.opts}"
        if "--file" in opt.opts:
            assert "-f" in opt.opts, f"{where}: --file has its short form -f"


def test_dash_o_is_always_the_output_format_with_choices() -> None:
    for where, opt in options():
        if "-o" in opt.opts or "--output" in opt.opts:
            assert sorted(opt.opts) == ["--output", "-o"], (
                f"{where}: -o is --output, the format ({opt.opts})"
            )
            assert is_choice(opt), f"{where}: --output is a choice of formats"
    for long, shorts in fetch_options():
        if "-o" in shorts:
            assert long == "--output", f"fetch: -o is the output format, not {long}"


def test_no_short_flag_means_two_things() -> None:
    meaning: dict[str, set[str]] = {}
    for where, opt in options():
        longs = [o for o in opt.opts + opt.secondary_opts if o.startswith("--")]
        for short in (o for o in opt.opts if not o.startswith("--")):
            meaning.setdefault(short, set()).update(f"{lg} ({where})" for lg in longs[:1])
    for long, shorts in fetch_options():
        for short in shorts:
            meaning.setdefault(short, set()).add(f"{long} (fetch)")
    clashes = {}
    for short, uses in meaning.items():
        longs = {u.split(" ")[0] for u in uses}
        if len(longs) > 1:
            clashes[short] = sorted(uses)
    assert not clashes, f"short flags with two meanings: {clashes}"


def test_choices_are_shown_and_flags_show_no_metavar() -> None:
    for where, cmd in walk(command()):
        ctx = Context(cmd, info_name=where)
        for p in cmd.params:
            if not isinstance(p, TyperOption):
                continue
            shown = p.display_type_rich(ctx)
            if p.is_flag:
                assert not shown, f"{where} {p.opts[0]}: a flag shows no metavar ({shown})"
            if is_choice(p):
                assert shown and "|" in shown, f"{where} {p.opts[0]}: show the choices ({shown})"
            elif not p.is_flag and re.search(r"\b\w+\|\w+\|\w+\b", p.help or ""):
                # the help lists the only values it takes: make it a choice, shown as one
                raise AssertionError(f"{where} {p.opts[0]}: a choice shown as {shown}")


def test_help_never_shows_a_bool_metavar(capsys: pytest.CaptureFixture[str]) -> None:
    for where, _cmd in walk(command()):
        args = [*(where.split() if where != "secretsboot" else []), "--help"]
        assert main(args) == 0, where
        assert "<bool>" not in capsys.readouterr().out, f"{where} --help shows <bool>"


def test_quiet_prints_nothing_on_success(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["-q", "spec", "validate", str(EXAMPLE)]) == 0
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
