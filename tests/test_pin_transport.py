"""Pins of what the transport makes of an answer (issue #19, mutmut): a raw server on 127.0.0.1.

A 3xx is a redirect error (300 included), a 2xx whose body was not read is an APIError
carrying the answer's facts, the debug line of each answer, and the API key masked in a
success's Request-Id even where the key pattern cannot see it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, free_port
from tests.hostile import session_body
from tests.hostile_tcp import Conn, ScriptedServer, form_of, response

#: A key the key pattern does not see (two characters, then a dash): only the client's
#: own list of secrets masks it.
ODD_KEY = "sk_test_ab-cdefghijklmnop"


def _answering(status: int, headers: dict[str, str], body: bytes = b"") -> Any:
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            sent = {"Idempotency-Key": str(request.header("Idempotency-Key")), **headers}
            conn.write(response(status, body, sent))

    return script


def _session_for(request_id: str) -> Any:
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            customer = form_of(request)["customer"]
            body = session_body(customer=customer, client_secret=f"cuss_secret_{customer}_0123")
            headers = {
                "Request-Id": request_id,
                "Idempotency-Key": str(request.header("Idempotency-Key")),
            }
            conn.write(response(200, json.dumps(body), headers))

    return script


async def _create(url: str, key: str = "sk_test_pintransport0123") -> ss.CustomerSession:
    async with ss.AsyncClient(api_key=key, base_url=url, max_retries=0) as c:
        return await c.customer_sessions.create(
            customer="cus_1", components=PRICING, idempotency_key="order-1"
        )


@pytest.mark.parametrize("status", [300, 301, 307, 399])
async def test_every_3xx_is_a_redirect_error_with_the_key(status: int) -> None:
    where = {"Location": f"https://{ODD_KEY}.example/v1", "Request-Id": "req_redirect"}
    async with ScriptedServer(_answering(status, where)) as server:
        with pytest.raises(ss.APIError) as info:
            await _create(server.url, ODD_KEY)
    error = info.value
    assert f"Stripe answered HTTP {status}, a redirect to host" in str(error)
    assert error.http_status == status
    assert error.idempotency_key == "order-1"
    assert error.request_id == "req_redirect"
    assert ODD_KEY not in f"{error} {error!r} {error.headers}"
    assert "Location" in error.headers


async def test_a_success_whose_body_was_not_read_carries_the_answers_facts() -> None:
    headers = {"Content-Encoding": "gzip", "Request-Id": "req_unread", "X-Extra": "kept"}
    async with ScriptedServer(_answering(200, headers, b"\x1f\x8b garbage")) as server:
        with pytest.raises(ss.APIError) as info:
            await _create(server.url)
    error = info.value
    assert str(error).startswith("Stripe answered HTTP 200 with ")
    assert "it was not read" in str(error)
    assert error.http_status == 200
    assert error.request_id == "req_unread"
    assert error.idempotency_key == "order-1"
    assert error.headers["X-Extra"] == "kept"


async def test_a_successs_request_id_echoing_the_key_is_masked() -> None:
    async with ScriptedServer(_session_for(f"req_{ODD_KEY}")) as server:
        session = await _create(server.url, ODD_KEY)
    assert session.request_id is not None
    assert ODD_KEY not in session.request_id


async def test_each_answer_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe_sessions")
    async with ScriptedServer(_session_for("req_debugline")) as server:
        await _create(server.url)
        url = server.url
    lines = [r.getMessage() for r in caplog.records if r.name == "stripe_sessions"]
    assert f"POST {url}/v1/customer_sessions -> 200 request_id=req_debugline" in lines


@pytest.mark.parametrize(
    ("status", "headers"), [(302, {"Location": "/elsewhere"}), (200, {"Content-Encoding": "br"})]
)
async def test_a_batch_items_answer_error_carries_its_key(
    status: int, headers: dict[str, str]
) -> None:
    async with ScriptedServer(_answering(status, headers)) as server:
        async with ss.AsyncClient(api_key="sk_test_pin0123", base_url=server.url) as c:
            [result] = await c.customer_sessions.create_many(
                [{"customer": "cus_1", "components": PRICING}], rate_limit=None, max_retries=0
            )
    assert isinstance(result.error, ss.APIError)
    assert result.error.http_status == status
    assert result.error.idempotency_key == result.idempotency_key
    assert result.idempotency_key is not None


@pytest.mark.parametrize("body", [b"[1, 2]", b"null", b'"text"'])
async def test_a_success_that_is_not_a_json_object_carries_the_answers_facts(body: bytes) -> None:
    headers = {"Request-Id": "req_notobject", "X-Echo": f"key {ODD_KEY}"}
    async with ScriptedServer(_answering(200, headers, body)) as server:
        with pytest.raises(ss.APIError) as info:
            await _create(server.url, ODD_KEY)
    error = info.value
    assert "a body that is not a JSON object" in str(error)
    assert error.http_status == 200
    assert error.request_id == "req_notobject"
    assert error.idempotency_key == "order-1"
    assert "X-Echo" in error.headers
    assert ODD_KEY not in f"{error.headers}"


async def test_an_unread_success_masks_the_key_in_its_headers() -> None:
    headers = {"Content-Encoding": "gzip", "X-Echo": f"key {ODD_KEY}"}
    async with ScriptedServer(_answering(200, headers, b"\x1f\x8b")) as server:
        with pytest.raises(ss.APIError) as info:
            await _create(server.url, ODD_KEY)
    assert "X-Echo" in info.value.headers
    assert ODD_KEY not in f"{info.value.headers}"


async def test_reached_says_whether_an_http_answer_came() -> None:
    # Nothing listens: nothing was reached (False, not unknown).
    with pytest.raises(ss.APIConnectionError) as info:
        await _create(f"http://127.0.0.1:{free_port()}")
    assert info.value.reached is False

    # The status line and headers came, then the body broke off: reached.
    async def broken(conn: Conn) -> None:
        await conn.read_request()
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")
        await conn.drain()

    async with ScriptedServer(broken) as server:
        with pytest.raises(ss.APIConnectionError) as info:
            await _create(server.url)
    assert info.value.reached is True


class _Recording:
    """A rate limiter that grants every slot at once and records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[bool, float]] = []
        self.told: list[float | None] = []

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        self.asked.append((batch, timeout))

    async def rate_limited(self, retry_after: float | None) -> None:
        self.told.append(retry_after)


async def test_each_attempt_asks_the_limiter_with_its_kind_and_timeout(fake: FakeStripe) -> None:
    limiter = _Recording()
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter, timeout=7.0
    ) as c:
        await c.customer_sessions.create(customer="cus_1", components=PRICING)
        await c.customer_sessions.create(customer="cus_1", components=PRICING, timeout=2.5)
        assert limiter.asked == [(False, 7.0), (False, 2.5)]
        limiter.asked.clear()
        [result] = await c.customer_sessions.create_many(
            [{"customer": "cus_1", "components": PRICING}], rate_limit=None
        )
    assert result.ok
    assert limiter.asked == [(True, 7.0)]


async def test_the_limiter_is_told_of_rate_limit_429s_only(fake: FakeStripe) -> None:
    limiter = _Recording()
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter, max_retries=0
    ) as c:
        fake.fail_next(500)
        fake.fail_next(429, code="lock_timeout")
        for _ in range(2):
            with pytest.raises(ss.StripeError):
                await c.customer_sessions.create(customer="cus_1", components=PRICING)
        assert limiter.told == []
        fake.fail_next(429, headers={"Retry-After": "3"})  # a rate_limit 429
        with pytest.raises(ss.RateLimitError):
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert limiter.told == [3.0]
