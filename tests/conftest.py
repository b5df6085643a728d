"""Shared fixtures: a FakeStripe on 127.0.0.1 per test, a client bound to it, fast retries.

Sync tests use the plugin's own ``fake_stripe`` (a FakeStripe served from a thread);
helpers that are not fixtures live in ``tests/helpers.py``.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest
from hypothesis import settings

import stripe_sessions as ss
from stripe_sessions._http import retry as _retry
from stripe_sessions._http.retry import RetryPolicy
from stripe_sessions._limits.pause import DEFAULT_PAUSE, MAX_PAUSE
from stripe_sessions.testing import FakeStripe, RedisServer
from tests.helpers import Api

# Property tests have no deadline: on a busy machine (xdist workers sharing the cores
# with other work) any example can take longer than hypothesis's 200 ms, and a right
# test would fail (DeadlineExceeded, then Flaky). How long something may take is
# asserted where it matters, on a fake clock or by what a server recorded.
settings.register_profile("suite", deadline=None)
settings.load_profile("suite")

pytest_plugins = ["pytester"]

# A suite started as a background job of a shell without job control (a CI script's
# `cmd &`) inherits SIGINT ignored, and so does every process it starts: Python then
# raises no KeyboardInterrupt, and the tests that Ctrl-C a child would wait in vain.
# Here (in the controller and each xdist worker) SIGINT gets Python's own handler
# back, which a child's exec turns into the default, as in a terminal.
if (
    signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    and threading.current_thread() is threading.main_thread()
):
    signal.signal(signal.SIGINT, signal.default_int_handler)


#: Test files CI runs on the newest Python only (``.ci/test-pythons``: ``-m "not
#: newest_only"`` on the older three), to keep CI within its time. Each drives code every
#: other file also drives on every Python, through a costly harness: the docs' examples,
#: CLI subprocesses, the fake's own properties, several processes sharing one Redis
#: budget, the long stateful run. ``make test`` runs them all.
NEWEST_ONLY = frozenset(
    {
        "test_readme.py",
        "test_cli.py",
        "test_cli_input.py",
        "test_cli_attack.py",
        "test_cli_props.py",
        "test_cli_keys.py",
        "test_cli_replayed.py",
        "test_fake_props.py",
        "test_fake_stripe_python.py",
        "test_stateful.py",
        "test_limiter.py",
        "test_limiter_cluster.py",
        "test_limiter_live_burst.py",
        "test_limiter_gcra.py",
        "test_inputs.py",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests of :data:`NEWEST_ONLY` files ``newest_only``."""
    for item in items:
        if item.path.name in NEWEST_ONLY:
            item.add_marker(pytest.mark.newest_only)


#: Stripe's retry rules with waits a hundred times shorter, and a batch's pause after a
#: 429 at most 10 ms: what every client of the suite retries by.
FAST_RETRIES = RetryPolicy(initial_wait=0.001, max_wait=0.005, pause=0.01, max_pause=0.01)


@pytest.fixture(autouse=True)
def sdk_log_level() -> Iterator[None]:
    """Each test leaves the SDK's logger level as it found it (the CLI's ``main()``, run
    in-process, sets it), so no test's log assertions depend on the tests before it."""
    log = logging.getLogger("stripe_sessions")
    level = log.level
    yield
    log.setLevel(level)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every client built in the test retries by :data:`FAST_RETRIES`.

    ``DEFAULT_POLICY`` is what a ``Config`` takes its policy from (with the client's
    ``max_retries``).
    """
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", FAST_RETRIES)


@pytest.fixture
def real_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch pauses after a 429 as it does outside the suite (1 s, Retry-After up to 60 s)."""
    policy = attrs.evolve(FAST_RETRIES, pause=DEFAULT_PAUSE, max_pause=MAX_PAUSE)
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", policy)


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as server:
        yield server


@pytest.fixture
async def client(fake: FakeStripe) -> AsyncIterator[ss.AsyncClient]:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        yield c


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run a test once with AsyncClient and once with the generated sync Client."""
    return str(request.param)


@pytest.fixture
async def api(kind: str, fake: FakeStripe) -> AsyncIterator[Api]:
    api = Api(kind, fake)
    yield api
    await api.close()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server for the test. Skipped when none is installed, except in CI."""
    try:
        server = RedisServer(tmp_path)
    except FileNotFoundError:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("no redis-server binary: the shared rate limiter's tests need one")
    server.start()
    yield server
    server.stop()
