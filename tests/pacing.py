"""Time in the limiter tests: a fake clock, and the guarantees checked on recorded starts.

None of these reads the wall clock against a window: a slow machine cannot fail them.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import redis

import stripe_sessions as ss
from stripe_sessions._limits.gcra import LIVE_BURST, PACING_TOLERANCE
from stripe_sessions._limits.redis_scripts import SCRIPT


class FakeTime:
    """A clock that moves only when every task waits on it (or when a test stalls it)."""

    def __init__(self, late: Callable[[], float] = lambda: 0.0) -> None:
        self.now = 1000.0
        self.late = late  # how late each sleep wakes (a busy loop), seconds
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds + self.late(), next(self._seq), future))
        await future

    async def settle(self) -> None:
        for _ in range(50):  # every runnable task runs until it waits on the clock
            await asyncio.sleep(0)

    async def advance(self, to: float | None = None) -> bool:
        """Fire the next timer (moving the clock to it), or move to ``to``; False if none."""
        await self.settle()
        if to is not None:
            self.now = max(self.now, to)
        fired = False
        while self._timers and ((to is None and not fired) or self._timers[0][0] <= self.now):
            when, _, future = heapq.heappop(self._timers)
            if future.cancelled():
                continue
            self.now = max(self.now, when)
            future.set_result(None)
            fired = True
        await self.settle()
        return fired or to is not None


def check_spacing(starts: list[tuple[float, float | None, int]]) -> None:
    """The documented guarantee, exactly: GCRA with a tolerance of a quarter of a slot.

    Each start at time t[i] was granted at pace rate[i] (interval I[i] = 1/rate[i]); for
    every i < j: t[j] - t[i] >= I[i] + ... + I[j-1] - PACING_TOLERANCE x I[i]. So two
    starts are never closer than 3/4 of a slot, and no run of starts is faster than
    the pace by more than a quarter of one slot, however late the loop woke.
    """
    intervals = [1 / rate if rate else 0.0 for _, rate, _ in starts]
    for i, (a, _, _) in enumerate(starts):
        span = 0.0
        for j in range(i + 1, len(starts)):
            span += intervals[j - 1]
            b = starts[j][0]
            assert b - a >= span - PACING_TOLERANCE * intervals[i] - 1e-9, (i, j, a, b, span)


def check_account(grants: list[tuple[float, bool, float]], interval: float, eps: float) -> None:
    """A limiter's account budget, exactly: GCRA, with live calls borrowing one slot.

    ``grants``: (start, batch?, booked wait) in grant order, at one account interval.
    Starts never go back in grant order; for i < j: ``t[j] - t[i] >= (j - i - 1.25 -
    LIVE_BURST) x interval`` (``n`` starts span at least ``n - 2.25`` slots: no window
    holds more than two starts beyond exact spacing), and if j is a batch start ``>= (j -
    i - 1.25) x interval`` (batch starts are never early: they pay back
    what live calls borrowed). A live call is booked at once unless the grant before it
    was a live call starting less than a slot before it arrived; then at most one slot
    after that call's start.
    """
    starts = [t for t, _, _ in grants]
    assert starts == sorted(starts), starts
    for i, a in enumerate(starts):
        for j in range(i + 1, min(len(starts), i + 80)):
            # A batch start pays back a borrowed slot; a live one may be that slot early.
            least = PACING_TOLERANCE if grants[j][1] else PACING_TOLERANCE + LIVE_BURST
            assert starts[j] - a >= (j - i - least) * interval - eps, (i, j, starts[j] - a)
    if len(starts) > 80:  # and over the whole run
        least = PACING_TOLERANCE + LIVE_BURST
        assert starts[-1] - starts[0] >= (len(starts) - 1 - least) * interval - eps
    for k, (start, batch, wait) in enumerate(grants):
        if batch:
            continue
        arrived = start - wait
        if k == 0 or grants[k - 1][1]:  # nothing, or a batch start, before it: at once
            assert wait <= eps, (k, wait)
        else:
            assert wait <= max(0.0, grants[k - 1][0] + interval - arrived) + eps, (k, wait)


# --- The limiters' GCRA on a fake clock, and the Redis script run directly ----------


class Recorder(ss.LocalRateLimiter):
    """A LocalRateLimiter on a fake clock that records the slot each grant took."""

    def __init__(self, fake: FakeTime, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock, self._sleep = fake.clock, fake.sleep
        self.account: list[float] = []  # every slot of the account budget, in grant order
        self.batch: list[float] = []  # the batch slots
        self.live_waits: list[float] = []  # each live call's booked wait
        self.grants: list[tuple[float, bool, float]] = []  # (slot, batch?, booked wait)

    def _wait(self, batch: bool, now: float) -> float:
        wait = super()._wait(batch, now)
        if not batch:
            self.account.append(now + wait)
            self.live_waits.append(wait)
            self.grants.append((now + wait, False, wait))
        elif wait <= 0:
            self.account.append(now)
            self.batch.append(now)
            self.grants.append((now, True, 0.0))
        return wait


def batch_workers(lim: Recorder, workers: int, per_worker: int) -> list[asyncio.Task[None]]:
    async def worker() -> None:
        for _ in range(per_worker):
            await lim.acquire(batch=True, timeout=30)

    return [asyncio.create_task(worker()) for _ in range(workers)]


async def drive(fake: FakeTime, tasks: list[asyncio.Task[None]]) -> None:
    while not all(t.done() for t in tasks):
        assert await fake.advance()


def now_ms(raw: redis.Redis) -> float:
    seconds, micros = raw.time()
    return seconds * 1000 + micros / 1000


class Script:
    """SCRIPT run directly, with the arguments a limiter sends, Redis's time bracketed."""

    def __init__(self, raw: redis.Redis, url: str, rate: float, share: float) -> None:
        self.raw = raw
        self.limiter = ss.RedisRateLimiter(url, rate=rate, name="gcra", batch_share=share)
        self.keys = self.limiter._keys
        self.script = raw.register_script(SCRIPT)
        raw.delete(*self.keys)

    def get(self, i: int) -> float:
        value = self.raw.get(self.keys[i])
        assert value is not None
        return float(value)

    def run(self, batch: bool) -> tuple[list[Any], float, float]:
        before = now_ms(self.raw)
        answer = self.script(keys=self.keys, args=self.limiter._args(batch))
        return answer, before, now_ms(self.raw)
