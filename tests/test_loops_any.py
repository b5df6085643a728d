"""One AsyncClient, any asyncio event loop: a connection pool per loop, dropped with it.

A client built once (at import time, say) is used from sequences of ``asyncio.run``
calls, threads each running their own loop at the same time, and loops closed by hand
without ``shutdown_asyncgens``; every create reaches the fake, and nothing warns: no
ResourceWarning, no "Unclosed client session/connector" logged, no unclosed transport.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._http.pool import ConnectionPool
from stripe_sessions.testing import FakeStripe
from tests.helpers import PATIENCE, PRICING, examples, run_threads
from tests.quiet import Quiet

CUSTOMER = "cus_loops123"


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        yield fake


def loop_quiet() -> Quiet:
    """Every asyncio record counts (an unclosed pool is logged at ERROR, some at DEBUG)."""
    return Quiet(loggers=("asyncio",), level=logging.DEBUG)


def pool_of(client: ss.AsyncClient) -> ConnectionPool:
    pool = client._session  # the ConnectionPool the client and its copies share
    assert isinstance(pool, ConnectionPool)
    return pool


async def creates(client: ss.AsyncClient, n: int) -> list[str]:
    made = await asyncio.gather(
        *(client.customer_sessions.create(customer=CUSTOMER, components=PRICING) for _ in range(n))
    )
    return [s.client_secret for s in made]


def by_asyncio_run(client: ss.AsyncClient, n: int) -> list[str]:
    return asyncio.run(creates(client, n))


def by_hand_closed(client: ss.AsyncClient, n: int) -> list[str]:
    """A loop run and closed by hand, without ``shutdown_asyncgens``: the pool's end
    hook never runs, so the pool is found closed and dropped later, quietly."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(creates(client, n))
    finally:
        loop.close()


def by_runner(client: ss.AsyncClient, n: int) -> list[str]:
    """``asyncio.Runner`` (3.11+; pytest-asyncio and anyio use it): as ``asyncio.run``."""
    runner = getattr(asyncio, "Runner", None)
    if runner is None:
        return by_asyncio_run(client, n)
    with runner() as r:
        return list(r.run(creates(client, n)))


def by_threads(client: ss.AsyncClient, n: int, threads: int = 3) -> list[str]:
    """``threads`` threads, each with its own loop, creating at the same time."""
    barrier = threading.Barrier(threads)
    out: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def one(i: int) -> None:
        async def go() -> list[str]:
            barrier.wait(PATIENCE)  # all loops are running before any creates
            return await creates(client, n)

        try:
            out[i] = asyncio.run(go())
        except BaseException as e:
            errors.append(e)

    run_threads(one, threads)
    assert not errors, errors
    return [s for o in out for s in o]


WAYS = {
    "asyncio.run": by_asyncio_run,
    "loop closed by hand": by_hand_closed,
    "asyncio.Runner": by_runner,
    "threads": by_threads,
}


@settings(
    max_examples=examples(12),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(st.sampled_from(sorted(WAYS)), st.integers(1, 3)), max_size=5))
def test_one_client_serves_any_sequence_of_loops(
    module_fake: FakeStripe, steps: list[tuple[str, int]]
) -> None:
    with loop_quiet() as quiet:
        client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
        before = len(module_fake.requests)
        expected = 0
        for way, n in steps:
            secrets = WAYS[way](client, n)
            expected += n * (3 if way == "threads" else 1)
            assert len(secrets) == n * (3 if way == "threads" else 1)
            # Only a loop closed by hand leaves its pool, until the next loop drops it.
            assert pool_of(client).loops <= 1
        assert len(module_fake.requests) - before == expected
        asyncio.run(client.aclose())
        assert pool_of(client).loops == 0
        del client
    assert quiet.problems == []


