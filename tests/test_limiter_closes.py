"""A limiter's Redis connections close under any interleaving of calls, cancels,
failures, ``aclose()`` and the loop's end (issue #20's per-loop clients).

Counted on the server's side (``CLIENT LIST``): after each run nothing of the limiter's
is still connected, and nothing warned (no ``unclosed`` socket, transport or
Connection collected later), nothing was logged by asyncio ("an error occurred during
closing of asynchronous generator", "Task was destroyed"). Before the fix, a call
cancelled just before ``asyncio.run`` ended left its retired client's close task to be
cancelled by ``asyncio.run`` itself, half-way: a socket left to the collector (seen in
CI as ``ResourceWarning: unclosed <socket.socket ...>`` in a later test), and the
loop's end hook closed twice. And a call from an async generator's ``finally`` during
asyncio.run's shutdown goes through Redis without a warning.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions.testing import RedisServer
from tests.helpers import dev_stderr, examples, until_sync
from tests.limits_loops_support import clients
from tests.quiet import Quiet

#: One step of a run: start a call (batch?), cancel the n-th call started, make Redis
#: drop every connection (the calls on it fail), ``aclose()`` (awaited or as a task),
#: let the loop run ``n`` times, or wait for every call started so far.
STEP = st.one_of(
    st.tuples(st.just("call"), st.booleans()),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("fail"), st.none()),
    st.tuples(st.just("aclose"), st.booleans()),
    st.tuples(st.just("yield"), st.integers(0, 5)),
    st.tuples(st.just("wait"), st.none()),
)


@pytest.fixture(scope="module")
def server() -> Iterator[RedisServer]:
    """One redis-server for every example (each example's clients are killed first)."""
    with tempfile.TemporaryDirectory() as tmp:
        try:
            found = RedisServer(Path(tmp))
        except FileNotFoundError:
            pytest.skip("no redis-server binary")
        found.start()
        yield found
        found.stop()


def _problems() -> Quiet:
    """Whatever says a connection was left behind: warnings, unraisables, asyncio's logs."""
    return Quiet(loggers=("asyncio",))


async def _play(limiter: ss.RedisRateLimiter, raw: redis.Redis, steps: list[Any], end: str) -> None:
    calls: list[asyncio.Task[None]] = []
    keep: list[asyncio.Task[None]] = []
    for what, arg in steps:
        if what == "call":
            calls.append(asyncio.create_task(limiter.acquire(batch=arg, timeout=5)))
        elif what == "cancel" and calls:
            calls[arg % len(calls)].cancel()
        elif what == "fail":  # a real failure: Redis drops the limiter's connections
            raw.client_kill_filter(_type="normal", skipme=True)
        elif what == "aclose" and arg:
            await limiter.aclose()
        elif what == "aclose":
            keep.append(asyncio.create_task(limiter.aclose()))
        elif what == "yield":
            for _ in range(arg):
                await asyncio.sleep(0)
        elif what == "wait":
            await asyncio.gather(*calls, return_exceptions=True)
    if end == "hand":  # the test's own tasks end (never the limiter's own closes)
        for task in calls + keep:
            task.cancel()
        await asyncio.gather(*calls, *keep, return_exceptions=True)
    # "run": whatever is still running is left to the loop's end (cancelled by it).


#: A first call done (the loop's client connected), then two calls sent, unanswered.
WARM = [("call", False), ("wait", None)]
TWO = [("call", False), ("call", False), ("yield", 2)]


def _run(limiter: ss.RedisRateLimiter, raw: redis.Redis, steps: list[Any], end: str) -> None:
    if end == "run":
        asyncio.run(_play(limiter, raw, steps, end))
        return
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_play(limiter, raw, steps, end))
    finally:
        loop.close()  # by hand: no cancel, no shutdown_asyncgens


# The interleavings that failed before the fix. A call cancelled mid-command, the loop
# run once (3.11) or four times (3.10), then asyncio.run's end: its client's close task
# cancelled half-way (unclosed Connection, transport and socket, as in CI). Or run
# twice: the loop's end hook closed twice ("an error occurred during closing of
# asynchronous generator ... already running").
@example(steps=[*WARM, ("call", False), ("yield", 2), ("cancel", 1), ("yield", 1)])
@example(steps=[*WARM, *TWO, ("cancel", 1), ("cancel", 2), ("yield", 1)])
@example(steps=[*WARM, *TWO, ("cancel", 1), ("cancel", 2), ("yield", 4)])
@example(steps=[*WARM, *TWO, ("cancel", 1), ("cancel", 2), ("yield", 2)])
@example(steps=[("call", False), ("yield", 3), ("call", True), ("yield", 2), ("cancel", 1)])
@example(steps=[*WARM, ("fail", None), ("call", False), ("call", True), ("yield", 5)])
@given(steps=st.lists(STEP, max_size=10))
@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@pytest.mark.parametrize("end", ["run", "hand"])
def test_any_interleaving_closes_every_connection(
    server: RedisServer, steps: list[Any], end: str
) -> None:
    raw = redis.Redis.from_url(server.url)
    try:
        raw.client_kill_filter(_type="normal", skipme=True)  # an earlier example's, if any
        limiter = ss.RedisRateLimiter(server.url, rate=1e5, name="closes", redis_timeout=5)
        with _problems() as problems:
            _run(limiter, raw, steps, end)
            if end == "hand":  # a loop closed by hand: its client is dropped by aclose
                asyncio.run(limiter.aclose())
            else:  # asyncio.run closed it with the loop
                assert limiter._connection.loops == 0
            del limiter
        assert problems.problems == []
        until_sync(lambda: clients(raw) == 1, "every connection of the limiter closed")
    finally:
        raw.close()


FINALLY = """
import asyncio, sys
import stripe_sessions as ss

limiter = ss.RedisRateLimiter(sys.argv[1], rate=1e5, name="finally")


async def gen():
    try:
        yield 1
    finally:  # run by asyncio.run's shutdown_asyncgens: the loop's last calls
        await limiter.acquire(batch=False, timeout=5)
        print("paced through Redis", not limiter._warned)


async def main():
    g = gen()
    await g.__anext__()
    globals()["g"] = g


asyncio.run(main())
print("done")
"""


def test_a_call_from_a_generators_finally_at_shutdown_is_paced_through_redis(
    server: RedisServer,
) -> None:
    # Before: its loop's new client registered an end hook after shutdown_asyncgens;
    # asyncio's ResourceWarning (an error under -W error) failed the call, which paced
    # in-process with a warning. Now no hook: the client is dropped quietly at exit.
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", FINALLY, server.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["paced through Redis True", "done"]
    assert dev_stderr(done.stderr) == ""


def test_a_closed_clients_end_hook_ends_with_it_not_at_a_hand_closed_loops_end(
    server: RedisServer,
) -> None:
    # A client closed (here by aclose) while its loop runs ends its end-of-loop hook
    # too. Left suspended, the hook was collected with the dropped limiter, and asyncio's
    # finalizer made a task to close it that a loop closed by hand never ran: "Task was
    # destroyed but it is pending!" (seen under load in test_any_interleaving above).
    async def main() -> None:
        limiter = ss.RedisRateLimiter(server.url, rate=1e5, name="hook", redis_timeout=5)
        await limiter.acquire(batch=False, timeout=5)
        await limiter.aclose()
        del limiter
        gc.collect()  # collected while the loop runs, its last steps to come

    with _problems() as problems:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(main())
        finally:
            loop.close()  # by hand: no shutdown_asyncgens
        del loop
    assert problems.problems == []
