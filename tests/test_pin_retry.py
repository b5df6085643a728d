"""Pins of RetryPolicy's waits, its hand-off to a pacer, and its log line (issue #19, mutmut).

End to end through a client and FakeStripe where a behaviour shows there (the log line
carries the wait), and on :class:`RetryPolicy` directly for its arithmetic. Jitter is
made deterministic by replacing the module's ``random`` with one that always draws
the top (or bottom) of its range: no wall-clock window is asserted anywhere.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable

import pytest

import stripe_sessions as ss
from stripe_sessions._http import retry as _retry
from stripe_sessions._http.retry import RetryPolicy, is_rate_limit, should_retry
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING

#: Stripe's own waits: 0.5 s doubling up to 5 s; a batch's pause 1 s, at most 60 s.
STRIPE = RetryPolicy()
_ITEM = {"customer": "cus_1", "components": PRICING}


def _draws(pick: Callable[[float, float], float]) -> types.SimpleNamespace:
    return types.SimpleNamespace(uniform=pick)


@pytest.fixture
def top(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every jittered wait is the top of its range (``whole``)."""
    monkeypatch.setattr(_retry, "random", _draws(lambda low, high: high))


@pytest.fixture
def bottom(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every jittered wait is the bottom of its range (``whole / 2``)."""
    monkeypatch.setattr(_retry, "random", _draws(lambda low, high: low))


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "stripe_sessions"]


def _rate_limit(**kw: object) -> ss.RateLimitError:
    return ss.RateLimitError("slow down", http_status=429, code="rate_limit", **kw)  # type: ignore[arg-type]


# The rules.


def test_rules_for_errors_without_a_status_and_for_other_exceptions() -> None:
    assert not should_retry(ss.StripeError("x"))  # no HTTP status, not a connection error
    assert not should_retry(ss.StripeError("x", should_retry=True))  # no status: no answer
    assert should_retry(ss.StripeError("x", http_status=501))
    assert should_retry(ss.StripeError("x", http_status=599))
    assert not should_retry(ss.StripeError("x", http_status=499))
    assert not should_retry(ss.StripeError("x", http_status=408))
    assert not should_retry(ss.StripeError("x", http_status=410))
    assert should_retry(ss.StripeError("x", http_status=429, code="lock_timeout"))
    assert not should_retry(ss.StripeError("x", http_status=429))
    assert not should_retry(ss.StripeError("x", http_status=503, should_retry=False))
    assert is_rate_limit(_rate_limit())
    assert is_rate_limit(ss.StripeError("x", code="rate_limit"))
    assert not is_rate_limit(ss.StripeError("x", http_status=429, code="lock_timeout"))
    assert not is_rate_limit(ValueError("rate_limit"))
    assert not is_rate_limit(ss.StripeError("x"))


def test_retries_needs_a_retry_left_and_a_retryable_failure() -> None:
    server = ss.APIError("x", http_status=500)
    bad = ss.InvalidRequestError("x", http_status=400)
    assert STRIPE.retries(server)
    assert RetryPolicy(max_retries=1).retries(server)
    assert not RetryPolicy(max_retries=0).retries(server)
    assert not RetryPolicy(max_retries=0).retries(_rate_limit(), paced=True)
    assert not STRIPE.retries(bad)
    assert not STRIPE.retries(bad, paced=True)  # paced retries a rate_limit 429, nothing else
    assert not STRIPE.retries(_rate_limit())
    assert STRIPE.retries(_rate_limit(), paced=True)
    assert STRIPE.retries(server, paced=True)


# The arithmetic.


@pytest.mark.usefixtures("top")
def test_backoff_at_the_top_of_its_jitter() -> None:
    assert [STRIPE.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    policy = RetryPolicy(initial_wait=0.25, max_wait=3.0)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5)] == [0.25, 0.5, 1.0, 2.0, 3.0]


@pytest.mark.usefixtures("bottom")
def test_backoff_at_the_bottom_of_its_jitter_is_never_under_the_first_wait() -> None:
    assert [STRIPE.backoff(n) for n in (1, 2, 3, 4, 5, 6)] == [0.5, 0.5, 1.0, 2.0, 2.5, 2.5]


@pytest.mark.usefixtures("top")
def test_wait_paced_rate_limit_is_zero_and_nothing_else_is() -> None:
    assert STRIPE.wait(_rate_limit(), 1, paced=True) == 0.0
    assert STRIPE.wait(_rate_limit(), 3, paced=True) == 0.0
    assert STRIPE.wait(_rate_limit(headers={"Retry-After": "4"}), 1, paced=True) == 0.0
    assert STRIPE.wait(_rate_limit(), 1) == 0.5  # not paced: a backoff like any other
    assert STRIPE.wait(_rate_limit(), 2) == 1.0
    server = ss.APIError("x", http_status=500)
    assert STRIPE.wait(server, 1, paced=True) == 0.5
    assert STRIPE.wait(server, 3, paced=True) == 2.0
    asked = ss.APIError("x", http_status=503, headers={"Retry-After": "3"})
    assert STRIPE.wait(asked, 1, paced=True) == 3.0
    assert STRIPE.wait(asked, 4) == 4.0  # the backoff is longer than what was asked


def test_pause_for_is_capped_by_max_pause() -> None:
    policy = RetryPolicy(pause=1.5, max_pause=2.0)
    assert policy.pause_for(10.0) == 2.0
    assert policy.pause_for(1.75) == 1.75
    assert policy.pause_for(None) == 1.5
    assert policy.pause_for(-1.0) == 1.5
    assert RetryPolicy(pause=3.0, max_pause=2.0).pause_for(None) == 2.0
    assert RetryPolicy(max_pause=0.0).pause_for(30.0) == 0.0
    assert STRIPE.pause_for(3600.0) == 60.0


# The retries: the first wait in plain code, then tenacity.


class _Attempts:
    """An attempt that fails with the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "ok"


@pytest.mark.usefixtures("top")
async def test_first_wait_is_the_first_backoff_and_each_later_one_doubles(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(max_retries=4, initial_wait=0.01, max_wait=0.04)
    attempts = _Attempts(*(ss.APIError("x", http_status=500) for _ in range(3)))
    assert await policy.retry(ss.APIError("x", http_status=500), attempts) == "ok"
    assert attempts.calls == 4
    waits = [m.split(" in ")[1].split("s (")[0] for m in _messages(caplog)]
    assert waits == ["0.01", "0.02", "0.04", "0.04"]
    numbers = [m.split("(attempt ")[1].split(" ")[0] for m in _messages(caplog)]
    assert numbers == ["1", "2", "3", "4"]


async def test_the_last_failure_is_raised_after_max_retries() -> None:
    policy = RetryPolicy(max_retries=3, initial_wait=0.001, max_wait=0.001)
    last = ss.APIError("last", http_status=502)
    attempts = _Attempts(ss.APIError("x", http_status=500), ss.APIError("x", http_status=503), last)
    with pytest.raises(ss.APIError) as info:
        await policy.retry(ss.APIError("first", http_status=500), attempts)
    assert info.value is last
    assert attempts.calls == 3


async def test_a_paced_rate_limit_is_handed_to_the_pacer_and_not_waited(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    told: list[ss.StripeError] = []
    policy = RetryPolicy(initial_wait=0.05, max_wait=0.05)
    first, second = _rate_limit(request_id="req_1"), _rate_limit(request_id="req_2")
    attempts = _Attempts(second)
    assert await policy.retry(first, attempts, on_rate_limited=told.append) == "ok"
    assert told == [first, second]
    assert attempts.calls == 2
    messages = _messages(caplog)
    assert len(messages) == 2
    assert all(" in 0.00s " in m for m in messages)


async def test_the_pacer_is_told_of_rate_limits_only(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    told: list[ss.StripeError] = []
    policy = RetryPolicy(initial_wait=0.05, max_wait=0.05)
    attempts = _Attempts(ss.APIError("x", http_status=503))
    result = await policy.retry(
        ss.APIError("x", http_status=500), attempts, on_rate_limited=told.append
    )
    assert result == "ok"
    assert told == []
    assert all(" in 0.05s " in m for m in _messages(caplog))


async def test_without_a_pacer_a_later_rate_limit_is_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(initial_wait=0.02, max_wait=0.02)
    later = _rate_limit()
    attempts = _Attempts(later)
    with pytest.raises(ss.RateLimitError) as info:
        await policy.retry(ss.APIError("x", http_status=500), attempts)
    assert info.value is later
    assert attempts.calls == 1
    # A rate_limit 429 handed to retry() without a pacer is waited like any failure.
    caplog.clear()
    assert await policy.retry(_rate_limit(), _Attempts()) == "ok"
    assert [" in 0.02s " in m for m in _messages(caplog)] == [True]


async def test_no_log_line_below_info(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="stripe_sessions")
    policy = RetryPolicy(initial_wait=0.001, max_wait=0.001)
    assert await policy.retry(ss.APIError("x", http_status=500), _Attempts()) == "ok"
    assert _messages(caplog) == []


# The log line, end to end.


@pytest.mark.usefixtures("top")
async def test_the_log_line_word_for_word(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(initial_wait=0.01, max_wait=0.04)
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", policy)
    fake.fail_next(503)
    fake.reset_next()
    fake.fail_next(429, code="lock_timeout")
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, max_retries=3) as c:
        await c.customer_sessions.create(customer="cus_1", components=PRICING)
    key = fake.requests[0].idempotency_key
    first, _, third = fake.requests[:3]
    assert _messages(caplog) == [
        "retrying customer session request in 0.01s (attempt 1 failed: APIError HTTP 503, "
        f"request_id={first.request_id}, idempotency_key={key})",
        "retrying customer session request in 0.02s (attempt 2 failed: APIConnectionError, "
        f"request_id=None, idempotency_key={key})",
        "retrying customer session request in 0.04s (attempt 3 failed: RateLimitError HTTP 429 "
        f"code=lock_timeout, request_id={third.request_id}, idempotency_key={key})",
    ]


async def test_a_batch_hands_its_rate_limit_to_the_pacer_without_a_wait(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The pause (0 here) is the pacer's; the retry itself waits nothing, and a second
    # rate_limit 429 is retried too (paced through tenacity's attempts as well).
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(initial_wait=0.05, max_wait=0.05, pause=0.0, max_pause=0.0)
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", policy)
    fake.fail_next(429, times=2)
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        [result] = await c.customer_sessions.create_many([_ITEM], concurrency=1, rate_limit=None)
    assert result.ok and result.attempts == 3
    messages = _messages(caplog)
    retries = [m for m in messages if m.startswith("retrying")]
    assert len(retries) == 2
    assert all(
        " in 0.00s " in m and "RateLimitError HTTP 429 code=rate_limit" in m for m in retries
    )


async def test_retrying_on_its_own_makes_every_attempt_and_numbers_them_from_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # retrying() without attempts_made: the whole call is tenacity's, max_retries + 1 attempts.
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(max_retries=2, initial_wait=0.001, max_wait=0.001)
    attempts = _Attempts(*(ss.APIError("x", http_status=500) for _ in range(5)))
    with pytest.raises(ss.APIError):
        async for trying in policy.retrying():
            with trying:
                await attempts()
    assert attempts.calls == 3
    numbers = [m.split("(attempt ")[1].split(" ")[0] for m in _messages(caplog)]
    assert numbers == ["1", "2"]


async def test_a_custom_retryable_may_retry_what_is_not_a_stripe_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # ``retryable`` is a field: whatever it accepts is retried and logged by its type.
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    policy = RetryPolicy(initial_wait=0.01, max_wait=0.01, retryable=lambda exc: True)
    attempts = _Attempts(OSError("down"))
    assert await policy.retry(ss.APIError("x", http_status=500), attempts) == "ok"
    assert _messages(caplog)[1] == (
        "retrying customer session request in 0.01s (attempt 2 failed: OSError, "
        "request_id=None, idempotency_key=None)"
    )
