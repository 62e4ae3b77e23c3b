"""The one thread pool of the fetch path: ``work`` over ``items`` on daemon threads.

:mod:`concurrent.futures` would do, but importing it (with :mod:`logging`) costs
more CPU than a whole pool's work at pod start; this is a queue and a lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    T = TypeVar("T")


def parallel(work: Callable[[Any], T], items: list[Any], max_workers: int) -> list[T]:
    """``work(item)`` for each item on up to ``max_workers`` daemon threads; the
    results in the order of ``items``. ``work`` must not raise (it reports its own
    failures): an exception would end only its thread, leaving its result None.

    >>> parallel(lambda n: n * n, [1, 2, 3], max_workers=2)
    [1, 4, 9]
    """
    if len(items) <= 1:
        return [work(item) for item in items]
    results: list[Any] = [None] * len(items)
    queue = list(range(len(items) - 1, -1, -1))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i = queue.pop()
            results[i] = work(items[i])

    threads = [
        threading.Thread(target=worker, daemon=True) for _ in range(min(max_workers, len(items)))
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results
