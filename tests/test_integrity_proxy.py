"""Through a tampering TCP proxy to FakeStripe: each call still gets its own answer.

Also the toolkit's own promises: it forwards faithfully when left alone, and closes
everything it opened.
"""

from __future__ import annotations

import asyncio
import json

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.hostile import session_body
from tests.hostile_tcp import Proxy, cut_after, delay, duplicate, response, trickle

VICTIM_SECRET = "cuss_secret_ProxyVictim0123456789abcdef"


def port_of(fake: FakeStripe) -> int:
    return int(fake.url.rsplit(":", 1)[1])


async def create(client: ss.AsyncClient, customer: str, **kw: object) -> ss.CustomerSession:
    return await client.customer_sessions.create(customer=customer, components=PRICING, **kw)  # type: ignore[arg-type]


async def test_a_proxy_left_alone_forwards_faithfully(fake: FakeStripe) -> None:
    async with Proxy("127.0.0.1", port_of(fake)) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            sessions = [await create(client, f"cus_{i}") for i in range(3)]
    assert [s.customer for s in sessions] == ["cus_0", "cus_1", "cus_2"]
    assert len(proxy.links) == 1, "one kept-alive connection"
    assert proxy.links[0].closed


async def test_duplicated_answers_never_reach_another_call(fake: FakeStripe) -> None:
    async with Proxy("127.0.0.1", port_of(fake), down=duplicate) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            for i in range(5):
                got = await create(client, f"cus_{i}")
                assert got.customer == f"cus_{i}"
            results = await client.customer_sessions.create_many(
                [{"customer": f"cus_b{i}", "components": PRICING} for i in range(24)],
                concurrency=6,
                rate_limit=None,
            )
    assert [r.session.customer if r.session else r.error for r in results] == [
        f"cus_b{i}" for i in range(24)
    ]
    # Each session the fake created went to the call that asked for it.
    assert len({r.session.client_secret for r in results if r.session}) == 24


async def test_an_answer_injected_on_an_idle_link_is_never_read(fake: FakeStripe) -> None:
    victim = response(
        200,
        json.dumps(session_body(customer="cus_VICTIM", client_secret=VICTIM_SECRET)),
        {"Idempotency-Key": "someone-else"},
    )
    async with Proxy("127.0.0.1", port_of(fake)) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            await create(client, "cus_A")
            proxy.links[0].down.inject(victim)
            await proxy.links[0].down.drain()
            for i in range(3):  # with or without retries, never the victim's session
                got = await create(client, f"cus_{i}")
                assert got.customer == f"cus_{i}"
                assert VICTIM_SECRET not in repr(got) + got.client_secret


@pytest.mark.parametrize("tamper", [trickle(7, 0.001), delay(0.05)], ids=["trickle", "delay"])
async def test_slow_links_still_answer(fake: FakeStripe, tamper: object) -> None:
    async with Proxy("127.0.0.1", port_of(fake), down=tamper) as proxy:  # type: ignore[arg-type]
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            got = await create(client, "cus_slow")
    assert got.customer == "cus_slow"


async def test_a_link_cut_in_the_status_line_was_not_reached(fake: FakeStripe) -> None:
    async with Proxy("127.0.0.1", port_of(fake), down=cut_after(5)) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            with pytest.raises(ss.APIConnectionError) as info:
                await create(client, "cus_cut", max_retries=1)
    assert info.value.reached is False
    assert len(proxy.links) == 2
    # Both attempts were created by the fake with one key: the retry was a replay.
    assert len(fake.sessions) == 1


async def test_a_link_cut_in_the_body_was_reached(fake: FakeStripe) -> None:
    async with Proxy("127.0.0.1", port_of(fake), down=cut_after(300)) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            with pytest.raises(ss.APIConnectionError) as info:
                await create(client, "cus_cut", max_retries=0)
    assert info.value.reached is True


async def test_the_tools_leave_no_task_behind(fake: FakeStripe) -> None:
    before = asyncio.all_tasks()
    async with Proxy("127.0.0.1", port_of(fake), down=delay(10)) as proxy:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=proxy.url) as client:
            with pytest.raises(ss.APITimeoutError):
                await create(client, "cus_t", timeout=0.2, max_retries=0)
    assert asyncio.all_tasks() == before
