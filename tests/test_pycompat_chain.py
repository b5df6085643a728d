"""No error the SDK raises is chained to the failure underneath, whatever runs the task.

The transport raises its errors outside any ``except``, so nothing is chained. But a
task implemented in Python (``asyncio.tasks._PyTask``; pytest-asyncio runs every test
in one on Python 3.10) resumes a step from inside an ``except`` when the future it
waited on failed, and every ``raise`` in that step then chains the exception being
handled there: aiohttp's connection error, whose traceback's frames hold the request.
Each failure here is met under such tasks, on every Python, and each error checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest

import stripe_sessions as ss
from tests.helpers import PRICING, close_server, free_port
from tests.hostile import Hostile, serve
from tests.leaks import KEY, assert_clean, rendered

T = TypeVar("T")


async def in_python_task(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` in a pure-Python task; every task it creates is one too."""
    loop = asyncio.get_running_loop()
    py_task: Any = asyncio.tasks._PyTask  # type: ignore[attr-defined]

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        return py_task(coro, loop=loop, **kwargs)

    previous = loop.get_task_factory()
    loop.set_task_factory(factory)
    try:
        task = loop.create_task(coro)
        assert type(task) is py_task
        return await task
    finally:
        loop.set_task_factory(previous)


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    writer.close()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    await asyncio.sleep(5)
    writer.close()


@pytest.fixture(params=["refused", "hang up", "not HTTP", "timeout", "HTTP 500"])
async def url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """A server that fails each request in its own way."""
    kind = request.param
    if kind == "refused":
        yield f"http://127.0.0.1:{free_port()}"
        return
    if kind == "HTTP 500":
        async with serve(Hostile()) as hostile:

            async def error(_: Any) -> Any:
                from aiohttp import web  # noqa: PLC0415

                return web.json_response({"error": {"type": "api_error"}}, status=500)

            hostile.default = error
            yield hostile.url
        return
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] = {
        "hang up": hang_up,
        "not HTTP": garbage,
        "timeout": silent,
    }[kind]
    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        finally:
            writer.close()
            handlers.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        for task in handlers:  # before 3.12, wait_closed() leaves connections open
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await close_server(server)


def assert_unchained(error: BaseException) -> None:
    assert isinstance(error, ss.StripeError), repr(error)
    assert error.__cause__ is None, repr(error.__cause__)
    assert error.__context__ is None, repr(error.__context__)
    assert_clean(rendered(error))


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_a_call_raises_an_unchained_error(url: str, max_retries: int) -> None:
    async def call() -> BaseException:
        async with ss.AsyncClient(
            api_key=KEY, base_url=url, max_retries=max_retries, timeout=0.5
        ) as client:
            try:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
            except ss.StripeError as e:
                return e
        raise AssertionError("no error")

    assert_unchained(await in_python_task(call()))


async def test_a_batch_reports_unchained_errors(url: str) -> None:
    async def batch() -> list[ss.BatchResult]:
        async with ss.AsyncClient(api_key=KEY, base_url=url, timeout=0.5) as client:
            return await client.customer_sessions.create_many(
                [{"customer": f"cus_{i}", "components": PRICING} for i in range(3)],
                rate_limit=None,
                max_retries=2,
            )

    results = await in_python_task(batch())
    assert results and not any(r.ok for r in results)
    for r in results:
        assert r.error is not None
        assert_unchained(r.error)
