"""Stripe's retry rules, end to end against the fake: what is retried, how often, with which key."""

from __future__ import annotations

import logging

import pytest

import stripe_sessions as ss
from stripe_sessions._http import retry as _retry
from stripe_sessions._http.retry import RetryPolicy
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, Api


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


#: Stripe's own waits (the suite's clients retry by a fast policy: conftest.FAST_RETRIES).
STRIPE = RetryPolicy()


def test_backoff_follows_stripe_python() -> None:
    for attempt, whole in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 5.0), (9, 5.0)]:
        for _ in range(50):
            delay = STRIPE.backoff(attempt)
            assert max(0.5, whole / 2) <= delay <= whole


def test_retry_after_is_honoured_up_to_the_documented_cap() -> None:
    """A single call never waits longer than max_wait (5 s) between attempts."""
    lock = ss.RateLimitError(
        "x", http_status=429, code="lock_timeout", headers={"Retry-After": "4"}
    )
    assert STRIPE.wait(lock, 1) == 4.0
    longer = ss.RateLimitError(
        "x", http_status=429, code="lock_timeout", headers={"Retry-After": "7"}
    )
    assert STRIPE.wait(longer, 1) == 5.0
    huge = ss.APIError("x", http_status=503, headers={"Retry-After": "3600"})
    assert STRIPE.wait(huge, 1) == 5.0
    short = ss.APIError("x", http_status=503, headers={"Retry-After": "0"})
    assert 0.5 <= STRIPE.wait(short, 3) <= 2.0


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


# Behaviours no test pinned before (issue #19).


async def test_retrying_stops_when_a_later_attempt_fails_for_good(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    # A 500 is retried; the retry's 400 is not, though one retry is left: it is raised.
    fake.fail_next(500)
    fake.fail_next(400)
    with pytest.raises(ss.InvalidRequestError) as info:
        await _create(client)
    assert [r.status for r in fake.requests] == [500, 400]
    assert info.value.http_status == 400


async def test_a_batch_item_stops_retrying_at_a_failure_for_good(api: Api) -> None:
    api.fake.fail_next(500)
    api.fake.fail_next(400)
    [result] = await api.call("create_many", [_ITEM], concurrency=1, rate_limit=None)
    assert [r.status for r in api.fake.requests] == [500, 400]
    assert result.attempts == 2
    assert isinstance(result.error, ss.InvalidRequestError)


async def test_each_retry_is_logged_with_its_code_and_attempt_number(
    client: ss.AsyncClient, fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    fake.fail_next(429, times=2, code="lock_timeout")
    await _create(client)
    messages = [r.getMessage() for r in caplog.records if r.name == "stripe_sessions"]
    assert len(messages) == 2
    for n, (message, request) in enumerate(zip(messages, fake.requests[:2], strict=True), start=1):
        assert f"attempt {n} failed: RateLimitError HTTP 429 code=lock_timeout" in message
        assert f"request_id={request.request_id}" in message
        assert f"idempotency_key={request.idempotency_key}" in message


@pytest.mark.parametrize(("header", "sent"), [("false", 1), ("true", 3)])
async def test_should_retry_header_and_key_on_a_body_that_is_not_json(
    client: ss.AsyncClient, fake: FakeStripe, header: str, sent: int
) -> None:
    # A proxy's HTML page: the header still decides, and the error carries the key.
    html = "<html><body>Service Unavailable</body></html>"
    status = 503 if header == "false" else 400
    fake.fail_next(status, times=3, body=html, headers={"Stripe-Should-Retry": header})
    with pytest.raises(ss.StripeError) as info:
        await _create(client, idempotency_key="order-7")
    assert len(fake.requests) == sent
    assert info.value.http_status == status
    assert info.value.should_retry is (header == "true")
    assert info.value.idempotency_key == "order-7"
    assert [r.idempotency_key for r in fake.requests] == ["order-7"] * sent


def test_a_retry_after_under_a_second_is_honoured_as_given() -> None:
    asked = ss.APIError("x", http_status=503, headers={"Retry-After": "0.75"})
    assert STRIPE.wait(asked, 1) == 0.75  # longer than the first backoff (0.5 s)
    shorter = ss.APIError("x", http_status=503, headers={"Retry-After": "0.2"})
    assert STRIPE.wait(shorter, 1) == 0.5  # the backoff is longer
    assert STRIPE.pause_for(0.25) == 0.25  # a batch's pause: not rounded, not the default
    assert STRIPE.pause_for(None) == 1.0
    assert STRIPE.pause_for(0.0) == 0.0


async def test_a_retry_after_under_a_second_delays_the_retry(
    fake: FakeStripe, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Waits capped at 1 s, starting at 1 ms: the 0.3 s asked for is what is waited
    # (by the server's own clock: the retry came at least that long after the answer).
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", RetryPolicy(initial_wait=0.001, max_wait=1.0))
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        fake.fail_next(503, headers={"Retry-After": "0.3"})
        await _create(c)
    first, second = fake.requests
    assert first.answered_at is not None
    assert second.at - first.answered_at >= 0.3


@pytest.mark.usefixtures("real_pauses")
async def test_a_batch_pauses_for_a_retry_after_under_a_second(api: Api) -> None:
    api.fake.fail_next(429, headers={"Retry-After": "0.4"})  # a rate_limit 429
    [result] = await api.call("create_many", [_ITEM], concurrency=1, rate_limit=None)
    assert result.ok and result.attempts == 2
    first, second = api.fake.requests
    assert first.answered_at is not None
    assert second.at - first.answered_at >= 0.4


def test_a_policy_checks_its_fields() -> None:
    for bad in (
        {"max_retries": -1},
        {"max_retries": 1.0},
        {"initial_wait": 0},
        {"max_wait": float("nan")},
        {"pause": -1},
        {"max_pause": 61},
    ):
        with pytest.raises(ss.ValidationError, match=next(iter(bad))):
            RetryPolicy(**bad)  # type: ignore[arg-type]


_ITEM = {"customer": "cus_1", "components": PRICING}
