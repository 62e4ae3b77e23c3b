"""The local sandbox: HTTPS fakes of Kubernetes and Azure plus a real OpenBao.

Nothing outside ``secretsboot.sandbox`` and ``secretsboot.cli.sandbox`` imports
this package. Example::

    from secretsboot.sandbox import Sandbox

    with Sandbox.start(Path(".secretsboot-sandbox")) as sb:
        os.environ.update(sb.env())

``Sandbox`` is imported lazily so the building blocks (``_http``, ``pki``,
``tokens``) load without the whole stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from secretsboot.sandbox.stack import Sandbox

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        from secretsboot.sandbox.stack import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
