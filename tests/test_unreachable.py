"""A batch whose server cannot be reached stops early with one clear error."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

import stripe_sessions as ss
from stripe_sessions._batch import reach as _batch
from stripe_sessions.testing import FakeStripe
from tests.helpers import free_port, items


@pytest.mark.parametrize("kind", ["async", "sync"])
@pytest.mark.timing
async def test_a_batch_nothing_can_reach_stops_after_ten_attempts(kind: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ss.APIConnectionError) as info:
        if kind == "async":
            async with ss.AsyncClient(api_key="sk_test_123", base_url=url) as client:
                await client.customer_sessions.create_many(items(500), batch_key="unreachable")
        else:

            def run() -> None:
                with ss.Client(api_key="sk_test_123", base_url=url) as client:
                    client.customer_sessions.create_many(items(500), batch_key="unreachable")

            await asyncio.to_thread(run)
    elapsed = time.monotonic() - started
    message = str(info.value)
    assert message.startswith("stopped the batch: none of its first 10 attempts reached")
    assert url in message and "Connect" in message
    assert "items not yet sent were not sent" in message
    assert info.value.batch_key == "unreachable"
    assert info.value.reached is False
    # 10 starts at 20/s: about half a second, where 500 items x 6 attempts would take minutes.
    assert elapsed < 3.0, elapsed


async def test_stream_many_reports_what_finished_before_stopping() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    seen: list[ss.BatchResult] = []
    async with ss.AsyncClient(api_key="sk_test_123", base_url=url) as client:
        with pytest.raises(ss.APIConnectionError, match="stopped the batch"):
            async for r in client.customer_sessions.stream_many(
                items(100), concurrency=2, rate_limit=None, max_retries=0
            ):
                seen.append(r)
    # With no retries each failed item is a result of its own before the stop.
    assert 1 <= len(seen) <= _batch.UNREACHABLE_ATTEMPTS
    assert all(isinstance(r.error, ss.APIConnectionError) for r in seen)


@pytest.mark.timing
async def test_it_stops_after_ten_seconds_of_failures_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batch, "UNREACHABLE_SECONDS", 0.3)
    url = f"http://127.0.0.1:{free_port()}"
    async with ss.AsyncClient(api_key="sk_test_123", base_url=url) as client:
        started = time.monotonic()
        with pytest.raises(ss.APIConnectionError, match=r"none of its first [1-9] attempts"):
            await client.customer_sessions.create_many(items(50), concurrency=1, rate_limit=5.0)
    assert time.monotonic() - started < 2.0


async def test_a_batch_that_reached_the_server_once_never_stops_for_this() -> None:
    # The first attempt gets an answer, then the server goes away for good: every later
    # attempt is refused, but the server was there, so each item fails on its own.
    runner: web.AppRunner

    async def answer_once(request: web.Request) -> web.Response:
        asyncio.get_running_loop().create_task(runner.cleanup())  # stop listening
        return web.json_response({"error": {"type": "invalid_request_error"}}, status=400)

    app = web.Application()
    app.router.add_post("/v1/customer_sessions", answer_once)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    async with ss.AsyncClient(api_key="sk_test_123", base_url=url) as client:
        results = await client.customer_sessions.create_many(
            items(20), concurrency=1, rate_limit=None, max_retries=1
        )
    assert len(results) == 20
    assert isinstance(results[0].error, ss.InvalidRequestError)
    refused = [r for r in results[1:] if isinstance(r.error, ss.APIConnectionError)]
    assert len(refused) == 19
    assert all(
        isinstance(r.error, ss.APIConnectionError) and r.error.reached is False for r in refused
    )


async def test_a_server_that_answers_errors_is_reached(fake: FakeStripe) -> None:
    fake.fail_next(500, times=60)
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
        results = await client.customer_sessions.create_many(
            items(12), concurrency=4, rate_limit=None, max_retries=4
        )
    assert len(results) == 12 and not any(r.ok for r in results)
