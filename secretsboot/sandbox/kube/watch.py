"""Watches: the store's event window and the API server's watch stream.

Every write to the store appends an event (``ADDED``/``MODIFIED``/``DELETED``,
numbered by the object's new ``resourceVersion``) to a bounded window, as the
API server's watch cache keeps one. A watch (``?watch=true``) then streams, as
newline-delimited JSON over a chunked response:

- with no ``resourceVersion`` (or ``"0"``): an ``ADDED`` event per object that
  exists, then every change;
- with ``resourceVersion=N``: every change after N; when N is older than the
  window, one ``ERROR`` event carrying a 410 ``Expired`` Status (the real
  server sends it the same way, inside a 200 stream);
- with ``sendInitialEvents=true`` (client-go's WatchList, kubectl's waits): an
  ``ADDED`` event per object, then a ``BOOKMARK`` annotated
  ``k8s.io/initial-events-end``, then every change;
- ``BOOKMARK`` events every ``bookmark_seconds`` when ``allowWatchBookmarks``;
- the stream ends after ``timeoutSeconds``.

An object that stops matching the watch's selectors is sent as ``DELETED``,
one that starts matching as ``ADDED``, as the watch cache does.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from secretsboot.sandbox.kube.resources import ApiError, Resource

Obj = dict[str, Any]
_DEFAULT_TIMEOUT = 1800.0  # the API server's --min-request-timeout
_TICK = 0.25  # how often an idle stream checks for its end (and the server's)


@dataclass(frozen=True)
class Event:
    rv: int
    type: str
    group: str
    plural: str
    namespace: str
    obj: Obj
    prev: Obj | None = None  # the object before a MODIFIED change


class EventLog:
    """The last ``window`` events, guarded by the store's lock."""

    def __init__(self, lock: threading.RLock, window: int = 5000) -> None:
        self.cond = threading.Condition(lock)
        self._events: deque[Event] = deque(maxlen=window)
        self.compacted = 0  # events numbered up to this one are gone

    def record(self, event: Event) -> None:
        """Append (the caller holds the lock) and wake the watchers."""
        if self._events.maxlen is not None and len(self._events) == self._events.maxlen:
            self.compacted = self._events[0].rv
        self._events.append(event)
        self.cond.notify_all()

    def compact(self, rv: int) -> None:
        """Forget every event up to ``rv`` (as an etcd compaction does)."""
        while self._events and self._events[0].rv <= rv:
            self._events.popleft()
        self.compacted = max(self.compacted, rv)

    def since(self, rv: int, current: int) -> list[Event]:
        """Events after ``rv``; 410 Expired when some of them are gone."""
        if rv < self.compacted:
            raise ApiError(
                410, "Expired", f"too old resource version: {rv} ({max(self.compacted, current)})"
            )
        return [e for e in self._events if e.rv > rv]


@dataclass(frozen=True)
class WatchSpec:
    resource: Resource
    namespace: str | None
    matches: Callable[[Obj], bool]
    resource_version: str | None
    timeout: float | None
    bookmarks: bool
    initial_events: bool = False  # sendInitialEvents (client-go's WatchList)


def _line(event_type: str, obj: Obj) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


class WatchStream:
    """One watch's chunks (``bytes``; ``b""`` while idle) until timeout or ``closing``."""

    def __init__(
        self,
        log: EventLog,
        snapshot: Callable[[WatchSpec], tuple[int, list[Obj]]],
        spec: WatchSpec,
        closing: threading.Event,
        bookmark_seconds: float,
    ) -> None:
        self.log, self.snapshot, self.spec = log, snapshot, spec
        self.closing = closing
        self.bookmark_seconds = bookmark_seconds

    def _relevant(self, e: Event) -> bool:
        r = self.spec.resource
        return (e.group, e.plural) == (r.group, r.plural) and (
            self.spec.namespace is None or e.namespace == self.spec.namespace
        )

    def _translate(self, e: Event) -> tuple[str, Obj] | None:
        """The event this watch sends for ``e`` (selectors applied), if any."""
        now = self.spec.matches(e.obj)
        if e.type == "MODIFIED" and e.prev is not None:
            before = self.spec.matches(e.prev)
            if before and not now:
                return "DELETED", e.obj
            if now and not before:
                return "ADDED", e.obj
        return (e.type, e.obj) if now else None

    def _bookmark(self, rv: int, *, initial_end: bool = False) -> bytes:
        r = self.spec.resource
        meta: dict[str, Any] = {"resourceVersion": str(rv)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _line("BOOKMARK", {"kind": r.kind, "apiVersion": r.api_version, "metadata": meta})

    def _start(self) -> tuple[int, list[Obj], bytes | None]:
        """(the version to follow from, the initial ADDED objects, an ERROR line)."""
        rv_arg = self.spec.resource_version
        with self.log.cond:
            current, initial = self.snapshot(self.spec)
            if rv_arg in (None, "", "0") or self.spec.initial_events:
                return current, initial, None
            after = int(str(rv_arg))
            try:
                self.log.since(after, current)
            except ApiError as exc:
                return after, [], _line("ERROR", exc.status())
            return after, [], None

    def _next(self, after: int, wait: float) -> tuple[int, list[Event], bytes | None]:
        """Events after ``after`` (waiting up to ``wait`` for some), never yielding the lock."""
        with self.log.cond:
            try:
                events = self.log.since(after, after)
                if not events:
                    self.log.cond.wait(wait)
                    events = self.log.since(after, after)
            except ApiError as exc:  # fell out of the window while idle
                return after, [], _line("ERROR", exc.status())
        if events:
            after = events[-1].rv
        return after, [e for e in events if self._relevant(e)], None

    def __iter__(self) -> Iterator[bytes]:
        timeout = self.spec.timeout if self.spec.timeout is not None else _DEFAULT_TIMEOUT
        deadline = time.monotonic() + timeout
        after, initial, error = self._start()
        if error is not None:
            yield error
            return
        for obj in initial:
            yield _line("ADDED", obj)
        if self.spec.initial_events:
            yield self._bookmark(after, initial_end=True)
        next_bookmark = time.monotonic() + self.bookmark_seconds
        while not self.closing.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            after, events, error = self._next(after, min(_TICK, deadline - now))
            if error is not None:
                yield error
                return
            for e in events:
                sent = self._translate(e)
                if sent is not None:
                    yield _line(sent[0], copy.deepcopy(sent[1]))
            if self.spec.bookmarks and time.monotonic() >= next_bookmark:
                next_bookmark = time.monotonic() + self.bookmark_seconds
                yield self._bookmark(after)
            yield b""


def parse_timeout(value: str | None) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'invalid timeoutSeconds "{value}"') from None
    return float(max(seconds, 0))
