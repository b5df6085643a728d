"""Specification of LocalRateLimiter, on a fake clock: who waits, how long, and after a 429.

The limiter's clock and sleep are its seam (``_clock``, ``_sleep``): every time here
is the fake clock's. (GCRA's spacing under late wake-ups is tests/test_limiter_gcra.py's.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._limits.gcra import LIVE_RESERVE, MAX_SLEEP
from stripe_sessions._limits.pause import MAX_PAUSE
from tests.pacing import FakeTime


def limiter(rate: float, **kwargs: Any) -> tuple[ss.LocalRateLimiter, FakeTime]:
    fake = FakeTime()
    lim = ss.LocalRateLimiter(rate, **kwargs)
    lim._clock, lim._sleep = fake.clock, fake.sleep
    return lim, fake


async def granted(
    fake: FakeTime, lim: ss.LocalRateLimiter, batch: bool, timeout: float = 60.0
) -> float:
    """Acquire one slot; the fake time it was granted at."""
    task = asyncio.create_task(lim.acquire(batch=batch, timeout=timeout))
    while not task.done():
        assert await fake.advance() or task.done(), "the acquire waits forever"
    task.result()
    return fake.now


async def test_live_calls_take_the_account_slots_one_interval_apart() -> None:
    lim, fake = limiter(10.0)
    t0 = fake.now
    times = [await granted(fake, lim, batch=False) for _ in range(4)]
    # A live call may borrow one slot (LIVE_BURST): the second starts at once; then
    # GCRA: the third may come a quarter slot early, then one interval apart.
    assert times == pytest.approx([t0, t0, t0 + 0.075, t0 + 0.175], abs=1e-9)


async def test_a_live_call_waits_at_most_its_timeout_then_goes_ahead() -> None:
    lim, fake = limiter(0.5)  # one slot every 2 s
    t0 = await granted(fake, lim, batch=False)
    assert await granted(fake, lim, batch=False) == t0  # the one slot a live call borrows
    assert await granted(fake, lim, batch=False, timeout=0.3) == pytest.approx(t0 + 0.3)
    assert await granted(fake, lim, batch=False, timeout=0) == pytest.approx(t0 + 0.3)
    assert max(fake.sleeps) <= MAX_SLEEP


async def test_a_batch_item_takes_its_share_of_the_rate() -> None:
    lim, fake = limiter(10.0, batch_share=0.5)  # the batch budget: 5/s
    t0 = fake.now
    times = [await granted(fake, lim, batch=True) for _ in range(3)]
    assert times == pytest.approx([t0, t0 + 0.15, t0 + 0.35], abs=1e-9)
    assert max(fake.sleeps) <= MAX_SLEEP


async def test_a_batch_item_waits_for_a_gap_that_live_traffic_leaves() -> None:
    lim, fake = limiter(10.0, batch_share=1.0)
    t0 = await granted(fake, lim, batch=False)  # the account's next slot: t0 + 0.075
    # A batch item starts only once the account's next slot is LIVE_RESERVE of a slot past.
    assert await granted(fake, lim, batch=True) == pytest.approx(t0 + 0.075 + LIVE_RESERVE * 0.1)


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [(None, 2.5), (4.0, 4.0), (0.0, 0.0), (1e9, MAX_PAUSE), (-1.0, 2.5), (float("nan"), 2.5)],
)
async def test_a_429_pauses_batch_items_for_retry_after_or_the_pause(
    retry_after: float | None, pause: float
) -> None:
    lim, fake = limiter(10.0, batch_share=1.0, pause=2.5)
    heard = fake.now
    await lim.rate_limited(retry_after)
    assert await granted(fake, lim, batch=True) == pytest.approx(heard + pause)


async def test_a_429_never_pauses_live_calls() -> None:
    lim, fake = limiter(10.0)
    heard = fake.now
    await lim.rate_limited(30.0)
    assert await granted(fake, lim, batch=False) == heard
    assert fake.sleeps == []


async def test_after_a_429_the_batch_share_recovers_from_half_over_recovery() -> None:
    lim, fake = limiter(10.0, batch_share=1.0, recovery=10.0, pause=0.0)
    await lim.rate_limited(None)
    heard = fake.now

    async def steady_interval() -> float:
        """The interval between batch slots once on schedule (third grant less second)."""
        times = [await granted(fake, lim, batch=True) for _ in range(3)]
        return times[2] - times[1]

    # Right after the 429: half the batch share (slots 0.2 s apart) ...
    assert await steady_interval() == pytest.approx(0.2, rel=0.03)  # (recovering already)
    # ... halfway through the recovery, three quarters of it ...
    fake.now = heard + 5.0
    assert await steady_interval() == pytest.approx(0.1 / 0.75, rel=0.03)
    # ... and once it is over, the whole share again.
    fake.now = heard + 10.0
    assert await steady_interval() == pytest.approx(0.1)
