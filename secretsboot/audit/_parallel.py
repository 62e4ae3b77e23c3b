"""Parsing large inputs in worker processes, in input order, in a bounded window.

A folder is parsed by batches of files (:func:`map_files`), a large single file or
stdin by batches of documents (:func:`parse_stream`). Results come back in input
order, identical to a serial read; ``SECRETSBOOT_NO_PARALLEL=1`` turns it off.
Below :data:`PARALLEL_MIN_BYTES` a pool costs more than it saves (measured: 1.1 MB,
1,000 files: 0.45 s serial, 0.33 s with two workers). The cyclic garbage collector
is paused while reading (:func:`no_gc`): the objects are acyclic, and full
collections over 100,000s of dicts tripled the classification time.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import itertools
import os
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml

from secretsboot.audit._yamlfast import DocumentError, Parsed, parse_documents
from secretsboot.errors import WorkerDiedError

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

_R = TypeVar("_R")
_T = TypeVar("_T")

PARALLEL_MIN_BYTES = 512 * 1024
BATCH_BYTES = 2 * 1024 * 1024  # at most this much per batch; smaller batches balance the pool
MIN_BATCH_BYTES = 128 * 1024
MAX_WORKERS = 4
HELM_HINT = "unrendered Helm template: render it with `helm template`"


@dataclass(frozen=True, slots=True)
class Failure:
    """A document that could not be parsed: 1-based line in its chunk, and why."""

    line: int
    reason: str


Chunk = tuple[int, int, str]  # (0-based first line, line count, text)
ParsedChunk = tuple[int, int, str, "list[Parsed] | Failure"]


def enabled() -> bool:
    return (os.cpu_count() or 1) >= 2 and not os.environ.get("SECRETSBOOT_NO_PARALLEL")


def workers() -> int:
    return min(os.cpu_count() or 2, MAX_WORKERS)


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector: the audit builds 100,000s of acyclic dicts, and
    each full collection would walk all of them (measured: classification 3x slower)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def pool(
    initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
) -> Iterator[ProcessPoolExecutor]:
    """The audit's process pool: :func:`workers` processes that die with this one (a
    parent stopped by SIGTERM or SIGKILL leaves no worker behind, holding memory), and a
    worker that dies mid-run is said plainly (:class:`WorkerDiedError`)."""
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    try:
        with ProcessPoolExecutor(
            workers(),
            mp_context=_mp_context(),
            initializer=_start_worker,
            initargs=(os.getpid(), initializer, initargs),
        ) as executor:
            yield executor
    except BrokenProcessPool:
        raise WorkerDiedError(
            "a worker process of the audit stopped abruptly (killed, or out of memory); "
            "no report was written",
            hint="run it again; SECRETSBOOT_NO_PARALLEL=1 audits in one process (slower, "
            "and it holds the whole input at once)",
        ) from None


def _start_worker(
    parent: int, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    die_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when its parent dies (Linux: a worker's pipe
    to a dead parent would otherwise never close, and it would wait forever)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            pr_set_pdeathsig = 1
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _error_line(exc: BaseException) -> int:
    if isinstance(exc, DocumentError):
        return exc.line
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return int(mark.line) if mark is not None else 0


def _reason(exc: BaseException, text: str) -> str:
    if "{{" in text:
        return HELM_HINT
    if isinstance(exc, DocumentError):
        return f"invalid YAML: {exc}"
    if isinstance(exc, RecursionError):
        return "invalid YAML: document nests too deeply"
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"invalid YAML: {problem}"


def parse_chunk(chunk: Chunk) -> ParsedChunk:
    start, count, text = chunk
    try:
        return start, count, text, parse_documents(text)
    except (yaml.YAMLError, DocumentError, RecursionError, ValueError) as exc:
        return start, count, text, Failure(_error_line(exc) + 1, _reason(exc, text))


def _parse_texts(texts: list[str]) -> list[list[Parsed] | Failure]:
    """A worker's share of one stream: parse these documents' texts."""
    with no_gc():
        return [parse_chunk((0, 0, text))[3] for text in texts]


def _batches_of_chunks(chunks: Iterator[Chunk]) -> Iterator[list[Chunk]]:
    batch: list[Chunk] = []
    held = 0
    for chunk in chunks:
        batch.append(chunk)
        held += len(chunk[2])
        if held >= MIN_BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def parse_stream(chunks: Iterator[Chunk]) -> Iterator[ParsedChunk]:
    """Parse a stream's documents in order; past PARALLEL_MIN_BYTES, in worker processes.

    Batches are submitted a few at a time (a window), so only the text in flight is held.
    """
    head: list[Chunk] = []
    size = 0
    for chunk in chunks:
        head.append(chunk)
        size += len(chunk[2])
        if size >= PARALLEL_MIN_BYTES:
            break
    else:  # a small stream: not worth a pool
        yield from map(parse_chunk, head)
        return
    if not enabled():
        yield from map(parse_chunk, itertools.chain(head, chunks))
        return
    n = workers()
    window: collections.deque[tuple[list[Chunk], Future[list[list[Parsed] | Failure]]]]
    window = collections.deque()
    with pool() as executor:
        for batch in _batches_of_chunks(itertools.chain(head, chunks)):
            window.append((batch, executor.submit(_parse_texts, [c[2] for c in batch])))
            if len(window) > 2 * n:
                yield from _drain(window.popleft())
        while window:
            yield from _drain(window.popleft())


def _drain(
    item: tuple[list[Chunk], Future[list[list[Parsed] | Failure]]],
) -> Iterator[ParsedChunk]:
    batch, future = item
    for (start, count, text), docs in zip(batch, future.result(), strict=True):
        yield start, count, text, docs


def _mp_context() -> Any:
    import multiprocessing
    import threading

    # fork is cheap, but not safe once threads exist (a test's servers): spawn then
    return multiprocessing.get_context("fork" if threading.active_count() == 1 else "spawn")


def total_size(files: list[Path], stop_at: int | None = None) -> int:
    total = 0
    for f in files:
        with contextlib.suppress(OSError):
            total += f.stat().st_size
        if stop_at is not None and total >= stop_at:
            break
    return total


def worth_it(files: list[Path]) -> bool:
    """Is a pool worth starting for this folder's files?"""
    if not enabled() or len(files) < 4:
        return False
    return total_size(files, stop_at=PARALLEL_MIN_BYTES) >= PARALLEL_MIN_BYTES


def file_batches(files: list[Path], n: int) -> list[list[str]]:
    target = min(BATCH_BYTES, max(MIN_BATCH_BYTES, total_size(files) // (n * 4)))
    out: list[list[str]] = [[]]
    size = 0
    for f in files:
        if size >= target:
            out.append([])
            size = 0
        out[-1].append(str(f))
        with contextlib.suppress(OSError):
            size += f.stat().st_size
    return out


def map_files(load_batch: Callable[[list[str]], _R], files: list[Path]) -> Iterator[_R]:
    """``load_batch`` over batches of ``files`` in worker processes, results in file order,
    at most a window of batches in flight (so a huge folder's results are not all held)."""
    return map_ordered(load_batch, file_batches(files, workers()))


def map_ordered(fn: Callable[[_T], _R], items: Iterable[_T]) -> Iterator[_R]:
    """``fn`` over ``items`` in worker processes, results in input order, at most a window
    of ``2 x workers`` in flight. An exception is raised where its item comes in order."""
    n = workers()
    window: collections.deque[Future[_R]] = collections.deque()
    with pool() as executor:
        try:
            for item in items:
                window.append(executor.submit(fn, item))
                if len(window) > 2 * n:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for future in window:
                future.cancel()
