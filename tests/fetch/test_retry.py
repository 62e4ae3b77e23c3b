"""The retry policy, on a fake clock: what is retried, how long it waits, when it stops."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from secretsboot.errors import (
    BadInputError,
    DeniedError,
    NotFoundError,
    PropagationPendingError,
    UnavailableError,
)
from secretsboot.fetch.retry import RetryPolicy, retry_call


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def failing(errors: list[Exception], clock: FakeClock, cost: float = 0.0) -> Callable[[], str]:
    """A call that raises each error in turn (each taking ``cost`` seconds), then succeeds."""
    queue = list(errors)

    def call() -> str:
        clock.now += cost
        if queue:
            raise queue.pop(0)
        return "value"

    return call


def policy(clock: FakeClock, **kw: float) -> RetryPolicy:
    return RetryPolicy.starting(clock, **kw)  # type: ignore[arg-type]


def test_transient_errors_are_retried_with_growing_jittered_delays() -> None:
    clock = FakeClock()
    call = failing([UnavailableError("503")] * 4, clock)
    assert retry_call(call, policy(clock), clock, random.Random(1)) == "value"
    assert len(clock.sleeps) == 4
    for attempt, slept in enumerate(clock.sleeps, start=1):
        ceiling = min(5.0, 0.1 * 2 ** (attempt - 1))
        assert ceiling / 2 <= slept <= ceiling


def test_retry_after_is_honoured_never_undercut() -> None:
    clock = FakeClock()
    call = failing([UnavailableError("429", retry_after=3)] * 2, clock)
    retry_call(call, policy(clock), clock, random.Random(2))
    assert all(3.0 <= s <= 3.6 for s in clock.sleeps)


@pytest.mark.parametrize(
    "error",
    [
        BadInputError("bad"),
        NotFoundError("gone"),
        DeniedError("no"),
    ],
)
def test_permanent_errors_are_not_retried(error: Exception) -> None:
    clock = FakeClock()
    with pytest.raises(type(error)):
        retry_call(failing([error], clock), policy(clock), clock)
    assert clock.sleeps == []


def test_gives_up_before_crossing_the_deadline() -> None:
    clock = FakeClock()
    call = failing([UnavailableError("429", retry_after=4)] * 10, clock, cost=0.5)
    with pytest.raises(UnavailableError, match="deadline passed") as info:
        retry_call(call, policy(clock, timeout=10), clock, random.Random(3))
    assert clock.now - 1000.0 <= 10.0 + 0.5  # the last wait ended before the deadline
    assert len(clock.sleeps) == 2
    assert info.value.retry_after == 4


def test_attempts_are_capped() -> None:
    clock = FakeClock()
    call = failing([UnavailableError("down")] * 100, clock)
    with pytest.raises(UnavailableError):
        retry_call(call, RetryPolicy.starting(clock, max_attempts=3), clock)
    assert len(clock.sleeps) == 2


def test_propagation_denials_are_retried_only_within_the_window() -> None:
    clock = FakeClock()
    errors: list[Exception] = [PropagationPendingError("AADSTS70021")] * 50
    call = failing(errors, clock, cost=0.2)
    with pytest.raises(PropagationPendingError):
        retry_call(call, policy(clock, timeout=60, propagation_window=5), clock, random.Random(4))
    elapsed = clock.now - 1000.0
    assert 5.0 <= elapsed <= 6.0  # stopped right after the window, far before the deadline
    assert clock.sleeps


def test_propagation_then_success() -> None:
    clock = FakeClock()
    call = failing([PropagationPendingError("403")] * 3, clock)
    assert retry_call(call, policy(clock, propagation_window=30), clock) == "value"


def test_no_window_means_no_retry_of_denials() -> None:
    clock = FakeClock()
    with pytest.raises(PropagationPendingError):
        retry_call(
            failing([PropagationPendingError("403")], clock),
            policy(clock, propagation_window=0),
            clock,
        )
    assert clock.sleeps == []


def test_a_429_storm_is_ridden_out_to_the_deadline_on_the_last_source() -> None:
    clock = FakeClock()
    storm = failing([UnavailableError("429", retry_after=2)] * 1000, clock, cost=0.01)
    with pytest.raises(UnavailableError, match="asked to retry after 2 s") as info:
        retry_call(storm, policy(clock, timeout=60), clock, random.Random(5), until_deadline=True)
    # not abandoned after max_attempts (6): retried every ~2 s until the deadline
    assert len(clock.sleeps) > 20
    assert clock.now == pytest.approx(1060.0, abs=0.05)
    assert "429" in str(info.value)


def test_a_storm_on_a_source_with_a_fallback_stops_after_max_attempts() -> None:
    clock = FakeClock()
    storm = failing([UnavailableError("429", retry_after=2)] * 1000, clock)
    with pytest.raises(UnavailableError, match="429"):
        retry_call(storm, policy(clock, timeout=60), clock, random.Random(6))
    assert len(clock.sleeps) == 5, "the fallback gets its turn"


def test_retry_after_longer_than_what_remains_waits_it_out_then_says_so() -> None:
    clock = FakeClock()
    call = failing([UnavailableError("Key Vault answered 429", retry_after=30)], clock, 0.2)
    with pytest.raises(UnavailableError) as info:
        retry_call(call, policy(clock, timeout=10), clock, until_deadline=True)
    assert clock.now == pytest.approx(1010.0)  # waited what remained, not less
    assert "asked to retry after 30 s, more than the 9.8 s that remained" in str(info.value)


def test_backoff_without_retry_after_gives_up_when_the_deadline_comes() -> None:
    clock = FakeClock()
    down = failing([UnavailableError("connection refused")] * 1000, clock, cost=0.05)
    with pytest.raises(UnavailableError, match="the deadline passed after"):
        retry_call(down, policy(clock, timeout=20), clock, random.Random(7), until_deadline=True)
    assert 1015.0 <= clock.now <= 1020.0
