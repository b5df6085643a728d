"""RateLimitError.rate_limited_reason: Stripe's Stripe-Rate-Limited-Reason, from a raw server.

The server is a hostile raw one (tests/hostile_tcp.py), so a test can send the header as
any bytes: Stripe's five reasons, another word, bytes that are not UTF-8, 8 KB of it.
"""

from __future__ import annotations

import json
import logging
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._errors import RATE_LIMITED_REASONS, rate_limited_reason_of
from stripe_sessions.testing import FakeStripe
from tests.hostile_tcp import Conn, ScriptedServer

PRICING: ss.ComponentsDict = {"pricing_table": {"enabled": True}}

KEY = "sk_test_reason_0123456789"
BODY = json.dumps(
    {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Too fast"}}
).encode()


def answer(reason: bytes | None, status: int = 429) -> bytes:
    """A Stripe 429 with ``Stripe-Rate-Limited-Reason: reason`` as raw bytes."""
    head = [
        f"HTTP/1.1 {status} Too Many Requests".encode(),
        b"Content-Type: application/json",
        f"Content-Length: {len(BODY)}".encode(),
        b"Request-Id: req_limited1",
    ]
    if status == 429:  # as Stripe marks a 429 it wants retried (else only a batch retries)
        head.append(b"Stripe-Should-Retry: true")
    if reason is not None:
        head.append(b"Stripe-Rate-Limited-Reason: " + reason)
    return b"\r\n".join(head) + b"\r\n\r\n" + BODY


def server(reason: bytes | None, status: int = 429) -> ScriptedServer:
    """A server answering every request on every connection with that 429."""

    async def script(conn: Conn) -> None:
        while await conn.read_request() is not None:
            conn.write(answer(reason, status))
            await conn.drain()

    return ScriptedServer(script)


async def limited(
    reason: bytes | None, *, status: int = 429, retries: int = 0
) -> ss.RateLimitError:
    async with server(reason, status) as s:
        async with ss.AsyncClient(api_key=KEY, base_url=s.url, max_retries=retries) as stripe:
            with pytest.raises(ss.RateLimitError) as info:
                await stripe.customer_sessions.create(customer="cus_1", components=PRICING)
        assert len(s.requests) == retries + 1
    return info.value


@pytest.mark.parametrize("reason", sorted(RATE_LIMITED_REASONS))
async def test_each_of_stripes_reasons(reason: str) -> None:
    err = await limited(reason.encode())
    assert err.rate_limited_reason == reason
    assert str(err) == (
        f"Too fast (HTTP 429, code=rate_limit, reason={reason}, request_id=req_limited1)"
    )
    assert repr(err) == (
        "RateLimitError(message='Too fast', http_status=429, code='rate_limit', "
        f"rate_limited_reason={reason!r}, request_id='req_limited1')"
    )
    assert pickle.loads(pickle.dumps(err)).rate_limited_reason == reason


async def test_a_400_rate_limit_and_another_case_read_the_same() -> None:
    err = await limited(b"  Endpoint-Concurrency ", status=400)
    assert err.http_status == 400 and err.rate_limited_reason == "endpoint-concurrency"


async def test_absent_or_blank_is_none_and_not_shown() -> None:
    for reason in (None, b"", b"   "):
        err = await limited(reason)
        assert err.rate_limited_reason is None
        assert "reason" not in str(err) + repr(err)


async def test_another_word_is_kept_as_the_server_wrote_it() -> None:
    err = await limited(b"burst-credits")
    assert err.rate_limited_reason == "burst-credits"
    assert "reason=burst-credits" in str(err)


def _safe(reason: str | None, limit: int = 103) -> str:
    assert reason is not None
    assert len(reason) <= limit and reason.isprintable()
    reason.encode("utf-8")  # no lone surrogate: a UTF-8 log handler can write it
    return reason


async def test_bytes_that_are_not_utf8_come_back_escaped() -> None:
    err = await limited(b"global-\xff\xfe\x80rate")
    reason = _safe(err.rate_limited_reason)
    assert reason.startswith("global-") and reason.endswith("rate")
    assert reason not in RATE_LIMITED_REASONS
    _safe(str(err), 2000)
    _safe(repr(err), 2000)


async def test_a_huge_value_is_cut() -> None:
    err = await limited(b"x" * 8000)  # aiohttp's own limit is 8190 bytes a line
    assert _safe(err.rate_limited_reason) == "x" * 100 + "..."
    assert len(str(err)) < 300


async def test_a_key_in_the_value_is_masked() -> None:
    err = await limited(f"leak-{KEY}-sk_live_abcdefghijkl".encode())
    reason = _safe(err.rate_limited_reason)
    assert KEY not in reason and "abcdefghijkl" not in reason and "sk_live_****" in reason


async def test_the_retry_log_line_names_the_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="stripe_sessions")
    await limited(b"global-concurrency", retries=1)
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert "RateLimitError HTTP 429 code=rate_limit reason=global-concurrency" in line, line
    caplog.clear()
    await limited(b"\xff" * 5000, retries=1)  # escaped and bounded there too
    (line,) = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    _safe(line, 600)


def test_an_error_built_by_hand_has_none() -> None:
    assert ss.RateLimitError("slow down").rate_limited_reason is None
    assert (
        ss.RateLimitError(
            "x", headers={"stripe-rate-limited-reason": "global-rate"}
        ).rate_limited_reason
        == "global-rate"
    )


@given(st.text(max_size=300) | st.sampled_from(sorted(RATE_LIMITED_REASONS)))
def test_any_text_gives_a_reason_or_none_short_printable_and_utf8(value: str) -> None:
    reason = rate_limited_reason_of({"Stripe-Rate-Limited-Reason": value})
    if reason is None:
        assert not value.strip(" \t")
    else:
        _safe(reason)
        assert (reason in RATE_LIMITED_REASONS) == (
            value.strip(" \t").lower() in RATE_LIMITED_REASONS
        )


async def test_from_the_fake_end_to_end(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.fail_next(429, code="rate_limit", reason="endpoint-concurrency")
    with pytest.raises(ss.RateLimitError) as info:
        await client.with_options(max_retries=0).customer_sessions.create(
            customer="cus_1", components=PRICING
        )
    assert info.value.rate_limited_reason == "endpoint-concurrency"
    assert "reason=endpoint-concurrency" in str(info.value)
