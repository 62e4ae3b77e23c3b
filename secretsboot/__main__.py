"""``python -m secretsboot`` and the ``secretsboot`` console script."""

from __future__ import annotations

import sys


def main() -> None:
    from secretsboot.cli import main as run

    sys.exit(run())


if __name__ == "__main__":
    main()
