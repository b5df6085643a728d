"""Red team (#20): one AsyncClient from any loop, including calls made while a loop shuts down.

A call can reach a loop after ``loop.shutdown_asyncgens()`` has run: from an async
generator's ``finally`` (``asyncio.run`` closes the generators left open) or from a
worker thread of the default executor while ``asyncio.run`` waits for it. The pool made
then must not register its end-of-loop hook (an async generator: asyncio warns that it
"was scheduled after loop.shutdown_asyncgens() call", a ResourceWarning, which
``-W error`` turns into the call's exception), and must be dropped quietly once its
loop is closed. Real loops against a real FakeStripe; the exit is checked in a fresh
interpreter under ``-X dev -W error``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRELUDE, PRICING, dev_stderr, examples


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        yield fake


def _in_a_generators_finally(client: ss.AsyncClient, made: list[str]) -> None:
    async def gen() -> AsyncIterator[int]:
        try:
            yield 1
        finally:  # run by asyncio.run's shutdown_asyncgens
            s = await client.customer_sessions.create(customer="cus_fin", components=PRICING)
            made.append(s.customer_id)

    left_open: list[AsyncIterator[int]] = []

    async def main() -> None:
        g = gen()
        await g.__anext__()
        left_open.append(g)  # still open when main returns

    asyncio.run(main())


def _from_the_executor_at_shutdown(client: ss.AsyncClient, made: list[str]) -> None:
    started = threading.Event()

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def late() -> None:  # still running when asyncio.run shuts the executor down
            started.set()
            while not getattr(loop, "_asyncgens_shutdown_called", True):
                threading.Event().wait(0.001)
            call = client.customer_sessions.create(customer="cus_late", components=PRICING)
            made.append(asyncio.run_coroutine_threadsafe(call, loop).result(30).customer_id)

        loop.run_in_executor(None, late)
        await asyncio.get_running_loop().run_in_executor(None, started.wait)

    asyncio.run(main())


def _plain(client: ss.AsyncClient, made: list[str]) -> None:
    async def main() -> None:
        s = await client.customer_sessions.create(customer="cus_plain", components=PRICING)
        made.append(s.customer_id)

    asyncio.run(main())


def _by_hand(client: ss.AsyncClient, made: list[str]) -> None:
    loop = asyncio.new_event_loop()
    s = loop.run_until_complete(
        client.customer_sessions.create(customer="cus_hand", components=PRICING)
    )
    made.append(s.customer_id)
    loop.close()


def _in_a_thread(client: ss.AsyncClient, made: list[str]) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(_plain, client, made).result(60)


WAYS = {
    "finally": _in_a_generators_finally,
    "executor": _from_the_executor_at_shutdown,
    "run": _plain,
    "hand": _by_hand,
    "thread": _in_a_thread,
}


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ways=st.lists(st.sampled_from(sorted(WAYS)), min_size=1, max_size=5))
def test_any_sequence_of_loops_and_shutdown_calls_works_and_warns_nothing(
    module_fake: FakeStripe, ways: list[str]
) -> None:
    # filterwarnings=error: a ResourceWarning from asyncio would be the call's exception,
    # and one from a collected session an unraisable-exception warning, an error too.
    client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
    made: list[str] = []
    for way in ways:
        WAYS[way](client, made)
    assert len(made) == len(ways)
    client._session.sweep()  # what the next loop, aclose() or the exit would do
    assert client._session.loops == 0  # every loop here has ended: nothing kept
    del client
    gc.collect()


SCRIPT = """
import asyncio, sys
import stripe_sessions as ss

client = ss.AsyncClient(api_key=sys.argv[1], base_url=sys.argv[2])

async def gen():
    try:
        yield 1
    finally:
        s = await client.customer_sessions.create(customer="cus_fin", components=P)
        print(s.customer_id)

async def main():
    g = gen()
    await g.__anext__()
    globals()["g"] = g

asyncio.run(main())
print("done")
"""


def test_a_call_from_a_generators_finally_at_shutdown_exits_without_a_warning(
    module_fake: FakeStripe,
) -> None:
    done = subprocess.run(
        [
            sys.executable,
            *("-X", "dev", "-W", "error"),
            *("-c", PRELUDE + textwrap.dedent(SCRIPT)),
            *(module_fake.api_key, module_fake.url),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["cus_fin", "done"]
    assert dev_stderr(done.stderr) == ""  # no warning, no "Unclosed ...", nothing ignored


def test_calls_from_generators_closed_at_shutdown_are_not_cut_by_the_pools_close(
    module_fake: FakeStripe,
) -> None:
    # shutdown_asyncgens closes the app's generators and the pool's end hook at once:
    # the hook waits for the calls in flight on its loop before closing their session
    # (it closed it under them: APIConnectionError, ~1 call in 3 here).
    client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url, max_retries=0)
    made: list[str] = []

    async def gen(i: int) -> AsyncIterator[int]:
        try:
            yield i
        finally:
            s = await client.customer_sessions.create(customer=f"cus_g{i}", components=PRICING)
            made.append(s.customer_id)

    left_open: list[AsyncIterator[int]] = []

    async def main() -> None:
        await client.customer_sessions.create(customer="cus_first", components=PRICING)
        for i in range(10):
            g = gen(i)
            await g.__anext__()
            left_open.append(g)

    for _ in range(3):
        asyncio.run(main())
        left_open.clear()
    assert len(made) == 30  # a failed one is only logged by asyncio: counted here
    client._session.sweep()
    assert client._session.loops == 0
