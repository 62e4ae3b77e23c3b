"""Retries: jittered exponential backoff inside one overall deadline.

Only transient errors are retried: :class:`~secretsboot.errors.UnavailableError`
(429, 5xx, connection failures, an unparsable reply) and, for the propagation window
only, :class:`~secretsboot.errors.PropagationPendingError` (a fresh federated
credential or role assignment that has not reached the service yet). Bad input, a
plain denial and a missing secret fail at once.

With ``until_deadline`` (the last source of a secret) an unavailable store is retried
until the deadline, whatever the attempt count: a 429 storm is ridden out. A server's
``Retry-After`` is honoured while it fits in what remains; when it asks for more, the
call waits what remains (it does not come back early) and then fails saying so.
Without it (a source with a fallback after it) ``max_attempts`` bounds the retries,
so the fallback still gets its turn.

The clock is injectable so the policy is tested without sleeping::

    clock = FakeClock()
    policy = RetryPolicy.starting(clock, timeout=60, propagation_window=30)
    value = retry_call(lambda: backend.get(ref, 5), policy, clock)
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from secretsboot.errors import PropagationPendingError, UnavailableError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple, Protocol, TypeVar

    T = TypeVar("T")

    class Uniform(Protocol):
        """What jitter needs of a random source (``random.Random`` fits, for tests)."""

        def uniform(self, a: float, b: float) -> float: ...

    class Clock(Protocol):
        def monotonic(self) -> float: ...

        def sleep(self, seconds: float) -> None: ...
else:
    from secretsboot._records import NamedTuple


class _OsJitter:
    """Jitter from ``os.urandom``: importing :mod:`random` costs more than it gives here."""

    def uniform(self, a: float, b: float) -> float:
        return a + (b - a) * int.from_bytes(os.urandom(4), "big") / 2**32


_JITTER = _OsJitter()


class Aborted(Exception):
    """Raised by :func:`retry_call` when ``cancelled()`` turns true between attempts."""

    def __init__(self, last: Exception) -> None:
        super().__init__("aborted")
        self.last = last


class SystemClock:
    """The real clock. ``sleep`` wakes early when ``cancel`` is set (another secret failed)."""

    def __init__(self, cancel: threading.Event | None = None) -> None:
        self.cancel = cancel or threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        self.cancel.wait(max(0.0, seconds))


class RetryPolicy(NamedTuple):
    """When to give up. Times are absolute values of the clock's ``monotonic()``."""

    deadline: float
    propagation_until: float
    base_delay: float = 0.1
    max_delay: float = 5.0
    max_attempts: int = 6

    @classmethod
    def starting(
        cls,
        clock: Clock,
        *,
        timeout: float = 60.0,
        propagation_window: float = 30.0,
        base_delay: float = 0.1,
        max_delay: float = 5.0,
        max_attempts: int = 6,
    ) -> RetryPolicy:
        now = clock.monotonic()
        return cls(
            deadline=now + timeout,
            propagation_until=now + propagation_window,
            base_delay=base_delay,
            max_delay=max_delay,
            max_attempts=max_attempts,
        )

    def remaining(self, clock: Clock) -> float:
        return self.deadline - clock.monotonic()

    def delay(self, attempt: int, retry_after: float | None, rng: Uniform) -> float:
        """Full-jitter backoff for ``attempt`` (1-based), but never less than Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        jittered = rng.uniform(ceiling / 2, ceiling)
        if retry_after is not None and retry_after > 0:
            # Spread the herd a little past the server's hint, never before it.
            return retry_after + rng.uniform(0, min(1.0, retry_after * 0.2))
        return jittered


def retry_call(
    fn: Callable[[], T],
    policy: RetryPolicy,
    clock: Clock,
    rng: Uniform | None = None,
    on_retry: Callable[[int, Exception, float], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    until_deadline: bool = False,
) -> T:
    """Call ``fn`` until it succeeds, fails for good, or the policy runs out.

    Raises the last error; when waiting would cross the deadline, an
    :class:`UnavailableError` that says so and keeps the last error's message.
    When ``cancelled()`` is true before a retry (the fetch has already failed
    elsewhere), raises :class:`Aborted` instead of trying again.
    """
    rng = rng or _JITTER
    attempt = 0
    while True:
        try:
            return fn()
        except PropagationPendingError as exc:
            if clock.monotonic() >= policy.propagation_until:
                raise
            error: Exception = exc
            retry_after = None
        except UnavailableError as exc:
            error = exc
            retry_after = exc.retry_after
        attempt += 1
        # A pending propagation is bounded by its window, not by the attempt count.
        pending = isinstance(error, PropagationPendingError)
        if attempt >= policy.max_attempts and not pending and not until_deadline:
            raise error
        wait = policy.delay(attempt, retry_after, rng)
        if pending:
            wait = min(wait, max(0.0, policy.propagation_until - clock.monotonic()))
        remaining = policy.remaining(clock)
        if wait >= remaining:
            _give_up(error, attempt, remaining, retry_after if until_deadline else None, clock)
        if cancelled is not None and cancelled():
            raise Aborted(error)
        if on_retry is not None:
            on_retry(attempt, error, wait)
        clock.sleep(wait)
        if cancelled is not None and cancelled():
            raise Aborted(error)


def _give_up(
    error: Exception, attempt: int, remaining: float, retry_after: float | None, clock: Clock
) -> None:
    """Raise the error that ends the retries at the deadline."""
    if not isinstance(error, UnavailableError):
        raise error
    if retry_after:
        # The server asked us not to come back before Retry-After: wait what remains
        # rather than fail early into a restart loop that would hammer it.
        clock.sleep(max(0.0, remaining))
        why = (
            f"gave up at the deadline: the server asked to retry after {retry_after:g} s, "
            f"more than the {max(0.0, remaining):.1f} s that remained"
        )
    else:
        why = f"gave up: the deadline passed after {attempt} attempts"
    raise UnavailableError(
        f"{error.message} ({why})", hint=error.hint, retry_after=error.retry_after
    ) from None
