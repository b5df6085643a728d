"""A session the SDK cannot use (closed by the app, or of another event loop) is a StripeError.

A lent ``aiohttp.ClientSession`` closed before a call refuses it (nothing sent,
``in_flight`` False); closed while the call is in flight ends it with
``in_flight`` True and the key it was sent with; a client or a lent session bound to
another event loop raises :class:`EventLoopError` (also a ``RuntimeError``). The same
for single creates and for batch items, against the fake.
"""

from __future__ import annotations

import asyncio
import threading

import aiohttp
import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, until

PATIENCE = 30.0


async def test_a_lent_session_closed_before_a_create_refuses_it_with_its_key(
    fake: FakeStripe,
) -> None:
    lent = aiohttp.ClientSession()
    await lent.close()
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=lent) as c:
        with pytest.raises(ss.ClientClosedError, match="lent to this client") as info:
            await c.customer_sessions.create(
                customer="cus_1", components=PRICING, idempotency_key="k-before"
            )
    assert info.value.in_flight is False
    assert info.value.idempotency_key == "k-before"
    assert isinstance(info.value, RuntimeError)
    assert fake.requests == []


async def test_a_lent_session_closed_before_a_batch_ends_it_like_a_closed_client(
    fake: FakeStripe,
) -> None:
    lent = aiohttp.ClientSession()
    await lent.close()
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=lent) as c:
        with pytest.raises(ss.ClientClosedError) as info:
            await c.customer_sessions.create_many(
                [{"customer": f"cus_{i}", "components": PRICING} for i in range(5)],
                batch_key="bk",
            )
    assert info.value.batch_key == "bk"
    assert info.value.in_flight is False
    assert fake.requests == []


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_a_lent_session_closed_mid_call_ends_it_in_flight_with_its_key(
    fake: FakeStripe, max_retries: int
) -> None:
    """The request reached Stripe, then the app closed the session it lent."""
    lent = aiohttp.ClientSession()
    fake.slow_next(PATIENCE)
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, session=lent, max_retries=max_retries
    ) as c:
        task = asyncio.create_task(c.customer_sessions.create(customer="cus_1", components=PRICING))
        await until(lambda: len(fake.requests) == 1, "the request to arrive")
        await lent.close()
        with pytest.raises(ss.ClientClosedError, match="may have created") as info:
            await task
    error = info.value
    assert error.in_flight is True
    assert error.idempotency_key == fake.requests[0].headers["Idempotency-Key"]
    assert len(fake.requests) == 1  # not retried on a closed session


async def test_a_lent_session_closed_mid_batch_ends_the_batch_with_keys(fake: FakeStripe) -> None:
    lent = aiohttp.ClientSession()
    fake.slow_next(PATIENCE)
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=lent) as c:
        items = ({"customer": f"cus_{i}", "components": PRICING} for i in range(1000))
        task = asyncio.create_task(
            c.customer_sessions.create_many(items, concurrency=1, batch_key="bk")
        )
        await until(lambda: len(fake.requests) >= 1, "the first request")
        await lent.close()
        with pytest.raises(ss.StripeError) as info:
            await task
    assert info.value.batch_key == "bk"
    assert len(fake.requests) < 1000


async def test_a_lent_session_of_another_loop_is_an_event_loop_error(fake: FakeStripe) -> None:
    made: list[aiohttp.ClientSession] = []
    ready, done = threading.Event(), threading.Event()

    def other_loop() -> None:
        async def hold() -> None:
            made.append(aiohttp.ClientSession())
            ready.set()
            while not done.is_set():
                await asyncio.sleep(0.01)
            await made[0].close()

        asyncio.run(hold())

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        assert ready.wait(PATIENCE)
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=made[0]) as c:
            with pytest.raises(ss.EventLoopError, match="another event loop") as info:
                await c.customer_sessions.create(
                    customer="cus_1", components=PRICING, idempotency_key="k-loop"
                )
    finally:
        done.set()
        thread.join(PATIENCE)
    assert isinstance(info.value, RuntimeError)
    assert info.value.idempotency_key == "k-loop"
    assert fake.requests == []
