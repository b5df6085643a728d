"""A stream_many stream that ended early says so when read again, with its batch_key (R5)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe

P = {"pricing_table": {"enabled": True}}


def _items(n: int) -> list[dict[str, object]]:
    return [{"customer": f"cus_{i}", "components": P} for i in range(n)]


def test_a_stream_closed_by_its_loops_end_raises_on_another_loop() -> None:
    kept: list[Any] = []

    async def first() -> None:
        async with FakeStripe() as fake:
            client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
            stream = client.customer_sessions.stream_many(_items(10), concurrency=1)
            for _ in range(3):
                await stream.__anext__()
            kept.append(stream)  # left open: asyncio.run closes it at the loop's end
            await client.aclose()

    asyncio.run(first())
    stream = kept[0]

    async def again() -> None:
        with pytest.raises(ss.StripeError, match="ended early") as info:
            async for _ in stream:
                pytest.fail("a closed stream has no more results")
        assert info.value.batch_key == stream.batch_key  # type: ignore[attr-defined]
        assert stream.batch_key in str(info.value)

    asyncio.run(again())


async def test_a_stream_closed_by_hand_raises_and_a_finished_one_just_stops() -> None:
    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            stream = client.customer_sessions.stream_many(_items(5))
            await stream.__anext__()
            await stream.aclose()
            with pytest.raises(ss.StripeError, match=stream.batch_key):
                await stream.__anext__()

            done = client.customer_sessions.stream_many(_items(5))
            assert len([r async for r in done]) == 5
            assert [r async for r in done] == []  # a batch that ended whole just stops
