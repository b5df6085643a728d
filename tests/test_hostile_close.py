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

from tests.helpers import PATIENCE, free_port, run_script, until
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


SPIN = """
from tests.hostile_tcp import HOST, ScriptedServer

async def main():
    served = asyncio.Event()

    async def script(conn):
        await served.wait()

    tool = ScriptedServer(script)
    await tool.__aenter__()
    _, client = await asyncio.open_connection(HOST, tool.port)
    while not tool._tasks.tasks:
        await asyncio.sleep(0.01)
    served.set()
    # Each loop step: the step a task ends in, or the one after, sees it done and
    # still listed (its discard is queued behind this coroutine's next step).
    for _ in range(100_000):
        if any(t.done() for t in tool._tasks.tasks):
            break
        await asyncio.sleep(0)
    print("listed and done", any(t.done() for t in tool._tasks.tasks), flush=True)
    signal.alarm(20)  # a close that spins in this step never yields: ended by the alarm
    await tool.aclose()
    print("closed", flush=True)
    client.close()

asyncio.run(main())
"""


def test_a_task_done_in_the_step_before_close_does_not_spin_the_close() -> None:
    # Its task is done, but the callback that takes it off the tool's list runs one
    # loop step later. From Python 3.12 gather() over tasks that are all done returns
    # without yielding, so a close looping "while any task is listed" spun forever in
    # that step (a CI run on 3.12.1 sat there 300 s, until pytest-timeout ended it).
    out = run_script(SPIN, timeout=60)
    assert out.stdout.split() == ["listed", "and", "done", "True", "closed"], (
        out.stdout + out.stderr
    )
