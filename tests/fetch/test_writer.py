"""Crash-atomic publish (kubelet's AtomicWriter layout): whole sets, safe folders, rollback."""

from __future__ import annotations

import json
import os
import signal
import stat
from pathlib import Path

import pytest

from secretsboot.errors import WriteError
from secretsboot.fetch import writer
from secretsboot.fetch.writer import DATA, OutputFile, dotenv_text, json_text, publish
from secretsboot.secret import SecretValue


def files(n: int, tag: str = "CANARY") -> list[OutputFile]:
    return [OutputFile(f"f{i}", SecretValue(f"{tag}-{i}")) for i in range(n)]


def folders(out: Path) -> list[str]:
    """The timestamped folders (secret copies) in ``out``."""
    return sorted(e for e in os.listdir(out) if writer._TIMESTAMPED.match(e))


def visible(out: Path) -> dict[str, str]:
    """What a reader sees through the per-name links."""
    return {
        e: (out / e).read_text()
        for e in sorted(os.listdir(out))
        if not e.startswith("..") and (out / e).is_file()
    }


def test_layout_is_kubelets_links_into_one_private_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    publish(out, [*files(2), OutputFile("g", SecretValue(b"\x00bin"), 0o440)])
    [folder] = folders(out)
    assert sorted(os.listdir(out)) == sorted([folder, DATA, "f0", "f1", "g"])
    assert os.readlink(out / DATA) == folder
    for name in ("f0", "f1", "g"):
        assert os.readlink(out / name) == f"{DATA}/{name}"
    assert (out / "f1").read_text() == "CANARY-1"
    assert (out / "g").read_bytes() == b"\x00bin"
    assert stat.S_IMODE(os.stat(out / "f0").st_mode) == 0o400
    assert stat.S_IMODE(os.stat(out / "g").st_mode) == 0o440
    # group bits on a file open the folder to the group (search + list), never to others
    assert stat.S_IMODE(os.stat(out / folder).st_mode) == 0o750


def test_private_folder_is_0700_when_no_file_is_shared(tmp_path: Path) -> None:
    publish(tmp_path / "out", files(1))
    [folder] = folders(tmp_path / "out")
    assert stat.S_IMODE(os.stat(tmp_path / "out" / folder).st_mode) == 0o700


def test_a_second_publish_swaps_the_whole_set_and_removes_the_old_copy(tmp_path: Path) -> None:
    out = tmp_path / "out"
    publish(out, files(3, "OLD"))
    [old] = folders(out)
    publish(out, [*files(2, "NEW"), OutputFile("extra", SecretValue("NEW-x"))])
    [new] = folders(out)
    assert new != old
    assert visible(out) == {"extra": "NEW-x", "f0": "NEW-0", "f1": "NEW-1"}
    assert not (out / "f2").is_symlink()  # a name gone from the set loses its link


@pytest.mark.parametrize("fail_at", [0, 2, 4])
def test_a_failed_nth_write_leaves_the_old_set_and_nothing_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: int
) -> None:
    out = tmp_path / "out"
    publish(out, files(2, "OLD"))
    before = sorted(os.listdir(out))
    real = writer._write_one
    calls = {"n": 0}

    def flaky(*args: object, **kwargs: object) -> None:
        if calls["n"] == fail_at:
            raise WriteError("disk full")
        calls["n"] += 1
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_write_one", flaky)
    with pytest.raises(WriteError, match="disk full"):
        publish(out, files(5, "NEW"))
    assert sorted(os.listdir(out)) == before
    assert visible(out) == {"f0": "OLD-0", "f1": "OLD-1"}


def test_keyboard_interrupt_before_the_commit_rolls_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    publish(out, files(2, "OLD"))
    before = sorted(os.listdir(out))
    real_symlink = os.symlink

    def interrupted(src: str, dst: str, **kw: object) -> None:
        if dst == writer.DATA_TMP:
            raise KeyboardInterrupt
        real_symlink(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.os, "symlink", interrupted)
    with pytest.raises(KeyboardInterrupt):
        publish(out, files(4, "NEW"))  # f2 and f3 got their (dangling) links first
    assert sorted(os.listdir(out)) == before
    assert visible(out) == {"f0": "OLD-0", "f1": "OLD-1"}


def test_sigterm_during_the_commit_is_held_until_the_set_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    publish(out, files(2, "OLD"))

    class Terminated(BaseException):
        pass

    def on_term(signum: int, frame: object) -> None:
        raise Terminated

    real = writer._after_commit

    def signalled(*args: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer, "_after_commit", signalled)
    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        with pytest.raises(Terminated):
            publish(out, files(2, "NEW"))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert visible(out) == {"f0": "NEW-0", "f1": "NEW-1"}
    assert len(folders(out)) == 1  # the old copy was removed before the signal was delivered


