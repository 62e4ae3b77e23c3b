"""Commands that exist in the CLI but are not built yet fail plainly (exit 7)."""

from __future__ import annotations

from secretsboot.errors import NotImplementedYetError


def not_built(command: str) -> NotImplementedYetError:
    return NotImplementedYetError(
        f"`secretsboot {command}` is not built yet in this version", hint="see the README's roadmap"
    )
