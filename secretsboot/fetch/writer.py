"""Crash-atomic output of a whole set of files, modelled on kubelet's AtomicWriter.

The output folder looks like a Kubernetes Secret volume::

    out/
      ..2026_12_04_17_00_00.1a2b3c     private folder (0700, 0750 with fsGroup) holding the files
      ..data -> ..2026_12_04_17_00_00.1a2b3c
      db-password -> ..data/db-password
      api-key -> ..data/api-key

:func:`publish` (one call per set, also for later swaps):

1. Opens the folder with ``O_NOFOLLOW`` and checks it through its descriptor
   (:func:`open_out_dir`), then takes an exclusive ``flock`` on it (one writer).
2. Removes what an earlier crash left: timestamped folders ``..data`` does not
   point to, ``..data_tmp``, temporary links and old ``.secretsboot-staging-*``
   folders, so no secret copy outlives the next successful publish.
3. Writes every file into a fresh timestamped folder (``O_CREAT|O_EXCL|O_NOFOLLOW``
   relative to its descriptor), sets its mode, fsyncs it, fsyncs the folder.
4. Creates the link ``name -> ..data/name`` of each new name (it dangles until the
   swap, so a reader sees "absent", as in the old set) and fsyncs the output folder.
5. The commit: a symlink ``..data_tmp`` to the new folder is renamed over ``..data``
   (one ``rename``, atomic) and the output folder is fsynced.
6. After the commit: names no longer in the set lose their link, names held by a
   plain file or a foreign link get theirs (one ``rename`` each), and the old
   folder is removed.

A reader going through the links sees the old complete set until step 5 and the new
complete set after it; one that needs several files from the same set opens
``..data`` once (or checks that its target did not change while it read). An
error, ``KeyboardInterrupt`` or any exception raised by a SIGTERM handler before
step 5 removes the new folder and links (rollback); from step 5 on, SIGTERM and
SIGINT are held until the publish is complete. SIGKILL at any moment leaves the
old set visible and leftovers that step 2 of the next publish removes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Iterator, Mapping, Sequence

from secretsboot.errors import WriteError
from secretsboot.refs import safe_file_name
from secretsboot.secret import SecretValue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    from secretsboot.contract import FetchConfig
else:
    from secretsboot._records import NamedTuple

DATA = "..data"
DATA_TMP = "..data_tmp"
LINK_TMP_PREFIX = "..link_tmp."
#: the staging folders of secretsboot 0.1 (files were renamed one by one)
STAGING_PREFIX = ".secretsboot-staging-"
_TIMESTAMPED = re.compile(r"\.\.\d{4}(_\d\d){5}\.[0-9a-f]+\Z")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_HELD_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class OutputFile(NamedTuple):
    """One file to write: a plain name inside the output folder, its bytes and mode."""

    name: str
    data: SecretValue
    mode: int = 0o400

    def __repr__(self) -> str:
        return f"OutputFile({self.name!r}, {self.data!r}, 0o{self.mode:o})"


class OutDir(NamedTuple):
    """An open, checked output folder."""

    fd: int
    path: str
    created: bool
    #: the pod's fsGroup when the folder is kubelet's fsGroup shape: files become group-readable
    share_gid: int | None


def dotenv_text(values: Mapping[str, SecretValue]) -> SecretValue:
    """``NAME="value"`` lines, double-quoted with ``\\``, ``"``, ``$``, newlines escaped."""
    lines = []
    for name, value in values.items():
        text = value.reveal()
        for a, b in (("\\", "\\\\"), ('"', '\\"'), ("$", "\\$"), ("\n", "\\n"), ("\r", "\\r")):
            text = text.replace(a, b)
        lines.append(f'{name}="{text}"\n')
    return SecretValue("".join(lines))


def json_text(values: Mapping[str, SecretValue]) -> SecretValue:
    return SecretValue(json.dumps({k: v.reveal() for k, v in values.items()}, indent=2) + "\n")


# ---- the output folder ------------------------------------------------------------------