def test_two_hundred_asyncio_runs_keep_no_dead_loop(module_fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def one() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        await creates(client, 1)
        assert pool_of(client).loops == 1

    with loop_quiet() as quiet:
        for _ in range(200):
            asyncio.run(one())
            assert pool_of(client).loops == 0  # dropped as its loop ended
        gc.collect()
        assert [r for r in loops if r() is not None] == []  # no loop kept alive
        for _ in range(50):
            by_hand_closed(client, 1)
            assert pool_of(client).loops == 1  # the last one, until the next loop
        gc.collect()
        assert sum(r() is not None for r in loops) == 0
        asyncio.run(client.aclose())
    assert quiet.problems == []


def test_a_pool_of_a_loop_closed_by_hand_is_dropped_without_a_warning(
    module_fake: FakeStripe,
) -> None:
    with loop_quiet() as quiet:
        client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
        by_hand_closed(client, 3)  # three connections kept alive in that loop's pool
        assert pool_of(client).loops == 1
        by_asyncio_run(client, 1)  # a new loop: the closed one's pool is dropped
        assert pool_of(client).loops == 0
        by_hand_closed(client, 2)
        del client  # dropped with a closed loop's pool in it
    assert quiet.problems == []


async def test_per_test_loops_share_a_module_level_client_first(module_fake: FakeStripe) -> None:
    assert len(await creates(MODULE_CLIENT.get(module_fake), 2)) == 2


async def test_per_test_loops_share_a_module_level_client_second(module_fake: FakeStripe) -> None:
    assert len(await creates(MODULE_CLIENT.get(module_fake), 2)) == 2
    assert pool_of(MODULE_CLIENT.get(module_fake)).loops == 1  # this test's loop only


@pytest.mark.parametrize("round_", range(3))
async def test_per_test_loops_parametrised(module_fake: FakeStripe, round_: int) -> None:
    assert len(await creates(MODULE_CLIENT.get(module_fake), 1 + round_)) == 1 + round_


class _ModuleClient:
    """An AsyncClient made once for the whole module (as at import time)."""

    client: ss.AsyncClient | None = None

    def get(self, fake: FakeStripe) -> ss.AsyncClient:
        if self.client is None:
            self.client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
        return self.client


MODULE_CLIENT = _ModuleClient()


def test_aclose_closes_the_pools_of_other_running_loops(module_fake: FakeStripe) -> None:
    """Closed from the main thread's loop, a pool on a thread's running loop is closed
    there (thread-safely), and that thread's next call is refused."""
    client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
    used, closed, done = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, Any] = {}

    def thread() -> None:
        async def go() -> None:
            await creates(client, 2)
            seen["session"] = pool_of(client).get()
            used.set()
            await asyncio.get_running_loop().run_in_executor(None, closed.wait, PATIENCE)
            seen["closed"] = seen["session"].closed
            try:
                await creates(client, 1)
            except ss.ClientClosedError as e:
                seen["refused"] = e

        try:
            asyncio.run(go())
        finally:
            done.set()

    t = threading.Thread(target=thread)
    with loop_quiet() as quiet:
        t.start()
        assert used.wait(PATIENCE)

        async def main() -> None:
            await creates(client, 1)
            assert pool_of(client).loops == 2
            await client.aclose()

        asyncio.run(main())
        closed.set()
        assert done.wait(PATIENCE)
        t.join(PATIENCE)
    assert seen["closed"] is True  # closed on its own loop before aclose returned
    assert seen["refused"].in_flight is False
    assert pool_of(client).loops == 0
    assert quiet.problems == []


def test_aclose_on_the_last_loop_leaves_nothing_to_warn_about(module_fake: FakeStripe) -> None:
    with loop_quiet() as quiet:
        client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
        by_asyncio_run(client, 1)
        by_threads(client, 1, threads=2)

        async def last() -> None:
            await creates(client, 1)
            await client.aclose()
            with pytest.raises(ss.ClientClosedError):
                await creates(client, 1)

        asyncio.run(last())
        with pytest.raises(ss.ClientClosedError):
            by_asyncio_run(client, 1)  # closed on every loop
        assert client.closed
    assert quiet.problems == []
