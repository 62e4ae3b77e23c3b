"""The init-container image's Dockerfile, checked without a Docker engine.

No engine can run here, so this reads the Dockerfile the way the builder does
(continuation lines, ARG substitution in FROM, stages) and checks what can be
checked: pinned bases, a numeric non-root USER, the exec-form ENTRYPOINT, the
install step matching CI's, and that every file it copies exists and is not
excluded by .dockerignore.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from secretsboot.inject import DEFAULT_IMAGE, FETCH_ARGS

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    out: list[Instruction] = []
    stage = -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, args.strip()))
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text(encoding="utf-8"))


def global_args(instructions: list[Instruction]) -> dict[str, str]:
    args = {}
    for ins in instructions:
        if ins.keyword == "ARG" and ins.stage == -1:
            name, _, default = ins.args.partition("=")
            args[name] = default
    return args


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_base_images_are_pinned_python_311_slim(instructions: list[Instruction]) -> None:
    args = global_args(instructions)
    froms = [i.args for i in instructions if i.keyword == "FROM"]
    assert len(froms) == 2, "a builder stage and a runtime stage"
    for text in froms:
        image = text.split()[0]
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        name, _, tag = image.partition(":")
        assert name == "python", image
        assert re.fullmatch(r"3\.11\.\d+-slim(-\w+)?", tag), f"{image}: pin an exact 3.11.x slim"
        assert "latest" not in image


def test_no_latest_anywhere(instructions: list[Instruction]) -> None:
    for ins in instructions:
        assert ":latest" not in ins.args, ins


def test_runs_as_numeric_non_root_user(instructions: list[Instruction]) -> None:
    users = [i.args for i in final_stage(instructions) if i.keyword == "USER"]
    assert users, "the runtime stage must set USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric uid, so runAsNonRoot can verify it"
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # the uid inject gives the init container when the app's user is unknown
    from secretsboot.inject import DEFAULT_UID

    assert int(uid) == DEFAULT_UID


def test_exec_form_entrypoint_no_shell(instructions: list[Instruction]) -> None:
    stage = final_stage(instructions)
    (entrypoint,) = [i.args for i in stage if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["secretsboot"]
    for ins in stage:
        if ins.keyword == "CMD":
            assert isinstance(json.loads(ins.args), list), "exec-form CMD"
        assert ins.keyword != "RUN", "the runtime stage runs nothing at build (no shell needed)"
    # the manifests' args go straight to this entrypoint
    assert DEFAULT_IMAGE.startswith("ghcr.io/secretsboot/secretsboot:")
    assert FETCH_ARGS[0] == "fetch"


def test_runtime_env_is_read_only_root_friendly(instructions: list[Instruction]) -> None:
    env = " ".join(i.args for i in final_stage(instructions) if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    build = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "compileall" in build, "bytecode compiled at build time, nothing written at run time"


def _pip_installs(command: str) -> list[list[str]]:
    installs = []
    for part in re.split(r"&&|;", command):
        words = shlex.split(part)
        if "pip" in words and "install" in words:
            installs.append(words[words.index("install") + 1 :])
    return installs


def test_install_matches_ci(instructions: list[Instruction]) -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci_installs = [
        w for line in ci.splitlines() if "pip install" in line for w in _pip_installs(line)
    ]
    ci_project = [w for w in ci_installs if "-e" in w]
    assert ci_project, "CI installs the project"
    assert "-c" in ci_project[0]
    ci_constraints = ci_project[0][ci_project[0].index("-c") + 1]

    runs = [i for i in instructions if i.keyword == "RUN"]
    installs = [w for r in runs for w in _pip_installs(r.args)]
    assert len(installs) == 1, installs
    (words,) = installs
    assert "-c" in words and words[words.index("-c") + 1] == ci_constraints
    targets = [w for w in words if not w.startswith("-") and w != ci_constraints]
    assert targets == ["/wheels/secretsboot-*.whl"], "the wheel from the builder stage"
    assert not any("[" in w for w in words), "no extras: runtime dependencies only"
    assert all(i.stage == 0 for i in runs), "build steps live in the builder stage"
    assert any("pip wheel" in r.args and "--no-deps" in r.args for r in runs)


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        hit = any(fnmatch.fnmatch(p, pat) for p in prefixes) or (
            pat.startswith("**/") and any(fnmatch.fnmatch(x, pat[3:]) for x in parts)
        )
        if hit:
            ignored = not negate
    return ignored


def test_copied_files_exist_and_are_not_ignored(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [i for i in instructions if i.keyword == "COPY" and "--from=" not in i.args]
    assert copies
    for ins in copies:
        *sources, _dest = shlex.split(ins.args)
        for src in sources:
            assert (ROOT / src).exists(), f"COPY {src}: no such file in the build context"
            assert not _ignored(src, patterns), f"COPY {src}: excluded by .dockerignore"
    # pyproject's readme must be in the context for the wheel to build
    assert not _ignored("README.md", patterns)
    # and the heavy or secret-prone things stay out
    for path in (".venv", ".git", "tests", ".secretsboot-sandbox", "secretsboot/__pycache__"):
        assert _ignored(path, patterns), path


def test_dockerignore_helper_can_fail() -> None:
    assert _ignored("a/__pycache__/x.pyc", ["**/__pycache__"])
    assert not _ignored("secretsboot/cli.py", ["**/__pycache__", "tests"])
    assert not _ignored("keep", ["*", "!keep"])


def test_parse_joins_continuations() -> None:
    got = parse("FROM a:1 AS b\n# c\nRUN x \\\n  # inner\n && y\nUSER 1\n")
    assert [(i.stage, i.keyword, i.args) for i in got] == [
        (0, "FROM", "a:1 AS b"),
        (0, "RUN", "x  && y"),
        (0, "USER", "1"),
    ]
