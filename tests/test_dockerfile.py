"""The init image's Dockerfile, read the way the builder reads it.

tests/integration/test_init_image.py builds and runs the image for real (podman);
these checks are the quick ones: the base is a build argument, a numeric non-root
USER, an exec-form ENTRYPOINT, the wheel installed with --no-deps plus only the
fetch path's dependencies (pinned as CI pins them), and what fetch/run never import
removed from the image.
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
SCRIPT = ROOT / "scripts" / "build_init_image.sh"


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


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def test_the_base_is_a_build_argument(instructions: list[Instruction]) -> None:
    (arg,) = [i.args for i in instructions if i.keyword == "ARG" and i.stage == -1]
    name, _, default = arg.partition("=")
    assert name == "BASE_IMAGE"
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-bookworm", default), "a pinned default"
    froms = [i.args.split()[0] for i in instructions if i.keyword == "FROM"]
    assert froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"], "a build stage and a runtime stage"
    assert '--build-arg BASE_IMAGE="$BASE"' in SCRIPT.read_text(encoding="utf-8")


def test_runs_as_numeric_non_root_user(instructions: list[Instruction]) -> None:
    (user,) = [i.args for i in final_stage(instructions) if i.keyword == "USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "numeric uid, so runAsNonRoot can verify it"
    assert gid.isdigit() and int(gid) != 0
    from secretsboot.inject import DEFAULT_UID

    assert int(uid) == DEFAULT_UID


def test_exec_form_entrypoint_no_shell(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    (entrypoint,) = [i.args for i in runtime if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["python3", "-m", "secretsboot"]
    (cmd,) = [i.args for i in runtime if i.keyword == "CMD"]
    assert json.loads(cmd) == ["fetch", "--help"]
    assert not [i for i in runtime if i.keyword == "RUN"], "the runtime stage runs nothing"
    assert DEFAULT_IMAGE.startswith("ghcr.io/secretsboot/secretsboot:")
    assert FETCH_ARGS[0] == "fetch"


def test_runtime_env_is_read_only_root_friendly(instructions: list[Instruction]) -> None:
    env = " ".join(i.args for i in final_stage(instructions) if i.keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONPATH=/opt/secretsboot/lib" in env
    build = " ".join(i.args for i in instructions if i.keyword == "RUN")
    assert "compileall" in build, "bytecode compiled at build time, nothing written at run time"


def _pip_installs(command: str) -> list[list[str]]:
    installs = []
    for part in re.split(r"&&|;", command):
        words = shlex.split(part)
        if "pip" in words and "install" in words:
            installs.append(words[words.index("install") + 1 :])
    return installs


def test_the_wheel_goes_in_without_dependencies_plus_the_fetch_paths_own(
    instructions: list[Instruction],
) -> None:
    runs = [i for i in instructions if i.keyword == "RUN"]
    assert all(i.stage == 0 for i in runs), "build steps live in the build stage"
    (words,) = [w for r in runs for w in _pip_installs(r.args)]
    assert {"--no-deps", "--no-index"} <= set(words)
    assert [w for w in words if w.startswith("/")] == ["/opt/secretsboot/lib", "/wheels/*.whl"]
    script = SCRIPT.read_text(encoding="utf-8")
    # the wheels: ours without dependencies, and PyYAML pinned by CI's constraints
    assert 'pip wheel --quiet --no-deps --wheel-dir "$CONTEXT/wheels" .' in script
    assert '-c constraints.txt \\\n    --dest "$CONTEXT/wheels" PyYAML' in script


def test_what_fetch_never_imports_is_removed(instructions: list[Instruction]) -> None:
    (run,) = [i.args for i in instructions if i.keyword == "RUN"]
    removed = set(run.split("rm -rf ", 1)[1].split(";", 1)[0].split())
    package = ROOT / "secretsboot"
    for name in ("cli", "provision", "audit", "sandbox", "inject", "spec"):
        assert name in removed, name
    for name in removed:
        assert (package / name).exists(), f"rm -rf {name}: no such part of the package"


def test_the_context_holds_only_the_wheels(instructions: list[Instruction]) -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [i for i in instructions if i.keyword == "COPY" and "--from=" not in i.args]
    assert sorted(shlex.split(i.args)[0] for i in copies) == ["pip/", "wheels/"]
    for ins in copies:
        assert not _ignored(shlex.split(ins.args)[0], patterns)
    for path in (".venv", ".git", "tests", ".secretsboot-sandbox", "secretsboot", "README.md"):
        assert _ignored(path, patterns), path


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