def kubelet_shape(st: os.stat_result) -> str | None:
    """Which of kubelet's emptyDir shapes ``st`` is, if any.

    Kubelet creates an emptyDir as root, mode 0777 (1777 on the memory medium); with
    ``fsGroup`` set it gives it that group and the setgid bit (2777, or 2775/2770 when
    tightened), and every container of the pod is a member of the group.
    """
    if st.st_uid != 0:
        return None
    perm = stat.S_IMODE(st.st_mode)
    if perm in (0o777, 0o1777):
        return "emptyDir"
    in_group = st.st_gid != 0 and st.st_gid in {os.getegid(), *os.getgroups()}
    if perm & ~stat.S_ISVTX in (0o2777, 0o2775, 0o2770) and in_group:
        return "fsGroup emptyDir"
    return None


def _check_folder(fd: int, path: str) -> int | None:
    """Refuse a folder others could tamper with; return the fsGroup to share with, if any."""
    st = os.fstat(fd)
    perm = stat.S_IMODE(st.st_mode)
    writable_by_others = perm & (stat.S_IWOTH | stat.S_IWGRP)
    if st.st_uid == os.geteuid():
        if writable_by_others:
            # Ours (a folder we were given 0777): take write away from group and others.
            os.fchmod(fd, perm & ~(stat.S_IWOTH | stat.S_IWGRP))
    elif writable_by_others and kubelet_shape(st) is None:
        who = "every user" if perm & stat.S_IWOTH else f"group {st.st_gid}"
        raise WriteError(
            f"refusing output folder {path}: writable by {who} and owned by uid {st.st_uid} "
            f"(mode {perm:04o}), which is not one of kubelet's emptyDir shapes",
            hint="mount an emptyDir at --out (root-owned 0777, 1777, or 2777 with fsGroup), "
            "or use a folder only the fetch user can write",
        )
    member = st.st_gid in {os.getegid(), *os.getgroups()} or os.geteuid() == 0
    if perm & stat.S_ISGID and st.st_gid != 0 and member:
        return st.st_gid
    return None


