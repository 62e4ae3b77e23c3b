"""``python -m secretsboot`` and the ``secretsboot`` console script.

``fetch`` and ``run`` run in init containers and before the app starts, so they
take a fast path that never imports Typer or Rich (see ``secretsboot/fetch/_cli.py``);
every other command, and ``--help``, goes through the Typer app.
"""

from __future__ import annotations

import sys

_FAST = ("fetch", "run")


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in _FAST and not {"-h", "--help"} & set(argv[1:2]):
        from secretsboot.fetch._cli import main as fast

        sys.exit(fast(argv))
    from secretsboot.cli import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
