"""Rate limiters from any asyncio event loop (issue #20): one Redis client per loop.

A client and its limiter, built once (at import time, say), are used from sequences of
``asyncio.run`` calls, from threads each running their own loop at the same time, and
from loops closed by hand. Every request is still paced through Redis (the account's
spacing is checked on the slots the script itself granted, in Redis's clock), no
client is left for the garbage collector (no ResourceWarning, no unclosed connection,
nothing logged), and no dead loop is kept alive. (The in-process limiter from several
loops at once: test_limits_loops_local.)
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import stripe_sessions as ss
from stripe_sessions._limits import redis_loops
from stripe_sessions.testing import FakeStripe, RedisServer
from tests.helpers import PATIENCE, PRELUDE, PRICING, dev_stderr, until, until_sync
from tests.limits_loops_support import RECORDING, clients, grants_of, in_threads
from tests.pacing import check_account
from tests.quiet import Quiet

RATE = 40.0
CUSTOMER = "cus_limits20"


async def work(client: ss.AsyncClient, tag: str) -> int:
    """Three live creates and a batch of four, at once: 7 slots."""
    lives = [
        client.customer_sessions.create(customer=f"{CUSTOMER}_{tag}_{i}", components=PRICING)
        for i in range(3)
    ]
    batch = client.customer_sessions.create_many(
        [{"customer": f"{CUSTOMER}_{tag}_b{i}", "components": PRICING} for i in range(4)]
    )
    made = await asyncio.gather(*lives, batch)
    assert all(r.ok for r in made[-1])
    return 7


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redis_loops, "SCRIPT", RECORDING)


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.mark.usefixtures("recording")
def test_one_client_and_limiter_across_runs_and_threads_pace_every_call_through_redis(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    with FakeStripe.running(rate_limit=RATE) as fake, Quiet() as quiet:
        # A generous redis_timeout: a busy machine must not turn this into a fallback test.
        limiter = ss.RedisRateLimiter(redis_server.url, rate=RATE, name="l20", redis_timeout=5)
        client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, rate_limiter=limiter)
        for run in range(3):
            asyncio.run(work(client, f"run{run}"))
            assert limiter._connection.loops == 0  # closed as its loop ended
        in_threads(lambda i, c=client: work(c, f"thread{i}"))
        in_threads(lambda i, c=client: work(c, f"again{i}"))
        loop = asyncio.new_event_loop()  # closed by hand: its client dropped quietly
        loop.run_until_complete(work(client, "hand"))
        loop.close()
        asyncio.run(work(client, "last"))
        asyncio.run(client.aclose())
        assert limiter._connection.loops == 0
        grants = grants_of(raw, limiter)
        assert len(fake.requests) == len(grants) == 7 * 11  # every one paced through Redis
        assert {r.status for r in fake.requests} == {200}
        check_account(grants, 1 / RATE, 2e-6)  # n starts never span less than n - 2.25 slots
        del client, limiter
    assert quiet.problems == []
    until_sync(lambda: clients(raw) == 1, "every limiter client closed")  # only `raw`


def test_two_hundred_runs_keep_no_dead_loop_and_close_every_client(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    limiter = ss.RedisRateLimiter(redis_server.url, rate=1e5, name="dead", redis_timeout=5)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        # Two batch items at once: they queue at this loop's gate (which then holds the loop).
        await asyncio.gather(*(limiter.acquire(batch=True, timeout=5) for _ in range(2)))
        await limiter.acquire(batch=False, timeout=5)
        assert limiter._connection.loops == 1

    with Quiet() as quiet:
        for _ in range(200):
            asyncio.run(one())
            assert limiter._connection.loops == 0  # closed as its loop ended
        gc.collect()
        assert [r for r in loops if r() is not None] == []  # no loop kept alive
        until_sync(lambda: clients(raw) == 1, "every client closed")  # none left to gc
        hand: list[weakref.ref[asyncio.AbstractEventLoop]] = []
        for _ in range(20):
            loop = asyncio.new_event_loop()
            hand.append(weakref.ref(loop))
            loop.run_until_complete(one())
            loop.close()  # without shutdown_asyncgens: found closed by the next loop
            del loop
            assert limiter._connection.loops == 1
        gc.collect()
        assert sum(r() is not None for r in hand) <= 1  # the last one, until the next loop
        asyncio.run(limiter.aclose())
        assert limiter._connection.loops == 0
        gc.collect()
        assert sum(r() is not None for r in hand) == 0
    assert quiet.problems == []
    until_sync(lambda: clients(raw) == 1, "every client closed")


def test_aclose_on_one_loop_closes_a_running_loops_client_without_failing_its_calls(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    """Clients on two loops share a limiter: closing it from the main loop closes the
    thread's Redis client on the thread's loop once its call in flight is done; the
    thread's next call makes a new one; nothing fails over to the fallback."""
    limiter = ss.RedisRateLimiter(redis_server.url, rate=1e5, name="two", redis_timeout=5)
    used, closed, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def thread() -> None:
        async def go() -> None:
            await limiter.acquire(batch=False, timeout=5)
            used.set()
            await asyncio.get_running_loop().run_in_executor(None, closed.wait, PATIENCE)
            seen["after"] = limiter._connection.loops
            await limiter.acquire(batch=True, timeout=5)  # a new client for this loop

        try:
            asyncio.run(go())
        finally:
            done.set()

    t = threading.Thread(target=thread)
    with Quiet() as quiet:
        t.start()
        assert used.wait(PATIENCE)

        async def main() -> None:
            await limiter.acquire(batch=False, timeout=5)
            assert limiter._connection.loops == 2
            assert clients(raw) == 3
            await limiter.aclose()  # this loop's now, the thread's on its loop, waited for
            assert limiter._connection.loops == 0
            await until(lambda: clients(raw) == 1, "both clients closed")

        asyncio.run(main())
        closed.set()
        assert done.wait(PATIENCE)
        t.join(PATIENCE)
    assert seen["after"] == 0
    assert not limiter._warned
    assert quiet.problems == []
    until_sync(lambda: clients(raw) == 1, "the thread's new client closed with its loop")


