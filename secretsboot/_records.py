"""``typing.NamedTuple``'s class syntax without importing :mod:`typing` at run time.

``import typing`` costs 3-4 ms (10+ ms on a busy node) of an init container whose
whole fetch takes a few tens. Modules of the fetch path write::

    TYPE_CHECKING = False
    if TYPE_CHECKING:
        from typing import NamedTuple
    else:
        from secretsboot._records import NamedTuple

so mypy checks them against ``typing.NamedTuple`` while the interpreter builds a
plain :func:`collections.namedtuple` from the annotations (names only: they stay
strings under ``from __future__ import annotations``), the trailing defaults, and
the methods of the class body.

>>> class Point(NamedTuple):
...     x: int
...     y: int = 0
...     def norm1(self) -> int:
...         return abs(self.x) + abs(self.y)
>>> Point(3, -4), Point(2).norm1(), Point(1)._replace(y=5)
(Point(x=3, y=-4), 2, Point(x=1, y=5))
"""

from __future__ import annotations

from collections import namedtuple

_SKIP = {"__annotations__", "__module__", "__qualname__", "__dict__", "__weakref__"}


class _Maker(type):
    def __new__(mcls, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> type:
        if not bases:  # the NamedTuple base class itself
            return super().__new__(mcls, name, bases, ns)
        annotations = ns.get("__annotations__") or {}
        fields = list(annotations)  # type: ignore[call-overload]
        defaults = [ns[f] for f in fields if f in ns]
        if any(f in ns for f in fields[: len(fields) - len(defaults)]):
            raise TypeError(f"{name}: fields with defaults must come last")
        cls = namedtuple(name, fields, defaults=defaults, module=str(ns.get("__module__")))  # type: ignore[misc]
        for key, value in ns.items():
            if key not in _SKIP and key not in fields:
                setattr(cls, key, value)
        cls.__qualname__ = str(ns.get("__qualname__", name))
        return cls


class NamedTuple(metaclass=_Maker):
    """Base class: ``class Ref(NamedTuple): scheme: str ...`` (see the module docstring)."""

    __slots__ = ()
