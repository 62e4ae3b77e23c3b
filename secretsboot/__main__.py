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


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in _FAST:  # their one definition, --help included
        from secretsboot.fetch._cli import main as fast

        sys.exit(fast(argv))
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


if __name__ == "__main__":
    main()
