"""LocalRateLimiter from threads each running an event loop (issue #20).

One limiter shared by clients on several loops, or one client used from several: each
booking is atomic across threads (a lock around its arithmetic, never held across an
await), so no two calls take the same slot and the account's spacing holds exactly.
"""

from __future__ import annotations

import asyncio
import pickle
import sys
import threading

import pytest

import stripe_sessions as ss
from stripe_sessions._limits.gcra import PACING_TOLERANCE
from tests.limits_loops_support import in_threads
from tests.pacing import FakeTime, Recorder, check_account


class Switchy:
    """A tiny thread switch interval: the interpreter switches threads between any lines."""

    def __enter__(self) -> None:
        self._was = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self._was)


def test_live_bookings_from_three_loops_at_once_each_take_their_own_slot() -> None:
    # The clock stands still: each live call books the next slot, a quarter of a slot
    # of tolerance aside, so n bookings move the account's next slot n - 1/4 slots on.
    # A booking lost to a race moves it less (seen: a fifth of them, without the lock).
    lim = ss.LocalRateLimiter(1000.0)
    lim._clock = lambda: 1000.0
    per = 20_000

    async def go(_: int) -> None:
        for _ in range(per):
            await lim.acquire(batch=False, timeout=0)

    with Switchy():
        in_threads(go)
    booked = (lim._account_next - 1000.0) * 1000.0 + PACING_TOLERANCE
    assert booked == pytest.approx(3 * per, abs=1e-3)


def test_mixed_bookings_from_three_loops_keep_the_accounts_spacing() -> None:
    # A clock every thread moves on a little at each read: live calls and batch items of
    # three loops interleave, and the grants (recorded in booking order) keep GCRA's
    # spacing exactly, the documented guarantee.
    lock, now = threading.Lock(), [1000.0]

    def clock() -> float:
        with lock:
            now[0] += 0.1 / 1000.0
            return now[0]

    lim = Recorder(FakeTime(), 1000.0, batch_share=0.5)
    lim._clock, lim._sleep = clock, lambda _: asyncio.sleep(0)

    async def go(i: int) -> None:
        for k in range(3000):
            await lim.acquire(batch=bool((k + i) % 2), timeout=0)

    with Switchy():
        in_threads(go, threads=4)
    assert len(lim.grants) == 12_000
    check_account(lim.grants, 1 / 1000.0, 1e-9)


def test_limiters_still_pickle_with_their_locks() -> None:
    local = pickle.loads(pickle.dumps(ss.LocalRateLimiter(5, batch_share=0.2)))
    assert local.batch_share == 0.2
    asyncio.run(local.acquire(batch=False, timeout=0))  # its lock works
    shared = pickle.loads(pickle.dumps(ss.RedisRateLimiter("redis://127.0.0.1:1/0", rate=5)))
    assert shared.rate == 5
    assert shared._connection.loops == 0
