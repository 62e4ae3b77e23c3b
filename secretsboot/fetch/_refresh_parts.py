"""The refresh loop's plumbing: rebuildable stores, rotated token files, a per-cycle
version memo and daemon-thread helpers (kept apart from the loop's logic in
:mod:`secretsboot.fetch.refresh`)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    from secretsboot.backends.base import SecretStore
    from secretsboot.fetch.runtime import Stores
    from secretsboot.refs import Ref
    from secretsboot.transport import Deadline

    T = TypeVar("T")

MAX_WORKERS = 8


class TokenFile:
    """A token file the kubelet rotates: tells when it changed (``stat``, no read)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._seen = self._signature()

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)  # follows kubelet's ..data symlink to the current file
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def changed(self) -> bool:
        now = self._signature()
        if now == self._seen:
            return False
        self._seen = now
        return True


class Slots:
    """One :class:`~secretsboot.fetch.runtime.Stores` per scheme, so one store (the
    Kubernetes client after a token rotation, Vault after a refused token) can be
    rebuilt without touching the others. ``new_stores`` builds an empty one."""

    def __init__(self, new_stores: Callable[[], Stores]) -> None:
        self._new_stores = new_stores
        self._stores: dict[str, Stores] = {}
        self._lock = threading.Lock()
        self.renew_due: dict[str, float] = {}

    def get(self, scheme: str) -> SecretStore:
        with self._lock:
            stores = self._stores.get(scheme)
            if stores is None:
                stores = self._new_stores()
                self._stores[scheme] = stores
        return stores.get(scheme)

    def all(self, schemes: Sequence[str]) -> dict[str, SecretStore]:
        return {scheme: self.get(scheme) for scheme in schemes}

    def reset(self, scheme: str) -> None:
        """Close (and so revoke) one scheme's store; the next use builds it afresh."""
        with self._lock:
            stores = self._stores.pop(scheme, None)
            self.renew_due.pop(scheme, None)
        if stores is not None:
            _close_quietly(stores)

    def built(self) -> list[str]:
        """The schemes whose store exists now."""
        with self._lock:
            return list(self._stores)

    def close(self) -> None:
        with self._lock:
            all_stores, self._stores = list(self._stores.values()), {}
        for stores in all_stores:
            _close_quietly(stores)


def _close_quietly(stores: Stores) -> None:
    with contextlib.suppress(Exception):  # closing must not fail the loop; tokens also expire
        stores.close()


def left(deadline: float) -> Deadline:
    """The transport's deadline for a request of a cycle that must end at ``deadline``
    (``time.monotonic()``), never less than a tenth of a second."""
    from secretsboot.transport import Deadline

    return Deadline(max(deadline, time.monotonic() + 0.1))


def object_key(ref: Ref) -> tuple[str, str, str, str | None]:
    """The store object a source reads: several ``#KEY`` sources may share one."""
    return (ref.scheme, ref.store, ref.path, ref.version)


class Versions:
    """Each store object's version, asked once per cycle however many secrets share it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str, str, str | None], _Slot] = {}

    def get(
        self, key: tuple[str, str, str, str | None], ask: Callable[[], str | None]
    ) -> tuple[str | None, bool]:
        """``(version, whether this call sent the request)``; errors are shared too."""
        with self._lock:
            slot = self._slots.get(key)
            mine = slot is None
            if slot is None:
                slot = self._slots[key] = _Slot()
        if mine:
            try:
                slot.value = ask()
            except BaseException as exc:
                slot.error = exc
            finally:
                slot.done.set()
        else:
            slot.done.wait()
        if slot.error is not None:
            raise slot.error
        return slot.value, mine


class _Slot:
    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: str | None = None
        self.error: BaseException | None = None


class Background:
    """Run ``fn`` in a daemon thread; the caller waits for it or for ``stop``."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.error: BaseException | None = None
        self._done = threading.Event()

        def target() -> None:
            try:
                fn()
            except BaseException as exc:  # surfaced in wait_or_stop
                self.error = exc
            finally:
                self._done.set()

        threading.Thread(target=target, name="secretsboot-cycle", daemon=True).start()

    def wait_or_stop(self, stop: threading.Event) -> bool:
        """True when ``fn`` finished; False when ``stop`` was set first."""
        while not self._done.wait(0.05):
            if stop.is_set():
                return False
        if self.error is not None:
            raise self.error
        return True
