"""Atomic output: all files or nothing new, safe folders, modes and owners."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from secretsboot.errors import WriteError
from secretsboot.fetch import writer
from secretsboot.fetch.writer import OutputFile, dotenv_text, json_text, write_atomic
from secretsboot.secret import SecretValue


def files(n: int) -> list[OutputFile]:
    return [OutputFile(f"f{i}", SecretValue(f"CANARY-{i}")) for i in range(n)]


def test_writes_every_file_with_its_mode_and_no_leftovers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_atomic(out, [*files(2), OutputFile("g", SecretValue(b"\x00bin"), 0o440)])
    assert sorted(os.listdir(out)) == ["f0", "f1", "g"]
    assert (out / "f1").read_text() == "CANARY-1"
    assert (out / "g").read_bytes() == b"\x00bin"
    assert stat.S_IMODE(os.stat(out / "f0").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(out / "g").st_mode) == 0o440


@pytest.mark.parametrize("fail_at", [0, 2, 4])
def test_a_failed_nth_write_leaves_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "f1").write_text("old")
    real = writer._write_one
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        if calls["n"] == fail_at:
            raise WriteError("disk full")
        calls["n"] += 1
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write_one", flaky)
    with pytest.raises(WriteError, match="disk full"):
        write_atomic(out, files(5))
    assert os.listdir(out) == ["f1"]
    assert (out / "f1").read_text() == "old"


def test_a_failed_publish_restores_the_old_set(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "f0").write_text("old0")
    (out / "f3").mkdir()  # occupies the name of the 4th file
    with pytest.raises(WriteError, match="cannot put f3"):
        write_atomic(out, files(5))
    assert sorted(os.listdir(out)) == ["f0", "f3"]
    assert (out / "f0").read_text() == "old0"


def test_a_created_folder_is_removed_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise WriteError("boom")

    monkeypatch.setattr(writer, "_write_one", boom)
    with pytest.raises(WriteError):
        write_atomic(tmp_path / "new", files(1))
    assert not (tmp_path / "new").exists()


def test_existing_symlinks_in_the_folder_are_replaced_not_followed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (out / "f0").symlink_to(victim)
    write_atomic(out, files(1))
    assert victim.read_text() == "keep"
    assert not (out / "f0").is_symlink()
    assert (out / "f0").read_text() == "CANARY-0"


def test_symlinked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(WriteError, match="symbolic link"):
        write_atomic(tmp_path / "link", files(1))
    assert os.listdir(tmp_path / "real") == []


def test_not_a_folder_and_missing_parent_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="not a folder"):
        write_atomic(tmp_path / "file", files(1))
    with pytest.raises(WriteError, match="does not exist"):
        write_atomic(tmp_path / "a" / "b", files(1))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_world_writable_folder_of_someone_else_is_refused(tmp_path: Path, mode: int) -> None:
    out = tmp_path / "out"
    out.mkdir()
    os.chown(out, 65534, 65534)
    out.chmod(mode)
    with pytest.raises(WriteError, match="writable by every user"):
        write_atomic(out, files(1))
    assert os.listdir(out) == []


def test_own_world_writable_folder_is_tightened(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    write_atomic(out, files(1))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", ""])
def test_names_that_could_escape_are_refused_at_write_time(tmp_path: Path, name: str) -> None:
    with pytest.raises(WriteError, match="refusing to write"):
        write_atomic(tmp_path / "out", [OutputFile(name, SecretValue("x"))])
    assert not (tmp_path / "escape").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_owner_and_group(tmp_path: Path) -> None:
    write_atomic(tmp_path / "o", files(1), owner=1000, group=2000)
    st = os.stat(tmp_path / "o" / "f0")
    assert (st.st_uid, st.st_gid) == (1000, 2000)


def test_dotenv_and_json_bundles_escape_values() -> None:
    values = {"A": SecretValue('x"y$z\\\nw'), "B": SecretValue("plain")}
    assert dotenv_text(values).reveal() == 'A="x\\"y\\$z\\\\\\nw"\nB="plain"\n'
    import json

    assert json.loads(json_text(values).reveal()) == {"A": 'x"y$z\\\nw', "B": "plain"}
    assert "plain" not in repr(OutputFile("b", values["B"]))
