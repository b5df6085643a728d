"""Helpers the tests share: a plain module (fixtures stay in conftest.py).

- ``PRICING``, ``fixture_json``, ``as_form``: the common parameters and Stripe's bodies.
- ``Api``: drives either client from an async test (the sync one from a worker thread).
- ``run_script``: runs a snippet in a fresh interpreter (exit, signals, fork, leaks).
- ``dev_stderr``: a ``-X dev`` subprocess's stderr less asyncio's slow-callback lines.
- ``Exploding``: a caller's mapping that fails when read.
- ``items``: a batch's input; ``free_port``: a port nothing listens on.
- ``until`` / ``until_sync``: wait for a condition, failing only on a hang (``PATIENCE``).
- ``cli_env``: the environment a CLI subprocess runs in (only the given Stripe key).

The other support modules, each one subject: ``hostile`` and ``hostile_tcp`` (hostile
servers and a tampering proxy), ``leaks`` (what an error tracker shows, and the
secrets it must not), ``pacing`` (a fake clock, and the rate checks on recorded starts).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe, FormLimits
from stripe_sessions.testing._parse import parse_form

FIXTURES = Path(__file__).parent / "fixtures"

PRICING = {"pricing_table": {"enabled": True}}


def as_form(value: Any) -> Any:
    """What a server decodes from an encoded value: every scalar as its string."""
    if isinstance(value, dict):
        return {k: as_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_form(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


class Api:
    """Drives either client from an async test (the sync one from a worker thread)."""

    def __init__(self, kind: str, fake: FakeStripe) -> None:
        self.kind = kind
        self.fake = fake
        if kind == "async":
            self.client: Any = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
        else:
            self.client = ss.Client(api_key=fake.api_key, base_url=fake.url)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.client.customer_sessions, name)
        if self.kind == "async":
            if name == "stream_many":
                return [r async for r in method(*args, **kwargs)]
            return await method(*args, **kwargs)
        if name == "stream_many":
            return await asyncio.to_thread(lambda: list(method(*args, **kwargs)))
        return await asyncio.to_thread(method, *args, **kwargs)

    async def close(self) -> None:
        if self.kind == "async":
            await self.client.aclose()
        else:
            await asyncio.to_thread(self.client.close)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def run_script(code: str, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args, "-c", PRELUDE + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


#: The one line asyncio's debug mode (``-X dev``) logs for a callback slower than
#: ``loop.slow_callback_duration`` (100 ms), as asyncio words it (``base_events``):
#: "Executing <Task pending name='Task-1' coro=<...> ...> took 0.126 seconds".
_SLOW_CALLBACK = re.compile(r"Executing <.+> took \d+\.\d{3} seconds")


def dev_stderr(text: str) -> str:
    """A ``-X dev`` subprocess's stderr without asyncio's slow-callback lines, all else kept.

    Under ``-X dev`` asyncio logs every callback slower than 100 ms: a busy machine's
    timing, not a fault of the code under test. Only those exact lines are dropped, so
    ``assert dev_stderr(out.stderr) == ""`` still fails on any warning, ``Unclosed ...``,
    traceback or ``Exception ignored`` line.
    """
    lines = text.splitlines(keepends=True)
    return "".join(s for s in lines if not _SLOW_CALLBACK.fullmatch(s.rstrip("\r\n")))


PRELUDE = """
import os, sys, time, signal, threading, asyncio, warnings
import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe, FormLimits
from stripe_sessions.testing._parse import parse_form
from tests.helpers import Api
P = {"pricing_table": {"enabled": True}}
"""


class Exploding(Mapping[str, Any]):
    """A caller's Mapping that fails when read."""

    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("database went away")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("database went away")

    def __len__(self) -> int:
        return 1


def decode(body: str) -> dict[str, Any]:
    """A form body as nested dicts and lists, read by the fake's parser (no caps in reach)."""
    limits = FormLimits(max_body_bytes=1 << 30, max_fields=1 << 20)
    return parse_form(body.encode(), limits)


def items(n: int, start: int = 0) -> Iterator[dict[str, Any]]:
    """A batch's input: ``n`` valid create parameters, customers ``cus_<start>``... on."""
    for i in range(start, start + n):
        yield {"customer": f"cus_{i}", "components": PRICING}


#: The sockets behind free_port()'s ports, bound for the life of the test process.
_HELD: list[socket.socket] = []


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connecting is refused.

    The port stays bound (never listening) for the rest of the test process: a port
    released instead could be taken meanwhile by another worker's server (a Redis, a
    fake), and the test would then reach that server instead of being refused.
    """
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return int(s.getsockname()[1])


#: How long a test waits for something that takes milliseconds: only a hang reaches it.
PATIENCE = 30.0


def run_threads(target: Callable[[int], None], count: int) -> None:
    """``target(i)`` for i in ``range(count)``, each in its own thread, all at once; each
    joined with a bound: a thread still running then fails the test instead of hanging it."""
    started = [threading.Thread(target=target, args=(i,)) for i in range(count)]
    for t in started:
        t.start()
    for t in started:
        t.join(PATIENCE)
    assert not any(t.is_alive() for t in started), "a thread still runs"


async def close_server(
    server: asyncio.Server, writers: Iterable[asyncio.StreamWriter] = ()
) -> None:
    """Stop a test's ``asyncio`` server and wait (bounded) until its connections are closed.

    From Python 3.12, ``Server.wait_closed()`` waits until every connection the server
    accepted is closed, and a connection whose handler task was cancelled before it ever
    ran is closed by nobody: the wait never ended (a CI run hung on 3.12.1). So the
    connections in ``writers`` still open are reset first, and the wait is bounded.
    """
    server.close()
    for writer in writers:
        if not writer.transport.is_closing():
            writer.transport.abort()
    await asyncio.wait_for(server.wait_closed(), PATIENCE)


async def until(check: Callable[[], bool], what: str) -> None:
    """Yield to the loop until ``check()`` holds; fail (naming ``what``) only on a hang."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def until_sync(check: Callable[[], bool], what: str) -> None:
    """``until`` for a thread without a loop."""
    deadline = time.monotonic() + PATIENCE
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def cli_env(key: str, **extra: str) -> dict[str, str]:
    """This environment without any ``STRIPE_*`` variable, with ``STRIPE_API_KEY=key``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_")}
    return {**base, "STRIPE_API_KEY": key, **extra}


#: CI's older Pythons run each property test with a quarter of its examples (at least 5):
#: every property still runs on every Python, and the newest runs them in full
#: (``.ci/test-pythons`` sets ``SS_QUICK_PROPERTIES=1``; the suite's time stays in bounds).
QUICK_PROPERTIES = os.environ.get("SS_QUICK_PROPERTIES") == "1"


def examples(n: int) -> int:
    """A property test's example count: ``n``, or a quarter of it under SS_QUICK_PROPERTIES."""
    return max(5, n // 4) if QUICK_PROPERTIES else n