def open_out_dir(path: str) -> OutDir:
    """Check (or create) the output folder and open it.

    The folder is opened with ``O_NOFOLLOW`` and checked through the descriptor
    (``fstat``), so it cannot be swapped for a symlink between the check and the use.
    """
    created = False
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise WriteError(
                f"output folder {path} cannot be created: {parent} does not exist",
                hint="mount the emptyDir volume at --out, or create the parent folder",
            ) from None
        try:
            os.mkdir(path, 0o755)
        except OSError as exc:
            raise WriteError(f"cannot create the output folder {path}: {exc.strerror}") from None
        created = True
    else:
        if stat.S_ISLNK(st.st_mode):
            raise WriteError(
                f"refusing output folder {path}: it is a symbolic link",
                hint="pass the real folder (a symlink could be redirected by someone else)",
            )
        if not stat.S_ISDIR(st.st_mode):
            raise WriteError(f"refusing output folder {path}: not a folder")
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise WriteError(f"cannot open the output folder {path}: {exc.strerror}") from None
    try:
        share_gid = _check_folder(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return OutDir(fd, path, created, share_gid)


# ---- publish ----------------------------------------------------------------------------


def publish(
    out_dir: str | os.PathLike[str],
    files: Sequence[OutputFile],
    *,
    owner: int | None = None,
    group: int | None = None,
) -> None:
    """Publish ``files`` as the whole set in ``out_dir``, replacing any earlier set atomically.

    See the module docstring for the steps and guarantees. Raises
    :class:`~secretsboot.errors.WriteError` (exit 6) with the old set still visible.

    >>> publish("/var/run/secrets/secretsboot",
    ...         [OutputFile("db-password", SecretValue("..."))])  # doctest: +SKIP
    """
    names = _checked_names(files)
    out = open_out_dir(os.fspath(out_dir))
    try:
        _locked(out)
        current = _readlink(out.fd, DATA)
        remove_leftovers(out.fd, keep=current)
        replace_later = _occupied_names(out, names)
        _swap_in(out, files, replace_later, current, owner, group)
    except BaseException as exc:
        if out.created:
            with _held_signals(), contextlib.suppress(OSError):
                os.rmdir(out.path)
        if isinstance(exc, OSError):
            raise WriteError(f"cannot write into {out.path}: {exc.strerror}") from None
        raise
    finally:
        os.close(out.fd)


def _checked_names(files: Sequence[OutputFile]) -> list[str]:
    names = [f.name for f in files]
    for name in names:
        try:
            safe_file_name(name)
        except ValueError as exc:
            raise WriteError(f"refusing to write '{name}': {exc}") from None
    if len(set(names)) != len(names):
        raise WriteError("two outputs have the same file name")
    return names


def _locked(out: OutDir) -> None:
    import fcntl

    try:
        fcntl.flock(out.fd, fcntl.LOCK_EX)
    except OSError as exc:
        raise WriteError(f"cannot lock the output folder {out.path}: {exc.strerror}") from None


def _swap_in(
    out: OutDir,
    files: Sequence[OutputFile],
    replace_later: list[str],
    current: str | None,
    owner: int | None,
    group: int | None,
) -> None:
    fresh = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + os.urandom(6).hex()
    links: list[str] = []
    committed = False
    try:
        _write_folder(out, fresh, files, owner, group)
        for f in files:
            if f.name not in replace_later and _readlink(out.fd, f.name) is None:
                os.symlink(f"{DATA}/{f.name}", f.name, dir_fd=out.fd)
                links.append(f.name)
        os.fsync(out.fd)
        with _held_signals():
            os.symlink(fresh, DATA_TMP, dir_fd=out.fd)
            os.replace(DATA_TMP, DATA, src_dir_fd=out.fd, dst_dir_fd=out.fd)
            os.fsync(out.fd)
            committed = True
            _after_commit(out, {f.name for f in files}, replace_later, current)
    except BaseException:
        if not committed:
            with _held_signals():
                _rollback(out.fd, fresh, links)
        raise


def _write_folder(
    out: OutDir, fresh: str, files: Sequence[OutputFile], owner: int | None, group: int | None
) -> None:
    os.mkdir(fresh, 0o700, dir_fd=out.fd)
    fd = os.open(fresh, _DIR_FLAGS, dir_fd=out.fd)
    try:
        extra = 0o040 if out.share_gid is not None else 0
        for f in files:
            _write_one(fd, f, f.mode | extra, owner, group, out.path)
        modes = [f.mode | extra for f in files]
        folder_mode = 0o700
        if any(m & 0o070 for m in modes):
            folder_mode |= 0o050
        if any(m & 0o007 for m in modes):
            folder_mode |= 0o001  # search only: others reach a file they may read, list nothing
        if owner is not None or group is not None:
            os.fchown(fd, -1 if owner is None else owner, -1 if group is None else group)
        os.fchmod(fd, folder_mode | (stat.S_ISGID if out.share_gid is not None else 0))
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_one(
    dir_fd: int, f: OutputFile, mode: int, owner: int | None, group: int | None, where: str
) -> None:
    try:
        fd = os.open(f.name, _FILE_FLAGS, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        raise WriteError(f"cannot create {f.name} in {where}: {exc.strerror}") from None
    try:
        view = memoryview(f.data.reveal_bytes())
        while view:
            view = view[os.write(fd, view) :]
        if owner is not None or group is not None:
            os.fchown(fd, -1 if owner is None else owner, -1 if group is None else group)
        os.fchmod(fd, mode)
        os.fsync(fd)
    except OSError as exc:
        raise WriteError(f"cannot write {f.name} in {where}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _occupied_names(out: OutDir, names: list[str]) -> list[str]:
    """Names held by something other than our link: replaced after the commit.

    A folder cannot be replaced atomically by a link: refused before anything is written.
    """
    later = []
    for name in names:
        try:
            st = os.lstat(name, dir_fd=out.fd)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode):
            raise WriteError(
                f"cannot put {name} into {out.path}: a folder occupies that name; "
                "nothing was changed",
                hint="remove whatever occupies that name",
            )
        if not stat.S_ISLNK(st.st_mode) or _readlink(out.fd, name) != f"{DATA}/{name}":
            later.append(name)
    return later


def _after_commit(out: OutDir, names: set[str], replace: list[str], old: str | None) -> None:
    for name in replace:
        tmp = LINK_TMP_PREFIX + os.urandom(6).hex()
        os.symlink(f"{DATA}/{name}", tmp, dir_fd=out.fd)
        try:
            os.replace(tmp, name, src_dir_fd=out.fd, dst_dir_fd=out.fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=out.fd)
            raise WriteError(
                f"published the new set, but cannot link {name} in {out.path}: {exc.strerror}",
                hint="remove whatever occupies that name",
            ) from None
    for entry in os.listdir(out.fd):
        if entry not in names and _readlink(out.fd, entry) == f"{DATA}/{entry}":
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry, dir_fd=out.fd)
    if old is not None and _TIMESTAMPED.match(old):
        _remove_tree(out.fd, old)
    os.fsync(out.fd)


def _rollback(dir_fd: int, fresh: str, links: list[str]) -> None:
    for name in links:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)
    with contextlib.suppress(OSError):
        os.unlink(DATA_TMP, dir_fd=dir_fd)
    _remove_tree(dir_fd, fresh)


