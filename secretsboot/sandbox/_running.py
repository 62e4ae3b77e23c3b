"""What every started sandbox component shares: leaving a ``with`` block stops it."""

from __future__ import annotations

from typing import Self


class Running:
    """A started component (``Sandbox``, ``OpenBao``, the Azure and Kubernetes fakes):
    ``with Component.start(...) as c:`` stops ``c`` when the block ends."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