EXIT = """
import asyncio, sys, threading
import stripe_sessions as ss

limiter = ss.RedisRateLimiter(sys.argv[3], rate=1000, name="exit", redis_timeout=5)
client = ss.AsyncClient(api_key=sys.argv[1], base_url=sys.argv[2], rate_limiter=limiter)

async def two():
    await asyncio.gather(*(client.customer_sessions.create(customer="cus_exit20", components=P)
                           for _ in range(2)))
    await client.customer_sessions.create_many([{"customer": "cus_exit20", "components": P}])

def thread():
    asyncio.run(two())

for way in sys.argv[4].split(","):
    if way == "run":
        asyncio.run(two())
    elif way == "hand":
        loop = asyncio.new_event_loop()
        loop.run_until_complete(two())
        loop.close()  # without shutdown_asyncgens: its Redis client is dropped quietly
    elif way == "threads":
        threads = [threading.Thread(target=thread) for _ in range(3)]
        for t in threads: t.start()
        for t in threads: t.join()
    elif way == "close":
        asyncio.run(client.aclose())
print("done")
"""


@pytest.mark.parametrize("ways", ["run,run", "run,hand", "threads,hand", "run,threads,close"])
def test_a_module_level_client_and_limiter_exit_without_a_warning(
    redis_server: RedisServer, ways: str
) -> None:
    with FakeStripe.running() as fake:
        done = subprocess.run(
            [
                sys.executable,
                *("-X", "dev", "-W", "error::ResourceWarning"),
                *("-c", PRELUDE + textwrap.dedent(EXIT)),
                *(fake.api_key, fake.url, redis_server.url, ways),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert dev_stderr(done.stderr) == ""  # no ResourceWarning, no "Unclosed ...", nothing ignored


# --- LocalRateLimiter from threads each running a loop ----------------------------------


def test_a_cancelled_call_never_fails_the_calls_beside_it(
    redis_server: RedisServer, raw: redis.Redis
) -> None:
    """A call cancelled mid-command retires its loop's client, which closes once the
    calls still using it are done: they finish through Redis, none fails over to the
    fallback, and no connection is left to the collector (before: 58 "unclosed
    Connection" warnings in 30 rounds)."""
    limiter = ss.RedisRateLimiter(redis_server.url, rate=1e5, name="cancel", redis_timeout=5)

    async def main() -> int:
        cancelled = 0
        for _ in range(30):
            tasks = [asyncio.create_task(limiter.acquire(batch=False, timeout=5)) for _ in range(6)]
            await asyncio.sleep(0)  # every one has sent its command, none has its answer
            await asyncio.sleep(0)
            tasks[0].cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            cancelled += isinstance(done[0], asyncio.CancelledError)
            assert done[1:] == [None] * 5
        await limiter.aclose()
        return cancelled

    with Quiet() as quiet:
        assert asyncio.run(main()) >= 1  # (almost all are cancelled mid-command)
    assert not limiter._warned
    assert quiet.problems == []
    until_sync(lambda: clients(raw) == 1, "every client closed")
