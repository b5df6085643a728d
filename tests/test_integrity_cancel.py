"""A call its caller cancels mid-body leaves no response bytes in any traceback's locals.

A raw-TCP server sends the head and the start of a body holding a client secret, then
stalls; the caller's own timeout cancels the call while the body is being read. Error
trackers render every local of every frame of the traceback, and of each exception it
chains, with ``repr``: none may hold the secret.
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from types import TracebackType
from typing import Any

import pytest

import stripe_sessions as ss
from tests.helpers import PRICING
from tests.hostile_tcp import Conn, ScriptedServer

SECRET = "cuss_secret_CancelLeak0123456789abcdefXYZ"
KEY = "sk_test_cancel0123456789abcdef"
START = ('{"object": "customer_session", "client_secret": "' + SECRET + '", "cre').encode()


def stalls_mid_body(length: bool) -> Callable[[Conn], Awaitable[None]]:
    async def script(conn: Conn) -> None:
        await conn.read_request()
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        head += b"Content-Length: 400\r\n\r\n" if length else b"Connection: close\r\n\r\n"
        conn.write(head + START)
        await conn.drain()
        await asyncio.Event().wait()  # the rest never comes

    return script


def chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [error]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]


def frames(tb: TracebackType | None) -> Iterator[Any]:
    while tb is not None:
        yield tb.tb_frame
        tb = tb.tb_next


def leaks(error: BaseException) -> list[str]:
    """Where the secret shows: each (exception, frame, local) whose repr holds it."""
    found = []
    for e in chain(error):
        if SECRET in repr(e) + str(e):
            found.append(f"{type(e).__name__} itself")
        for frame in frames(e.__traceback__):
            for name, value in frame.f_locals.items():
                try:
                    text = repr(value)
                except Exception:
                    continue
                if SECRET in text:
                    found.append(f"{type(e).__name__}: {frame.f_code.co_name}.{name}")
    rendered = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    if SECRET in rendered:
        found.append("the rendered traceback")
    return found


async def caller_timeout(call: Awaitable[Any], seconds: float) -> None:
    """The caller's own timeout: asyncio.timeout on 3.11+, asyncio.wait_for before."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            await call
    else:  # pragma: no cover - Python 3.10
        await asyncio.wait_for(call, seconds)


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "read to close"])
@pytest.mark.parametrize("how", ["timeout", "wait_for"])
async def test_a_cancelled_body_read_leaves_no_secret_in_locals(length: bool, how: str) -> None:
    async with ScriptedServer(stalls_mid_body(length)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            call = client.customer_sessions.create(customer="cus_1", components=PRICING)
            with pytest.raises(asyncio.TimeoutError) as info:
                if how == "wait_for":
                    await asyncio.wait_for(call, 0.3)
                else:
                    await caller_timeout(call, 0.3)
    error = info.value
    assert isinstance(error.__cause__ or error.__context__, asyncio.CancelledError)
    assert leaks(error) == []
    # The server had sent the secret: the test did reach the body read.
    assert server.accepted == 1


async def test_a_cancelled_task_leaves_no_secret_in_locals() -> None:
    async with ScriptedServer(stalls_mid_body(True)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            task = asyncio.ensure_future(
                client.customer_sessions.create(customer="cus_1", components=PRICING)
            )
            await asyncio.sleep(0.2)
            task.cancel("the caller gave up")
            with pytest.raises(asyncio.CancelledError) as info:
                await task
    assert leaks(info.value) == []


async def test_the_cancel_message_is_kept() -> None:
    async with ScriptedServer(stalls_mid_body(True)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            reached = asyncio.Event()

            async def call() -> None:
                reached.set()
                await client.customer_sessions.create(customer="cus_1", components=PRICING)

            task = asyncio.ensure_future(call())
            await reached.wait()
            await asyncio.sleep(0.2)
            task.cancel("the caller gave up")
            with pytest.raises(asyncio.CancelledError) as info:
                await task
            assert task.cancelled()
    assert "the caller gave up" in str(info.value) or sys.version_info < (3, 11)
