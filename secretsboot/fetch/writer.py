"""Atomic output: every file appears, or nothing new does.

How (``write_atomic``):

1. The output folder is opened with ``O_NOFOLLOW`` and checked through its
   descriptor: not a symlink, a folder, and not writable by others. A
   world-writable folder we own (an ``emptyDir`` is created 0777) is tightened
   to drop group/other write first; one owned by someone else is refused,
   sticky bit or not: another user could pre-create or swap names in it.
2. Files are staged in a hidden 0700 folder inside the output folder (same
   filesystem, so renames are atomic), each created with ``O_CREAT|O_EXCL|
   O_NOFOLLOW`` relative to the staging folder's descriptor (``openat``-style: no
   path is re-resolved), given its mode and owner, and fsynced; then the staging
   folder is fsynced.
3. Each file is moved into place with ``os.replace`` (``renameat``). Before that,
   an existing file of the same name is hard-linked into the staging folder; if any
   move fails, the moved files are put back (or removed when they are new), so the
   folder shows the old set.
4. The output folder is fsynced and the staging folder removed.

A failure at any step raises :class:`~secretsboot.errors.WriteError` and leaves
nothing new visible. Names are checked again here (``safe_file_name``), even
though the config already rejected names that could escape.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping, Sequence

from secretsboot.errors import WriteError
from secretsboot.refs import safe_file_name
from secretsboot.secret import SecretValue

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple

    from secretsboot.contract import FetchConfig
else:
    from secretsboot._records import NamedTuple

STAGING_PREFIX = ".secretsboot-staging-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class OutputFile(NamedTuple):
    """One file to write: a plain name inside the output folder, its bytes and mode."""

    name: str
    data: SecretValue
    mode: int = 0o400

    def __repr__(self) -> str:
        return f"OutputFile({self.name!r}, {self.data!r}, 0o{self.mode:o})"


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


def open_out_dir(path: str) -> tuple[int, bool]:
    """Check (or create) the output folder and open it: ``(descriptor, created by us)``.

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
        st = os.fstat(fd)
        if st.st_mode & stat.S_IWOTH:
            if st.st_uid != os.geteuid():
                raise WriteError(
                    f"refusing output folder {path}: writable by every user and owned by uid "
                    f"{st.st_uid}",
                    hint="use a folder only the fetch user can write (chmod o-w), "
                    "or run the init container as its owner",
                )
            # Ours (an emptyDir is created 0777): take write away from group and others.
            os.fchmod(fd, stat.S_IMODE(st.st_mode) & ~(stat.S_IWOTH | stat.S_IWGRP))
    except BaseException:
        os.close(fd)
        raise
    return fd, created


def write_atomic(
    out_dir: str | os.PathLike[str],
    files: Sequence[OutputFile],
    *,
    owner: int | None = None,
    group: int | None = None,
) -> None:
    """Write ``files`` into ``out_dir``, all or nothing (see the module docstring).

    >>> write_atomic("/var/run/secrets/secretsboot",
    ...              [OutputFile("db-password", SecretValue("..."))])  # doctest: +SKIP
    """
    path = os.fspath(out_dir)
    names = [f.name for f in files]
    for name in names:
        try:
            safe_file_name(name)
        except ValueError as exc:
            raise WriteError(f"refusing to write '{name}': {exc}") from None
    if len(set(names)) != len(names):
        raise WriteError("two outputs have the same file name")
    dir_fd, created = open_out_dir(path)
    staging = STAGING_PREFIX + os.urandom(6).hex()
    try:
        try:
            os.mkdir(staging, 0o700, dir_fd=dir_fd)
            stage_fd = os.open(staging, _DIR_FLAGS, dir_fd=dir_fd)
        except OSError as exc:
            raise WriteError(f"cannot stage files in {path}: {exc.strerror}") from None
        try:
            for f in files:
                _write_one(stage_fd, f, owner, group, path)
            os.fsync(stage_fd)
            _publish(dir_fd, stage_fd, names, path)
            os.fsync(dir_fd)
        finally:
            _remove_staging(dir_fd, stage_fd, staging)
    except WriteError:
        if created:
            _rmdir_quietly(path)
        raise
    except OSError as exc:
        if created:
            _rmdir_quietly(path)
        raise WriteError(f"cannot write into {path}: {exc.strerror}") from None
    finally:
        os.close(dir_fd)


def _write_one(
    stage_fd: int, f: OutputFile, owner: int | None, group: int | None, where: str
) -> None:
    try:
        fd = os.open(f.name, _FILE_FLAGS, 0o600, dir_fd=stage_fd)
    except OSError as exc:
        raise WriteError(f"cannot create {f.name} in {where}: {exc.strerror}") from None
    try:
        data = f.data.reveal_bytes()
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if owner is not None or group is not None:
            os.fchown(fd, -1 if owner is None else owner, -1 if group is None else group)
        os.fchmod(fd, f.mode)
        os.fsync(fd)
    except OSError as exc:
        raise WriteError(f"cannot write {f.name} in {where}: {exc.strerror}") from None
    finally:
        os.close(fd)


def _publish(dir_fd: int, stage_fd: int, names: list[str], where: str) -> None:
    moved: list[tuple[str, bool]] = []  # (name, had an old file backed up)
    try:
        for name in names:
            backup = f".old-{name}"
            had_old = True
            try:
                os.link(name, backup, src_dir_fd=dir_fd, dst_dir_fd=stage_fd, follow_symlinks=False)
            except FileNotFoundError:
                had_old = False
            except IsADirectoryError:
                raise OSError(21, "Is a directory") from None
            except PermissionError as exc:
                # Hard links may be refused (protected_hardlinks); a folder there still fails below.
                if not os.path.lexists(os.path.join(where, name)):
                    had_old = False
                else:
                    raise OSError(exc.errno, exc.strerror) from None
            os.replace(name, name, src_dir_fd=stage_fd, dst_dir_fd=dir_fd)
            moved.append((name, had_old))
    except OSError as exc:
        for name, had_old in reversed(moved):
            try:
                if had_old:
                    os.replace(f".old-{name}", name, src_dir_fd=stage_fd, dst_dir_fd=dir_fd)
                else:
                    os.unlink(name, dir_fd=dir_fd)
            except OSError:
                pass  # best effort; the error below is what matters
        failed = names[len(moved)] if len(moved) < len(names) else "?"
        raise WriteError(
            f"cannot put {failed} into {where} ({exc.strerror}); nothing was changed",
            hint="remove whatever occupies that name",
        ) from None


def _remove_staging(dir_fd: int, stage_fd: int, staging: str) -> None:
    try:
        for entry in os.listdir(stage_fd):
            os.unlink(entry, dir_fd=stage_fd)
    finally:
        os.close(stage_fd)
        with contextlib.suppress(OSError):
            os.rmdir(staging, dir_fd=dir_fd)


def _rmdir_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


def write_secrets(
    config: FetchConfig,
    values: Mapping[str, SecretValue],
    out_dir: str | os.PathLike[str],
    *,
    owner: int | None = None,
    group: int | None = None,
) -> list[str]:
    """Write one file per secret (plus the dotenv / JSON bundles) atomically; return the names."""
    files = [OutputFile(s.file_name, values[s.name], s.mode) for s in config.secrets if s.file_name]
    if config.dotenv:
        env_values = {s.env_var: values[s.name] for s in config.secrets}
        files.append(OutputFile(config.dotenv, dotenv_text(env_values), 0o400))
    if config.json:
        files.append(OutputFile(config.json, json_text(values), 0o400))
    write_atomic(out_dir, files, owner=owner, group=group)
    return [f.name for f in files]