def remove_leftovers(dir_fd: int, keep: str | None) -> list[str]:
    """Remove what an interrupted publish left in the folder (never the folder ``keep``).

    Returns the names removed. Called at the start of every publish.
    """
    removed = []
    for entry in os.listdir(dir_fd):
        stale = entry == DATA_TMP or entry.startswith((LINK_TMP_PREFIX, STAGING_PREFIX))
        if stale or (_TIMESTAMPED.match(entry) and entry != keep):
            _remove_tree(dir_fd, entry)
            removed.append(entry)
    return removed


def _remove_tree(dir_fd: int, name: str) -> None:
    """Remove ``name`` (a link, a file or a folder of ours) without following links."""
    try:
        st = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
        return
    if _remove_flat(dir_fd, name):
        return
    import shutil  # a folder inside: not one we wrote, but remove it all the same

    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(name, dir_fd=dir_fd)


def _remove_flat(dir_fd: int, name: str) -> bool:
    """Remove the folder ``name`` if it holds files only (ours always do: secret names
    are plain file names); False, with nothing of it removed, if it holds a folder.
    (shutil.rmtree would do, but importing shutil loads bz2 and lzma at pod start.)"""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
    except FileNotFoundError:
        return True
    try:
        entries = list(os.scandir(fd))
        if any(e.is_dir(follow_symlinks=False) for e in entries):
            return False
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.name, dir_fd=fd)
    finally:
        os.close(fd)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(name, dir_fd=dir_fd)
    return True


def _readlink(dir_fd: int, name: str) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except (FileNotFoundError, OSError):
        return None


@contextlib.contextmanager
def _held_signals() -> Iterator[None]:
    """Hold SIGTERM and SIGINT (delivered on exit) while the commit or a rollback runs.

    Python runs signal handlers in the main thread only, so from another thread there
    is nothing to hold.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []

    def hold(signum: int, _frame: object) -> None:
        pending.append(signum)

    previous = {s: signal.signal(s, hold) for s in _HELD_SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)


# ---- the fetch's set ----------------------------------------------------------------------


def output_files(config: FetchConfig, values: Mapping[str, SecretValue]) -> list[OutputFile]:
    """The files of one fetch: one per secret with a file, plus the dotenv / JSON bundles."""
    files = [OutputFile(s.file_name, values[s.name], s.mode) for s in config.secrets if s.file_name]
    if config.dotenv:
        env_values = {s.env_var: values[s.name] for s in config.secrets}
        files.append(OutputFile(config.dotenv, dotenv_text(env_values), 0o400))
    if config.json:
        files.append(OutputFile(config.json, json_text(values), 0o400))
    return files


def write_secrets(
    config: FetchConfig,
    values: Mapping[str, SecretValue],
    out_dir: str | os.PathLike[str],
    *,
    owner: int | None = None,
    group: int | None = None,
) -> list[str]:
    """Publish one file per secret (plus the dotenv / JSON bundles) as a set; return the names."""
    files = output_files(config, values)
    publish(out_dir, files, owner=owner, group=group)
    return [f.name for f in files]
