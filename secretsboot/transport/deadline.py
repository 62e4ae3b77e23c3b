"""One absolute deadline, handed down from the fetch to every socket operation.

A per-operation timeout is not a deadline: a server that sends one byte a second
never trips a 5 s read timeout. Every wait of the transport (connect, TLS handshake,
each read, the wait for a pooled connection) is bounded by :meth:`Deadline.remaining`
at the moment it starts, so the sum of them cannot outlive the deadline.

>>> d = Deadline.after(5.0)
>>> 4.0 < d.remaining() <= 5.0
True
>>> d.capped(1.0).remaining() <= 1.0
True
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Deadline:
    """An instant on a monotonic clock (``time.monotonic`` unless a test gives another)."""

    __slots__ = ("_clock", "at")

    def __init__(self, at: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.at = at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """The deadline ``seconds`` from now."""
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left (negative once passed)."""
        return self.at - self._clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def left(self) -> float:
        """Seconds left, for a socket timeout; :class:`TimeoutError` once the deadline passed."""
        left = self.at - self._clock()
        if left <= 0:
            raise TimeoutError("the deadline passed")
        return left

    def capped(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` from now if that comes first (one attempt's budget)."""
        return Deadline(min(self.at, self._clock() + seconds), self._clock)

    def __repr__(self) -> str:
        return f"Deadline({self.remaining():.3f}s left)"
