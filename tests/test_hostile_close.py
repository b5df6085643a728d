"""The hostile test servers always close: a connection whose serving task never ran too.

A connection can be accepted in the same loop step as the server's close, so that its
task is cancelled before it ever ran and never closes the connection. From Python 3.12
``Server.wait_closed()`` waits for every accepted connection: the tool's close then
waited forever (a CI run hung on 3.12.1). Here that task is cancelled at once, always.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.helpers import PATIENCE, free_port, until
from tests.hostile_tcp import HOST, Proxy, ScriptedServer


async def _never(conn: Any) -> None:  # pragma: no cover - its task never runs
    raise AssertionError("served")


@pytest.mark.parametrize("kind", ["server", "proxy"])
async def test_a_connection_whose_task_never_ran_is_closed_and_close_returns(kind: str) -> None:
    tool: ScriptedServer | Proxy = (
        ScriptedServer(_never) if kind == "server" else Proxy(HOST, free_port())
    )
    await tool.__aenter__()
    tasks = tool._tasks
    start = tasks.start

    def start_cancelled(coro: Any, writer: asyncio.StreamWriter) -> None:
        start(coro, writer)
        for task in tasks.tasks:
            task.cancel()  # before its first step: the coroutine never runs

    tasks.start = start_cancelled  # type: ignore[method-assign]
    _, client = await asyncio.open_connection(HOST, tool.port)
    await until(lambda: len(tasks.writers) == 1, "the connection accepted")
    client.close()  # the client's end is gone first
    await client.wait_closed()
    await asyncio.wait_for(tool.aclose(), PATIENCE)  # returns (it hung on 3.12+)
    assert tasks.writers[0].transport.is_closing()  # and the connection is closed
