"""One way to replace a single file atomically: a private temp file beside it, then rename.

Used for reports, baselines, the sandbox's state files and anything else written
as one file. (A *set* of secret files is published by ``fetch.writer``, which
swaps a whole folder.) The temp file is created with ``O_EXCL`` and the final
mode, so an existing symlink at the temp name is never followed, and a crash
leaves either the old file or the new one, never half of one.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "report.json"
>>> atomic_write_text(p, "{}")
>>> p.read_text()
'{}'
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO

from secretsboot.errors import WriteError


def atomic_write(
    path: str | os.PathLike[str],
    write: Callable[[IO[str]], object],
    *,
    mode: int = 0o644,
    what: str = "file",
) -> None:
    """Call ``write(fh)`` on a temp file beside ``path``, fsync it, then rename it over ``path``.

    Raises :class:`~secretsboot.errors.WriteError` naming ``what`` and the path on
    any OS error; the temp file never outlives a failure (including Ctrl-C).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    tmp = directory / f".{target.name}.{os.urandom(6).hex()}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise WriteError(
            f"cannot write the {what} {target}: {exc.strerror or exc}",
            hint="check that the folder exists and is writable",
        ) from None


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, mode: int = 0o644, what: str = "file"
) -> None:
    """:func:`atomic_write` for a string already in memory."""
    atomic_write(path, lambda fh: fh.write(text), mode=mode, what=what)
