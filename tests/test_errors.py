"""Every error status becomes the right exception, with everything Stripe said, and no secret."""

from __future__ import annotations

import logging

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, fixture_json


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (400, None, ss.InvalidRequestError),
        (404, None, ss.InvalidRequestError),
        (400, "rate_limit", ss.RateLimitError),
        (429, None, ss.RateLimitError),
        (401, None, ss.AuthenticationError),
        (402, "card_declined", ss.CardError),
        (403, None, ss.PermissionDeniedError),
        (409, None, ss.APIError),
        (500, None, ss.APIError),
        (503, None, ss.APIError),
        (418, None, ss.APIError),
    ],
)
async def test_status_maps_to_exception(
    client: ss.AsyncClient,
    fake: FakeStripe,
    status: int,
    code: str | None,
    expected: type[ss.StripeError],
) -> None:
    fake.fail_next(status, times=3, code=code)
    with pytest.raises(ss.StripeError) as info:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    err = info.value
    assert type(err) is expected
    assert err.http_status == status
    assert err.request_id == fake.requests[-1].request_id
    assert err.idempotency_key == fake.requests[-1].idempotency_key
    assert err.headers["Request-Id"] == err.request_id
    assert err.body is not None and '"error"' in err.body
    assert err.json_body is not None and "error" in err.json_body
    assert err.type is not None
    if code:
        assert err.code == code
        assert err.doc_url is not None and code.replace("_", "-") in err.doc_url


@pytest.mark.parametrize(
    ("fixture", "status", "expected"),
    [
        ("error.invalid_request.json", 404, ss.InvalidRequestError),
        ("error.unknown_parameter.json", 400, ss.InvalidRequestError),
        ("error.authentication.json", 401, ss.AuthenticationError),
        ("error.idempotency.json", 400, ss.IdempotencyError),
        ("error.lock_timeout.json", 429, ss.RateLimitError),
        ("error.rate_limit.json", 429, ss.RateLimitError),
        ("error.api_error.json", 500, ss.APIError),
    ],
)
async def test_stripes_real_error_bodies(
    client: ss.AsyncClient,
    fake: FakeStripe,
    fixture: str,
    status: int,
    expected: type[ss.StripeError],
) -> None:
    body = fixture_json(fixture)
    fake.fail_next(status, times=3, body=body)
    with pytest.raises(ss.StripeError) as info:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    err = info.value
    assert type(err) is expected
    assert err.message == body["error"]["message"]
    assert err.type == body["error"]["type"]
    assert err.code == body["error"].get("code")
    assert err.param == body["error"].get("param")
    assert err.doc_url == body["error"].get("doc_url")
    assert err.json_body == body


async def test_invalid_request_carries_param(client: ss.AsyncClient, fake: FakeStripe) -> None:
    with pytest.raises(ss.InvalidRequestError) as info:
        await client.customer_sessions.create(
            customer="cus_1", components=PRICING, extra_params={"colour": "red"}
        )
    assert info.value.param == "colour"
    assert info.value.code == "parameter_unknown"
    assert "param=colour" in str(info.value)


async def test_html_502_is_a_clear_error_with_status_and_request_id(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    fake.fail_next(502, times=3, body=html)
    with pytest.raises(ss.APIError) as info:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    err = info.value
    assert err.http_status == 502
    assert err.request_id == fake.requests[-1].request_id
    assert err.body == html
    assert "502 Bad Gateway" in str(err)
    assert "HTTP 502" in str(err)


async def test_empty_error_body(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.fail_next(400, body=b"")
    with pytest.raises(ss.InvalidRequestError, match="empty body"):
        await client.customer_sessions.create(customer="cus_1", components=PRICING)


async def test_malformed_success_body_is_an_api_error(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.malformed_next()
    with pytest.raises(ss.APIError, match="not a JSON object") as info:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert info.value.http_status == 200
    assert len(fake.requests) == 1, "a 200 is an answer: it is not retried"


async def test_wrong_key_is_an_authentication_error_without_the_key(fake: FakeStripe) -> None:
    key = "sk_live_abcdefghijklmnopqrstuvwxyz123456"
    async with ss.AsyncClient(api_key=key, base_url=fake.url) as c:
        with pytest.raises(ss.AuthenticationError) as info:
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
    err = info.value
    assert err.http_status == 401
    for text in (str(err), repr(err), err.message, repr(c), repr(c.config)):
        assert key not in text
    assert "sk_live_****3456" in repr(c)


async def test_nothing_logged_or_raised_contains_key_or_secret(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        fake.fail_next(503)
        fake.reset_next(after_create=True)
        session = await c.customer_sessions.create(customer="cus_1", components=PRICING)
        fake.truncate_next(times=3)
        with pytest.raises(ss.APIConnectionError) as info:
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert "retrying" in caplog.text
    for text in (caplog.text, str(info.value), repr(info.value), repr(session), str(session)):
        assert fake.api_key not in text
        assert session.client_secret not in text
        assert "cuss_secret_" not in text


def test_missing_api_key_names_both_ways(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    with pytest.raises(ss.AuthenticationError) as info:
        ss.AsyncClient()
    assert "api_key=" in str(info.value)
    assert "STRIPE_API_KEY" in str(info.value)


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_from_env_12345678")
    assert ss.AsyncClient().config.api_key == "sk_test_from_env_12345678"


def test_rate_limit_error_reads_retry_after() -> None:
    err = ss.RateLimitError("slow down", http_status=429, headers={"Retry-After": "2"})
    assert err.retry_after == 2.0
    assert ss.RateLimitError("x", headers={"Retry-After": "soon"}).retry_after is None
