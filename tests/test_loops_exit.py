"""A module-level AsyncClient at exit, and under trio.

In a fresh interpreter under ``-X dev -W error::ResourceWarning``: a client built at
import time, used from two ``asyncio.run`` calls (and from a loop closed by hand), never
closed, exits with nothing on stderr. Under anyio's trio backend the first call is an
``EventLoopError`` (a ``StripeError``) saying asyncio is needed and how to bridge.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import anyio
import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRELUDE, PRICING, dev_stderr


@pytest.fixture(scope="module")
def module_fake() -> Iterator[FakeStripe]:
    with FakeStripe.running() as fake:
        yield fake


SCRIPT = """
import asyncio, sys
import stripe_sessions as ss

client = ss.AsyncClient(api_key=sys.argv[1], base_url=sys.argv[2])  # at import time

async def create():
    s = await client.customer_sessions.create(customer="cus_exit123", components=P)
    return s.client_secret

async def two():
    return await asyncio.gather(create(), create())

for way in sys.argv[3].split(","):
    if way == "run":
        asyncio.run(two())
    elif way == "hand":
        loop = asyncio.new_event_loop()
        loop.run_until_complete(two())
        loop.close()  # without shutdown_asyncgens: the pool is dropped quietly
    elif way == "close":
        asyncio.run(client.aclose())
print("done")
"""


@pytest.mark.parametrize("ways", ["run,run", "run,hand", "hand", "run,hand,run,close"])
def test_a_module_level_client_exits_without_a_warning(module_fake: FakeStripe, ways: str) -> None:
    before = len(module_fake.requests)
    done = _run(module_fake, ways)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert dev_stderr(done.stderr) == ""  # no ResourceWarning, no "Unclosed ...", nothing ignored
    assert len(module_fake.requests) - before == 2 * sum(
        w in ("run", "hand") for w in ways.split(",")
    )


def _run(fake: FakeStripe, ways: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            *("-X", "dev", "-W", "error::ResourceWarning"),
            *("-c", PRELUDE + textwrap.dedent(SCRIPT)),
            *(fake.api_key, fake.url, ways),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_under_trio_the_first_call_says_asyncio_is_needed(module_fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=module_fake.api_key, base_url=module_fake.url)
    before = len(module_fake.requests)
    raised: list[BaseException] = []

    async def main() -> None:
        for call in (
            lambda: client.customer_sessions.create(customer="cus_trio123", components=PRICING),
            lambda: client.customer_sessions.create_many(
                [{"customer": "cus_trio123", "components": PRICING}]
            ),
        ):
            try:
                await call()
            except BaseException as e:
                raised.append(e)

    anyio.run(main, backend="trio")
    assert len(raised) == 2
    for error in raised:
        assert isinstance(error, ss.EventLoopError), repr(error)
        assert isinstance(error, ss.StripeError)
        assert isinstance(error, RuntimeError)
        text = str(error)
        assert "asyncio" in text
        assert "trio" in text
        assert "anyio.to_thread.run_sync" in text
        assert "stripe_sessions.Client" in text
        assert error.should_retry is False
    assert len(module_fake.requests) == before  # nothing sent


def test_the_bridge_the_error_names_works_under_trio(module_fake: FakeStripe) -> None:
    """What the message says to do: the sync client in a worker thread."""
    with ss.Client(api_key=module_fake.api_key, base_url=module_fake.url) as client:

        async def main() -> str:
            made = await anyio.to_thread.run_sync(
                lambda: client.customer_sessions.create(customer="cus_trio123", components=PRICING)
            )
            return made.client_secret

        assert anyio.run(main, backend="trio").startswith("cuss_secret_")
