"""Stripe's retry rules, end to end against the fake: what is retried, how often, with which key."""

from __future__ import annotations

import logging
from unittest import mock

import pytest
from tenacity import RetryCallState

import stripe_sessions as ss
from stripe_sessions._http import retry as _retry
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


async def _create(client: ss.AsyncClient, **kw: object) -> ss.CustomerSession:
    return await client.customer_sessions.create(customer="cus_1", components=PRICING, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "code"), [(500, None), (502, None), (503, None), (409, None), (429, "lock_timeout")]
)
async def test_retried_failures_succeed_with_one_key(
    client: ss.AsyncClient, fake: FakeStripe, status: int, code: str | None
) -> None:
    fake.fail_next(status, times=2, code=code)
    session = await _create(client)
    assert [r.status for r in fake.requests] == [status, status, 200]
    keys = {r.idempotency_key for r in fake.requests}
    assert len(keys) == 1 and None not in keys
    assert fake.created == 1
    assert session.request_id == fake.requests[-1].request_id


async def test_connection_reset_is_retried(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.reset_next(times=2)
    await _create(client)
    assert len(fake.requests) == 3
    assert fake.created == 1


async def test_reset_after_create_replays_instead_of_duplicating(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.reset_next(after_create=True)
    session = await _create(client)
    assert fake.created == 1
    assert session.idempotent_replayed is True
    assert session.client_secret == fake.sessions[0]["client_secret"]


async def test_truncated_body_is_retried(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.truncate_next()
    await _create(client)
    assert len(fake.requests) == 2


async def test_timeout_is_retried_then_raised(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.slow_next(0.5, times=3)
    with pytest.raises(ss.APITimeoutError) as info:
        await _create(client, timeout=0.1)
    assert isinstance(info.value, ss.APIConnectionError)
    assert len(fake.requests) == 3
    assert info.value.idempotency_key == fake.requests[0].idempotency_key


async def test_timeout_then_success(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.slow_next(0.5)
    await _create(client, timeout=0.2)
    assert len({r.idempotency_key for r in fake.requests}) == 1


async def test_rate_limit_429_is_not_retried(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.fail_next(429, times=3)
    with pytest.raises(ss.RateLimitError) as info:
        await _create(client)
    assert len(fake.requests) == 1
    assert info.value.retry_after is None  # Stripe sends no Retry-After
    fake.retry_after = 1.0
    with pytest.raises(ss.RateLimitError) as info:
        await _create(client)
    assert len(fake.requests) == 2
    assert info.value.retry_after == 1.0


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404])
async def test_client_errors_are_not_retried(
    client: ss.AsyncClient, fake: FakeStripe, status: int
) -> None:
    fake.fail_next(status, times=3)
    with pytest.raises(ss.StripeError):
        await _create(client)
    assert len(fake.requests) == 1


async def test_should_retry_header_false_stops_a_retryable_status(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(503, times=3, headers={"Stripe-Should-Retry": "false"})
    with pytest.raises(ss.APIError) as info:
        await _create(client)
    assert len(fake.requests) == 1
    assert info.value.should_retry is False


async def test_should_retry_header_true_retries_a_client_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(400, times=1, headers={"Stripe-Should-Retry": "true"})
    await _create(client)
    assert len(fake.requests) == 2


async def test_max_retries_bounds_attempts(fake: FakeStripe) -> None:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, max_retries=4) as c:
        fake.fail_next(500, times=10)
        with pytest.raises(ss.APIError):
            await _create(c)
        assert len(fake.requests) == 5
        fake.requests.clear()
        with pytest.raises(ss.APIError):
            await _create(c, max_retries=0)
        assert len(fake.requests) == 1


async def test_callers_idempotency_key_is_sent_as_given(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(500)
    first = await _create(client, idempotency_key="order-42")
    second = await _create(client, idempotency_key="order-42")
    assert [r.idempotency_key for r in fake.requests] == ["order-42"] * 3
    assert fake.created == 1
    assert second.idempotent_replayed and second.client_secret == first.client_secret


async def test_each_logical_call_gets_a_new_key(client: ss.AsyncClient, fake: FakeStripe) -> None:
    await _create(client)
    await _create(client)
    assert len({r.idempotency_key for r in fake.requests}) == 2
    assert fake.created == 2


async def test_same_key_other_params_is_an_idempotency_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    await _create(client, idempotency_key="k1")
    with pytest.raises(ss.IdempotencyError) as info:
        await client.customer_sessions.create(
            customer="cus_2", components=PRICING, idempotency_key="k1"
        )
    assert info.value.idempotency_key == "k1"
    assert len(fake.requests) == 2


async def test_each_retry_is_logged_with_request_id_and_reason(
    client: ss.AsyncClient, fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    fake.fail_next(503)
    await _create(client)
    records = [r for r in caplog.records if r.name == "stripe_sessions"]
    assert len(records) == 1
    message = records[0].getMessage()
    assert fake.requests[0].request_id in message
    assert "HTTP 503" in message
    assert str(fake.requests[0].idempotency_key) in message


def test_backoff_follows_stripe_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_retry, "INITIAL_DELAY", 0.5)
    monkeypatch.setattr(_retry, "MAX_DELAY", 5.0)
    for attempt, whole in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)]:
        for _ in range(50):
            delay = _retry.backoff(attempt)
            assert max(0.5, whole / 2) <= delay <= whole


def _state_with(exc: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(retry_object=mock.Mock(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(exc), exc, None))
    return state


def test_retry_after_is_honoured_up_to_the_documented_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A single call never waits longer than MAX_DELAY (5 s) between attempts."""
    monkeypatch.setattr(_retry, "INITIAL_DELAY", 0.5)
    monkeypatch.setattr(_retry, "MAX_DELAY", 5.0)
    monkeypatch.setattr(_retry, "MAX_RETRY_AFTER", 60.0)
    lock = ss.RateLimitError(
        "x", http_status=429, code="lock_timeout", headers={"Retry-After": "4"}
    )
    assert _retry.wait(_state_with(lock)) == 4.0
    longer = ss.RateLimitError(
        "x", http_status=429, code="lock_timeout", headers={"Retry-After": "7"}
    )
    assert _retry.wait(_state_with(longer)) == 5.0
    huge = ss.APIError("x", http_status=503, headers={"Retry-After": "3600"})
    assert _retry.wait(_state_with(huge)) == 5.0
    short = ss.APIError("x", http_status=503, headers={"Retry-After": "0"})
    assert 0.5 <= _retry.wait(_state_with(short, attempt=3)) <= 2.0


def test_retry_rules_table() -> None:
    def err(status: int, code: str | None = None, retry: bool | None = None) -> ss.StripeError:
        return ss.StripeError("x", http_status=status, code=code, should_retry=retry)

    assert _retry.should_retry(ss.APIConnectionError("down"))
    assert _retry.should_retry(ss.APITimeoutError("slow"))
    assert _retry.should_retry(err(409))
    assert _retry.should_retry(err(500))
    assert _retry.should_retry(err(429, "lock_timeout"))
    assert not _retry.should_retry(err(429, "rate_limit"))
    assert not _retry.should_retry(err(400, "rate_limit"))
    assert not _retry.should_retry(err(400))
    assert not _retry.should_retry(err(500, retry=False))
    assert _retry.should_retry(err(400, retry=True))
    assert not _retry.should_retry(ss.ValidationError("bad"))
    assert not _retry.should_retry(ValueError("other"))
