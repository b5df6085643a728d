"""Batches at the edges: poison items, undecodable answers, slow inputs, the batch key."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiohttp import web

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, Api, Exploding
from tests.hostile import Hostile, deep_json, serve


def poisoned() -> list[Any]:
    looped: dict[str, Any] = {}
    looped["self"] = looped
    deep: dict[str, Any] = {}
    for _ in range(100_000):
        deep = {"a": deep}
    good = [{"customer": f"cus_{i}", "components": PRICING} for i in range(6)]
    return [
        good[0],
        {"customer": "cus_\ud800", "components": PRICING},
        good[1],
        {
            "customer": "c",
            "components": {
                "payment_element": {
                    "enabled": True,
                    "features": {"payment_method_redisplay_limit": 10**5000},
                }
            },
        },
        {"customer": "c", "components": PRICING, "extra_params": deep},
        good[2],
        {"customer": "c", "components": PRICING, "extra_params": looped},
        {"customer": "c", "components": PRICING, "extra_params": {"x": math.nan}},
        "not a mapping",
        good[3],
        {"customer": "c", "components": Exploding()},
        Exploding(),
        good[4],
        {"customer": "c", "components": PRICING, "unknown": 1},
        good[5],
    ]


async def test_poison_items_fail_alone_and_a_rerun_creates_nothing_twice(api: Api) -> None:
    items = poisoned()
    first = await api.call("create_many", items, rate_limit=None, batch_key="poison")
    assert [r.index for r in first] == list(range(len(items)))
    good = [0, 2, 5, 9, 12, 14]
    assert [r.index for r in first if r.ok] == good
    for r in first:
        assert r.batch_key == "poison"
        if not r.ok:
            assert isinstance(r.error, ss.ValidationError), r.error
            assert r.error.batch_key == "poison"
            assert r.attempts == 0
    assert api.fake.created == len(good)
    again = await api.call("create_many", items, rate_limit=None, batch_key="poison")
    assert api.fake.created == len(good)
    assert [r.ok for r in again] == [r.ok for r in first]
    keys = api.fake.session_keys
    assert len(keys) == len(set(keys))


async def test_an_undecodable_answer_mid_batch_fails_only_its_item() -> None:
    async def deep(request: Any) -> Any:
        return web.Response(body=deep_json(), content_type="application/json")

    server = Hostile()
    server.answers["cus_deep"] = deep
    async with serve(server):
        items = [{"customer": f"cus_{i}", "components": PRICING} for i in range(20)]
        items[7]["customer"] = "cus_deep"
        async with ss.AsyncClient(api_key="sk_test_edges123456", base_url=server.url) as c:
            results = await c.customer_sessions.create_many(items, rate_limit=None)
    assert len(results) == 20
    assert [r.index for r in results if not r.ok] == [7]
    err = results[7].error
    assert isinstance(err, ss.APIError) and "nested too deeply" in str(err)
    assert err.batch_key == results[7].batch_key


async def test_fail_fast_error_carries_the_batch_key_and_is_logged(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    items = [{"customer": "c", "components": PRICING}, {"customer": 1, "components": PRICING}]
    with pytest.raises(ss.ValidationError) as info:
        await api.call("create_many", items, fail_fast=True, rate_limit=None)
    key = info.value.batch_key
    assert key is not None and len(key) == 32
    assert f"batch_key={key!r}" in caplog.text
    assert "ended early" in caplog.text


async def test_a_failing_input_ends_the_batch_with_its_error_and_the_key(api: Api) -> None:
    def broken() -> Iterator[dict[str, Any]]:
        yield {"customer": "c", "components": PRICING}
        raise LookupError("cursor closed")

    with pytest.raises(LookupError) as info:
        await api.call("create_many", broken(), rate_limit=None, batch_key="in-err")
    assert getattr(info.value, "batch_key", None) == "in-err"
    assert any("batch_key='in-err'" in n for n in getattr(info.value, "__notes__", []))


async def test_a_slow_input_never_blocks_the_loop_and_each_item_goes_at_once(
    fake: FakeStripe,
) -> None:
    # The input (a database cursor, stdin...) waits, in its thread, for what only the
    # running loop can do: the heartbeat to tick twice, and the fake (on this loop) to
    # receive the item before. A loop blocked on the input, or a batch that holds an
    # item back until it has read more, leaves it waiting: an order of events, not a
    # time window, so a busy machine cannot fail this (the bound is for a hang only).
    beats = 0

    def wait_for(condition: Callable[[], bool], why: str) -> None:
        deadline = time.monotonic() + 30
        while not condition():
            assert time.monotonic() < deadline, why
            time.sleep(0.002)

    def slow() -> Iterator[dict[str, Any]]:
        for i in range(5):
            seen = beats
            wait_for(lambda s=seen: beats >= s + 2, "the loop stalled while the input was read")
            wait_for(
                lambda n=i: len(fake.requests) >= n, "an item waited for the rest of the input"
            )
            yield {"customer": f"cus_{i}", "components": PRICING}

    async def heartbeat() -> None:
        nonlocal beats
        while True:
            await asyncio.sleep(0.01)
            beats += 1

    beat = asyncio.create_task(heartbeat())
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        results = await c.customer_sessions.create_many(slow(), rate_limit=None)
    beat.cancel()
    assert all(r.ok for r in results)
    assert [r.form["customer"] for r in fake.requests] == [f"cus_{i}" for i in range(5)]
