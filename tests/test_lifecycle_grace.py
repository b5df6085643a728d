"""A bad ``grace`` given to ``aclose()``/``close()`` is refused before anything closes.

With calls in flight (the fake holds their answers), a refused close leaves the client
as it was: the calls finish, new ones work, and a later close with a good grace closes
it cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, until, until_sync

#: What ``grace`` must never be: not a number, negative, NaN, endless, a bool, huge.
BAD_GRACES = ["5", -1, -0.001, float("nan"), float("inf"), True, None, b"5", 10**400]


def _id(grace: Any) -> str:
    return repr(grace)[:12]


async def _create(client: Any) -> ss.CustomerSession:
    session: ss.CustomerSession = await client.customer_sessions.create(
        customer="cus_1", components=PRICING
    )
    return session


@pytest.mark.parametrize("grace", BAD_GRACES, ids=_id)
async def test_aclose_with_a_bad_grace_closes_nothing(fake: FakeStripe, grace: Any) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(0.3, times=2)
    tasks = [asyncio.create_task(_create(client)) for _ in range(2)]
    await until(lambda: len(fake.requests) == 2, "2 requests in flight")
    with pytest.raises(ss.ValidationError) as info:
        await client.aclose(grace=grace)
    assert info.value.param == "grace"
    assert isinstance(info.value, ValueError)
    sessions = await asyncio.gather(*tasks)  # the calls in flight were left alone
    assert all(isinstance(s, ss.CustomerSession) for s in sessions)
    assert isinstance(await _create(client), ss.CustomerSession)  # still open
    fake.slow_next(5.0)
    late = asyncio.create_task(_create(client))
    await until(lambda: len(fake.requests) == 4, "a call in flight")
    await client.aclose(grace=0)  # a good close still closes it, cutting what runs
    with pytest.raises(ss.ClientClosedError) as cut:
        await late
    assert cut.value.in_flight
    with pytest.raises(ss.ClientClosedError):
        await _create(client)
    assert fake.created == 3


@pytest.mark.parametrize("grace", BAD_GRACES, ids=_id)
def test_sync_close_with_a_bad_grace_closes_nothing(fake_stripe: FakeStripe, grace: Any) -> None:
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    try:
        fake_stripe.slow_next(0.3)
        outcome: list[Any] = []
        thread = threading.Thread(
            target=lambda: outcome.append(
                client.customer_sessions.create(customer="cus_1", components=PRICING)
            )
        )
        thread.start()
        until_sync(lambda: len(fake_stripe.requests) == 1, "a call in flight")
        with pytest.raises(ss.ValidationError) as info:
            client.close(grace=grace)
        assert info.value.param == "grace"
        thread.join(30)
        assert not client.closed
        assert [type(s) for s in outcome] == [ss.CustomerSession]
        assert isinstance(
            client.customer_sessions.create(customer="cus_1", components=PRICING),
            ss.CustomerSession,
        )
    finally:
        client.close(grace=0)
    assert client.closed
    with pytest.raises(ss.ClientClosedError):
        client.customer_sessions.create(customer="cus_1", components=PRICING)
