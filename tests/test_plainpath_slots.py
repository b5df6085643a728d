"""Every attempt takes its slot from a shared rate limiter, and tells it of a rate-limit 429.

A recording limiter (the RateLimiter protocol, nothing else) stands in for a shared
budget; the requests go to the embedded fake. The log is in order: each attempt's
``acquire`` (live or batch, with the call's timeout), and ``rate_limited`` after a
``rate_limit`` 429, with its ``Retry-After``, before the error is raised or retried.
"""

from __future__ import annotations

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


class Recording:
    """A RateLimiter that grants every slot at once and records what it is told."""

    def __init__(self) -> None:
        self.log: list[tuple[str, object, object]] = []

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        self.log.append(("acquire", batch, timeout))

    async def rate_limited(self, retry_after: float | None) -> None:
        self.log.append(("rate_limited", retry_after, None))


def client(fake: FakeStripe, limiter: Recording, **options: object) -> ss.AsyncClient:
    return ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter, **options)


async def test_a_create_takes_a_live_slot_for_its_attempt(fake: FakeStripe) -> None:
    limiter = Recording()
    async with client(fake, limiter, timeout=7.0) as c:
        await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert limiter.log == [("acquire", False, 7.0)]
    assert len(fake.requests) == 1


async def test_a_rate_limit_429_is_told_then_raised(fake: FakeStripe) -> None:
    limiter = Recording()
    fake.fail_next(429, headers={"Retry-After": "3"})
    async with client(fake, limiter) as c:
        with pytest.raises(ss.RateLimitError):
            await c.customer_sessions.create(customer="cus_1", components=PRICING, timeout=9.0)
    assert limiter.log == [("acquire", False, 9.0), ("rate_limited", 3.0, None)]


async def test_each_retry_takes_its_own_slot(fake: FakeStripe) -> None:
    limiter = Recording()
    fake.fail_next(500, times=2)
    async with client(fake, limiter, max_retries=2, timeout=5.0) as c:
        await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert limiter.log == [("acquire", False, 5.0)] * 3
    assert len(fake.requests) == 3
    assert len({r.headers["Idempotency-Key"] for r in fake.requests}) == 1


async def test_a_lock_timeout_429_is_not_a_rate_limit(fake: FakeStripe) -> None:
    limiter = Recording()
    fake.fail_next(429, code="lock_timeout")
    async with client(fake, limiter, max_retries=1) as c:
        await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert [entry[0] for entry in limiter.log] == ["acquire", "acquire"]


async def test_batch_items_take_batch_slots_and_tell_each_429(fake: FakeStripe) -> None:
    limiter = Recording()
    fake.fail_next(429, headers={"Retry-After": "0.5"})  # a rate_limit 429
    async with client(fake, limiter) as c:
        results = await c.customer_sessions.create_many(
            [{"customer": "cus_1", "components": PRICING}], rate_limit=None, timeout=4.0
        )
    assert [r.ok for r in results] == [True]
    assert limiter.log == [
        ("acquire", True, 4.0),
        ("rate_limited", 0.5, None),
        ("acquire", True, 4.0),
    ]
