"""Specification of the reachability guard, on a fake clock: when a batch gives up on a server.

A batch none of whose attempts gets an HTTP answer stops at the tenth connection
failure, or ten seconds (by its clock) after the first one, whichever comes first;
once any attempt has been answered, with any status, it never stops for this.
(End to end, against closed ports and silent peers: tests/test_unreachable.py and
tests/test_integrity_reach.py.)
"""

from __future__ import annotations

import pytest

import stripe_sessions as ss
from stripe_sessions._batch.reach import UNREACHABLE_ATTEMPTS, UNREACHABLE_SECONDS, Reachability

TARGET = "http://127.0.0.1:9"


class Clock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def refused(key: str = "k-0") -> ss.APIConnectionError:
    """What the transport raises when nothing answered HTTP (``reached`` is False)."""
    error = ss.APIConnectionError(
        f"Could not reach Stripe at {TARGET}: connection refused", idempotency_key=key
    )
    error.reached = False
    return error


def guard() -> tuple[Reachability, Clock]:
    clock = Clock()
    return Reachability(TARGET, clock=clock), clock


def test_the_tenth_failure_with_no_answer_stops_the_batch_once() -> None:
    reach, clock = guard()
    for i in range(UNREACHABLE_ATTEMPTS - 1):
        clock.now += 0.01
        assert reach.failed(refused(f"k-{i}")) is None
    stop = reach.failed(refused("k-9"))
    assert isinstance(stop, ss.APIConnectionError) and stop is reach.error
    assert stop.reached is False
    assert str(stop).startswith(
        f"stopped the batch: none of its first 10 attempts reached {TARGET} "
        "(connection refused); items not yet sent were not sent"
    )
    assert stop.idempotency_key == "k-9"
    assert reach.failed(refused()) is None  # said once; the batch is already stopping


def test_ten_seconds_after_the_first_failure_the_next_one_stops_the_batch() -> None:
    reach, clock = guard()
    assert reach.failed(refused()) is None
    clock.now += UNREACHABLE_SECONDS - 1e-6
    assert reach.failed(refused()) is None  # the second failure, just inside
    clock.now += 1e-6
    stop = reach.failed(refused())
    assert stop is not None and "none of its first 3 attempts" in str(stop)


def test_time_without_failures_stops_nothing() -> None:
    reach, clock = guard()
    clock.now += 3600.0
    assert reach.failed(refused()) is None  # the ten seconds count from the first failure


@pytest.mark.parametrize(
    "answer",
    [
        ss.APIError("Stripe answered HTTP 500", http_status=500),
        ss.InvalidRequestError("bad", http_status=400),
        ss.RateLimitError("slow down", http_status=429),
    ],
    ids=["500", "400", "429"],
)
def test_any_answer_even_an_error_means_reached_for_good(answer: ss.StripeError) -> None:
    reach, clock = guard()
    assert reach.failed(refused()) is None
    assert reach.failed(answer) is None and reach.reached
    for _ in range(3 * UNREACHABLE_ATTEMPTS):
        clock.now += UNREACHABLE_SECONDS
        assert reach.failed(refused()) is None
    assert reach.error is None


def test_a_success_means_reached_for_good() -> None:
    reach, clock = guard()
    reach.answered()
    for _ in range(3 * UNREACHABLE_ATTEMPTS):
        clock.now += UNREACHABLE_SECONDS
        assert reach.failed(refused()) is None


def test_a_connection_that_broke_after_an_answer_began_counts_as_reached() -> None:
    reach, _ = guard()
    broken = ss.APIConnectionError("the connection broke while reading the answer")
    broken.reached = True
    assert reach.failed(broken) is None and reach.reached


def test_a_connection_error_of_unknown_reach_counts_as_reached() -> None:
    # Not known to have had no answer: the guard never stops a batch on a guess.
    reach, _ = guard()
    unknown = ss.APIConnectionError("something")  # reached is None: not known
    for _ in range(3 * UNREACHABLE_ATTEMPTS):
        assert reach.failed(unknown) is None
    assert reach.reached and reach.failures == 0 and reach.error is None


def test_an_exception_that_is_no_stripe_error_is_not_an_answer() -> None:
    reach, _ = guard()
    assert reach.failed(RuntimeError("a bug")) is None
    assert not reach.reached and reach.failures == 0
    for _ in range(UNREACHABLE_ATTEMPTS - 1):
        assert reach.failed(refused()) is None
    assert reach.failed(refused()) is not None
