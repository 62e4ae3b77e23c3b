"""Names of a package loaded on first use (PEP 562), so importing the package or one
of its submodules loads nothing else: ``import secretsboot`` and the CLI's import of
``secretsboot.fetch._cli`` stay off the fetch runtime, the transport and TLS.

>>> getattr_ = lazy_names("demo", {"sqrt": "math"}, {})
>>> getattr_("sqrt")(9.0)
3.0
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping


def lazy_names(
    package: str, table: Mapping[str, str], namespace: MutableMapping[str, object]
) -> Callable[[str], object]:
    """A module ``__getattr__`` that imports ``table[name]`` (a module path) when
    ``name`` is first asked for, and keeps it in ``namespace`` (the package's globals)."""

    def __getattr__(name: str) -> object:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        import importlib

        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    return __getattr__