def test_leftovers_of_a_crash_are_removed_at_start(tmp_path: Path) -> None:
    out = tmp_path / "out"
    publish(out, files(1, "OLD"))
    [current] = folders(out)
    stale = out / "..2020_01_01_00_00_00.abcdef"
    stale.mkdir()
    (stale / "f0").write_text("STALE-COPY")
    legacy = out / ".secretsboot-staging-0a1b2c"
    legacy.mkdir()
    (legacy / "f0").write_text("STALE-COPY")
    (out / writer.DATA_TMP).symlink_to(stale.name)
    removed = writer.remove_leftovers(os.open(out, os.O_RDONLY), keep=current)
    assert sorted(removed) == sorted([stale.name, legacy.name, writer.DATA_TMP])
    (stale).mkdir()
    (stale / "f0").write_text("STALE-COPY")
    publish(out, files(1, "NEW"))
    assert visible(out) == {"f0": "NEW-0"}
    copies = [p for p in out.rglob("*") if p.is_file() and not p.is_symlink()]
    assert [p.read_text() for p in copies] == ["NEW-0"]


def test_a_folder_at_a_name_is_refused_before_anything_changes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    publish(out, files(1, "OLD"))
    (out / "f3").mkdir()
    before = sorted(os.listdir(out))
    with pytest.raises(WriteError, match=r"cannot put f3 .*a folder occupies"):
        publish(out, files(5))
    assert sorted(os.listdir(out)) == before
    assert visible(out) == {"f0": "OLD-0"}


def test_plain_files_and_foreign_links_are_replaced_by_links_not_followed(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (out / "f0").symlink_to(victim)
    (out / "f1").write_text("written by secretsboot 0.1")
    publish(out, files(2))
    assert victim.read_text() == "keep"
    assert os.readlink(out / "f0") == f"{DATA}/f0"
    assert os.readlink(out / "f1") == f"{DATA}/f1"
    assert visible(out) == {"f0": "CANARY-0", "f1": "CANARY-1"}


def test_a_created_folder_is_removed_on_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise WriteError("boom")

    monkeypatch.setattr(writer, "_write_one", boom)
    with pytest.raises(WriteError):
        publish(tmp_path / "new", files(1))
    assert not (tmp_path / "new").exists()


def test_symlinked_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(WriteError, match="symbolic link"):
        publish(tmp_path / "link", files(1))
    assert os.listdir(tmp_path / "real") == []


def test_not_a_folder_and_missing_parent_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(WriteError, match="not a folder"):
        publish(tmp_path / "file", files(1))
    with pytest.raises(WriteError, match="does not exist"):
        publish(tmp_path / "a" / "b", files(1))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
@pytest.mark.parametrize(
    ("uid", "gid", "mode", "who"),
    [
        (65534, 65534, 0o777, "every user"),  # not root's: not kubelet's
        (65534, 65534, 0o1777, "every user"),
        (65534, 65534, 0o775, "group 65534"),
        (0, 4242, 0o2777, "every user"),  # fsGroup shape, but we are not in the group
        (0, 0, 0o775, "group 0"),
    ],
)
def test_writable_folders_that_are_not_kubelets_shapes_are_refused(
    open_tmp: Path, uid: int, gid: int, mode: int, who: str
) -> None:
    out = open_tmp / "out"
    out.mkdir()
    os.chown(out, uid, gid)
    out.chmod(mode)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 3
        try:
            os.setgroups([])
            os.setresgid(10001, 10001, 10001)
            os.setresuid(10001, 10001, 10001)
            publish(out, files(1))
        except WriteError as exc:
            code = 0 if f"writable by {who}" in str(exc) else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert os.listdir(out) == []


def test_own_world_writable_folder_is_tightened(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    publish(out, files(1))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "", "..data", "..x", "a\n"])
def test_names_that_could_escape_are_refused_at_write_time(tmp_path: Path, name: str) -> None:
    with pytest.raises(WriteError, match="refusing to write"):
        publish(tmp_path / "out", [OutputFile(name, SecretValue("x"))])
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown")
def test_owner_and_group(tmp_path: Path) -> None:
    publish(tmp_path / "o", files(1), owner=1000, group=2000)
    st = os.stat(tmp_path / "o" / "f0")
    assert (st.st_uid, st.st_gid) == (1000, 2000)
    [folder] = folders(tmp_path / "o")
    st = os.stat(tmp_path / "o" / folder)
    assert (st.st_uid, st.st_gid) == (1000, 2000)


def test_dotenv_and_json_bundles_escape_values() -> None:
    values = {"A": SecretValue('x"y$z\\\nw'), "B": SecretValue("plain")}
    assert dotenv_text(values).reveal() == 'A="x\\"y\\$z\\\\\\nw"\nB="plain"\n'
    assert json.loads(json_text(values).reveal()) == {"A": 'x"y$z\\\nw', "B": "plain"}
    assert "plain" not in repr(OutputFile("b", values["B"]))
