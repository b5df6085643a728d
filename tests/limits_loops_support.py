"""What the limiter-loop tests share (issue #20): a recording script, threads.

Not a test module: ``tests/test_limits_loops*.py`` import it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import redis

import stripe_sessions as ss
from stripe_sessions._limits.redis_scripts import SCRIPT, budget_keys
from tests.helpers import PATIENCE, run_threads

__all__ = ["RECORDING", "clients", "grants_of", "in_threads"]

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

    run_threads(one, threads)
    assert not errors, errors


def clients(raw: redis.Redis) -> int:
    """How many clients Redis has connected (``raw`` is one)."""
    return len(raw.client_list())
