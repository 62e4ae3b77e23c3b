"""What every provision backend does around its system's API: count the calls it
makes, retry its reads and quote its client's errors.

The count is the plan's and the benchmarks' figure of API calls; apply's workers
share one backend, so it is kept under a lock. Reads are retried here; writes are
retried by :mod:`secretsboot.provision.apply`, which knows what a write may repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from secretsboot.errors import UnavailableError
from secretsboot.spec import Spec

T = TypeVar("T")

READ_ATTEMPTS = 4


class CountedApi:
    """One system's API as a spec's provisioning uses it, with a count of the calls."""

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.calls = 0
        self._calls_lock = threading.Lock()

    def count_call(self) -> None:
        with self._calls_lock:
            self.calls += 1


def first_line(exc: BaseException) -> str:
    """What an SDK's exception says, fit for one line of our error: its first line (at
    most 300 characters), else its type's name."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def read_retried(read: Callable[[], T]) -> T:
    """``read()``, retried on :class:`~secretsboot.errors.UnavailableError` (429/5xx,
    connection failures): waits of 0.2 s doubling, or the server's ``Retry-After``
    (at most 10 s), :data:`READ_ATTEMPTS` tries in all."""
    delay = 0.2
    for attempt in range(READ_ATTEMPTS):
        try:
            return read()
        except UnavailableError as exc:
            if attempt == READ_ATTEMPTS - 1:
                raise
            time.sleep(min(exc.retry_after or delay, 10.0))
            delay *= 2
    raise AssertionError("unreachable")  # pragma: no cover
