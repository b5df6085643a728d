"""What the limiter-loop tests share (issue #20): a recording script, Quiet, threads.

Not a test module: ``tests/test_limits_loops*.py`` import it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

import redis

import stripe_sessions as ss
from stripe_sessions._limits.redis_scripts import SCRIPT, budget_keys
from tests.helpers import PATIENCE

__all__ = ["RECORDING", "Quiet", "clients", "grants_of", "in_threads"]

#: SCRIPT as Redis runs it, also appending each slot it grants to ``<account key>:grants``
#: ("start ms,batch?,booked wait ms", in Redis's clock, in grant order): what the
#: spacing is checked on. Its one ``local now`` becomes an upvalue the wrapper reads.
RECORDING = (
    "local now\nlocal function inner()\n"
    + SCRIPT.replace("local now = ", "now = ", 1)
    + """
end
local r = inner()
if ARGV[1] ~= '1' then
  redis.call('RPUSH', KEYS[1] .. ':grants',
             string.format('%.6f,0,%s', now + tonumber(r[1]), r[1]))
elseif r[1] == '0' then
  redis.call('RPUSH', KEYS[1] .. ':grants', string.format('%.6f,1,0', now))
end
return r
"""
)


class Quiet:
    """Everything that would say a client was left behind or Redis failed."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __enter__(self) -> Quiet:
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        self._hook = sys.unraisablehook
        sys.unraisablehook = lambda u: self.problems.append(f"unraisable: {u.exc_value!r}")
        self._handler = _Collect(self.problems)
        for name in ("asyncio", "stripe_sessions"):
            logging.getLogger(name).addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for _ in range(3):
                gc.collect()
        finally:
            for name in ("asyncio", "stripe_sessions"):
                logging.getLogger(name).removeHandler(self._handler)
            sys.unraisablehook = self._hook
            self._warnings.__exit__(None, None, None)
        self.problems += [f"{w.category.__name__}: {w.message}" for w in self._caught]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"log {record.name}: {record.getMessage()}")


def grants_of(
    raw: redis.Redis, budget: ss.RedisRateLimiter | str
) -> list[tuple[float, bool, float]]:
    """The slots Redis granted a limiter (or the budget so named), in grant order: (start
    s, batch?, booked wait s)."""
    account = budget_keys(budget)[0] if isinstance(budget, str) else budget._keys[0]
    out = []
    for item in raw.lrange(account + ":grants", 0, -1):
        start, batch, wait = item.decode().split(",")
        out.append((float(start) / 1000, batch == "1", float(wait) / 1000))
    return out


def in_threads(go: Callable[[int], Any], threads: int = 3) -> None:
    """``go(i)`` in ``threads`` threads at once, each in its own ``asyncio.run``."""
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def one(i: int) -> None:
        async def main() -> None:
            barrier.wait(PATIENCE)  # every loop runs before any asks
            await go(i)

        try:
            asyncio.run(main())
        except BaseException as e:
            errors.append(e)

    started = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for t in started:
        t.start()
    for t in started:
        t.join(PATIENCE)
    assert not errors, errors


def clients(raw: redis.Redis) -> int:
    """How many clients Redis has connected (``raw`` is one)."""
    return len(raw.client_list())
