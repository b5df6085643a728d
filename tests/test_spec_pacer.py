"""Specification of the batch pacer, on a fake clock: what each promise of ``Pacer`` means.

Every time here is the fake clock's, so these read as the rules themselves and no
machine is too slow for them. (The exact-spacing property under any mix of events, late
wake-ups, and 429s of older epochs are tests/test_limiter_pacer.py's.)
"""

from __future__ import annotations

import asyncio

import pytest

from stripe_sessions._batch.pacing import MIN_PACE, Pacer
from stripe_sessions._limits.gcra import MAX_SLEEP
from stripe_sessions._limits.pause import DEFAULT_PAUSE as DEFAULT_RATE_LIMIT_PAUSE
from stripe_sessions._limits.pause import MAX_PAUSE
from tests.pacing import FakeTime

CAP = MAX_PAUSE  # the longest pause a 429 can cause (60 s)


def paced(rate: float | None) -> tuple[Pacer, FakeTime]:
    fake = FakeTime()
    return Pacer(rate, clock=fake.clock, sleep=fake.sleep), fake


async def start(pacer: Pacer) -> float:
    """Take one start, as a batch attempt does; the time it was granted."""
    if not pacer.take_now():
        await pacer.acquire()
    return pacer.started_at


async def starts(pacer: Pacer, fake: FakeTime, n: int) -> list[float]:
    """``n`` starts asked for at once; their grant times, in the order they asked."""
    tasks = [asyncio.create_task(start(pacer)) for _ in range(n)]
    while not all(t.done() for t in tasks):
        assert await fake.advance() or all(t.done() for t in tasks), "a start waits forever"
    return [t.result() for t in tasks]


async def test_the_first_start_is_immediate_and_the_next_ones_one_interval_apart() -> None:
    # GCRA: the first start books from its own time less the tolerance (a quarter of a
    # slot), so the second may come 3/4 of a slot later; from then on, one slot apart.
    pacer, fake = paced(10.0)
    t0 = fake.now
    expected = [t0, t0 + 0.075, t0 + 0.175, t0 + 0.275]
    assert await starts(pacer, fake, 4) == pytest.approx(expected, abs=1e-9)
    assert pacer.started_rate == 10.0


async def test_starts_are_granted_in_the_order_they_asked() -> None:
    pacer, fake = paced(5.0)
    order: list[int] = []

    async def one(i: int) -> None:
        await start(pacer)
        order.append(i)

    tasks = [asyncio.create_task(one(i)) for i in range(6)]
    while not all(t.done() for t in tasks):
        await fake.advance()
    assert order == list(range(6))


async def test_a_long_interval_is_slept_in_slices_of_at_most_max_sleep() -> None:
    pacer, fake = paced(0.25)  # one start every 4 s
    t0 = fake.now
    assert await starts(pacer, fake, 2) == pytest.approx([t0, t0 + 3.0], abs=1e-9)
    assert fake.sleeps and max(fake.sleeps) <= MAX_SLEEP
    assert sum(fake.sleeps) == pytest.approx(3.0)


async def test_unpaced_starts_never_wait() -> None:
    pacer, fake = paced(None)
    t0 = fake.now
    assert [pacer.take_now() for _ in range(100)] == [True] * 100
    assert pacer.started_at == t0 and fake.sleeps == []


@pytest.mark.parametrize(
    ("retry_after", "pause"),
    [
        (None, DEFAULT_RATE_LIMIT_PAUSE),  # Stripe sends none: 1 s
        (3.0, 3.0),
        (0.25, 0.25),
        (0.0, 0.0),
        (10**9, CAP),  # capped
        (-5.0, DEFAULT_RATE_LIMIT_PAUSE),  # nonsense: the default
        (float("nan"), DEFAULT_RATE_LIMIT_PAUSE),
    ],
)
@pytest.mark.parametrize("rate", [10.0, None])
async def test_a_429_pauses_every_start_for_retry_after_or_one_second(
    retry_after: float | None, pause: float, rate: float | None
) -> None:
    pacer, fake = paced(rate)
    t0 = await start(pacer)
    fake.now += 0.05  # the 429 comes back 50 ms later
    heard = fake.now
    pacer.rate_limited(retry_after)
    [resumed] = await starts(pacer, fake, 1)
    booked = t0 + 0.75 / rate if rate else heard  # the turn booked before the 429
    assert resumed == pytest.approx(max(heard + pause, booked), abs=1e-9)


async def test_starts_already_queued_wait_out_the_pause_too() -> None:
    pacer, fake = paced(10.0)
    await start(pacer)
    queued = [asyncio.create_task(start(pacer)) for _ in range(3)]
    await fake.settle()
    heard = fake.now
    pacer.rate_limited(None)
    while not all(t.done() for t in queued):
        await fake.advance()
    times = [t.result() for t in queued]
    assert min(times) >= heard + DEFAULT_RATE_LIMIT_PAUSE - 1e-9
    assert times == pytest.approx([heard + 1.0, heard + 1.2, heard + 1.4], abs=1e-9)  # at 5/s


async def test_a_429_halves_the_pace_and_each_later_success_wins_back_a_twentieth() -> None:
    pacer, _ = paced(100.0)
    pacer.rate_limited(None)
    assert (pacer.rate, pacer.epoch) == (50.0, 1)
    for expected in (55.0, 60.0, 65.0):
        pacer.succeeded(1)
        assert pacer.rate == pytest.approx(expected)
    for _ in range(20):
        pacer.succeeded()  # None: the current epoch
    assert pacer.rate == 100.0  # never above the target


async def test_a_429_of_an_older_epoch_extends_the_pause_but_halves_nothing() -> None:
    pacer, fake = paced(100.0)
    pacer.rate_limited(1.0, 0)
    fake.now += 0.5
    pacer.rate_limited(2.0, 0)  # sent before the halving: same overload
    assert (pacer.rate, pacer.epoch) == (50.0, 1)
    [resumed] = await starts(pacer, fake, 1)
    assert resumed == pytest.approx(fake.now) and resumed >= 1000.0 + 2.5 - 1e-9


async def test_the_pace_never_halves_below_the_floor() -> None:
    # (A target below the floor halves once, to half the target: test_limiter_pacer.py.)
    pacer, _ = paced(4.0)
    for _ in range(10):
        pacer.rate_limited(None)
    assert pacer.rate == MIN_PACE
