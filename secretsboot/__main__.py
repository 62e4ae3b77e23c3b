"""``python -m secretsboot`` and the ``secretsboot`` console script.

``fetch`` and ``run`` run in init containers and before the app starts, so they
take a fast path that never imports Typer or Rich: their command lines (and their
``--help``) are defined once, with argparse, in ``secretsboot/fetch/_cli.py``.
Every other command goes through the Typer app, which lists ``fetch`` and ``run``
and hands their arguments to that same definition.
"""

from __future__ import annotations

import sys

_FAST = ("fetch", "run")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in _FAST:  # their one definition, --help included
        import gc

        gc.disable()  # the imports allocate much and free nothing: a collection finds nothing
        from secretsboot.fetch._cli import main as fast

        gc.enable()
        exit_now(fast(argv))
    import importlib.util

    if importlib.util.find_spec("secretsboot.cli") is None:  # the init image (see Dockerfile)
        print(
            "secretsboot: this is the init image, with only `fetch` and `run`; "
            "the whole CLI is `pip install secretsboot`",
            file=sys.stderr,
        )
        sys.exit(2)
    from secretsboot.cli import main as run

    sys.exit(run())


def exit_now(code: int) -> NoReturn:
    """End the process without the interpreter's teardown.

    At pod start every millisecond counts, and the teardown (a last garbage collection
    of every module's objects, then freeing them one by one) takes a tenth of a whole
    ``fetch``. Nothing is lost by skipping it: by the time ``fetch``/``run`` return,
    every file is written, synced and closed, Vault tokens are revoked and sockets
    closed, and all their threads have ended; what is left is flushing stdio, done here
    (exit status 120 if that fails, as Python's own exit does).
    """
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120
    os._exit(code)


if __name__ == "__main__":
    main()
