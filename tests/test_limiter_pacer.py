"""The batch pacer (issue #18, item 1): exact spacing after a 429, on a fake clock.

A start is granted by the time read when it is made, so a loop that wakes late starts
one request then, never the few whose turns passed meanwhile (the burst of six within
4 ms that was seen after a 429's pause).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions import _batch_run, _retry
from stripe_sessions._batch import DEFAULT_RATE_LIMIT_PAUSE, Pacer
from stripe_sessions._limiter import MAX_SLEEP
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


@pytest.fixture(autouse=True)
def real_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real cap on a 429's pause (60 s), not the suite's fast one."""
    monkeypatch.setattr(_retry, "MAX_RETRY_AFTER", 60.0)


class FakeTime:
    """A clock that moves only when every task waits on it (or when a test stalls it)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + seconds, next(self._seq), future))
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


class Starter:
    """``n`` workers each starting ``per_worker`` requests through one pacer."""

    def __init__(self, pacer: Pacer, fake: FakeTime) -> None:
        self.pacer = pacer
        self.fake = fake
        self.starts: list[tuple[float, float | None, int]] = []  # (time, rate then, epoch)

    async def start_one(self) -> int:
        if not self.pacer.take_now():
            await self.pacer.acquire()
        assert self.pacer.started_at == self.fake.now
        self.starts.append((self.fake.now, self.pacer.rate, self.pacer.epoch))
        return self.pacer.epoch


def check_spacing(starts: list[tuple[float, float | None, int]]) -> None:
    """No two starts closer than the pace in force at the first of them."""
    for (a, rate, _), (b, _, _) in itertools.pairwise(starts):
        if rate:
            assert b - a >= 1 / rate - 1e-9, (a, b, rate)


async def test_a_late_wake_up_after_a_429_starts_one_request_not_a_burst() -> None:
    # The seen case: concurrency 8 at 100/s, one 429, and the loop busy for 150 ms just
    # as the batch resumes. Before: six starts within 4 ms. Now: 20 ms apart, always.
    fake = FakeTime()
    pacer = Pacer(100.0, clock=fake.clock, sleep=fake.sleep)
    run = Starter(pacer, fake)
    first = await run.start_one()
    waiters = [asyncio.create_task(run.start_one()) for _ in range(7)]
    await fake.settle()
    pacer.rate_limited(None, first)  # the first request's 429 (no Retry-After)
    assert pacer.rate == 50.0
    pause_end = fake.now + DEFAULT_RATE_LIMIT_PAUSE
    while len(run.starts) < 2:
        await fake.advance()
    assert run.starts[1][0] == pytest.approx(pause_end)  # nothing starts in the pause
    await fake.advance(to=fake.now + 0.150)  # the loop was busy: every turn passed
    while not all(w.done() for w in waiters):
        await fake.advance()
    times = [t for t, _, _ in run.starts[1:]]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.020 - 1e-9, gaps  # half the pace, however late the loop woke
    assert times[1] == pytest.approx(pause_end + 0.150)  # one start at the late wake-up
    check_spacing(run.starts)
    assert max(fake.sleeps) <= MAX_SLEEP  # the 1 s pause slept in slices, re-checked


async def test_429s_of_requests_sent_before_the_halving_halve_the_pace_once() -> None:
    fake = FakeTime()
    pacer = Pacer(40.0, clock=fake.clock, sleep=fake.sleep)
    run = Starter(pacer, fake)
    epochs = [await run.start_one()]
    tasks = [asyncio.create_task(run.start_one()) for _ in range(3)]
    while not all(t.done() for t in tasks):
        await fake.advance()
    epochs += [t.result() for t in tasks]
    assert set(epochs) == {0}
    for epoch in epochs:  # four requests in flight together, four 429s
        pacer.rate_limited(0.5, epoch)
    assert pacer.rate == 20.0 and pacer.epoch == 1
    for epoch in epochs:  # successes of requests sent at the old pace: no recovery
        pacer.succeeded(epoch)
    assert pacer.rate == 20.0
    pacer.succeeded(pacer.epoch)  # one sent at the new pace: a twentieth of the target back
    assert pacer.rate == 22.0
    later = asyncio.create_task(run.start_one())
    while not later.done():
        await fake.advance()
    assert later.result() == 1
    assert run.starts[-1][0] >= 1000.0 + 3 / 40 + 0.5 - 1e-9  # after the pause


async def test_a_429_below_the_floor_never_speeds_the_pace_up() -> None:
    pacer = Pacer(0.2)
    pacer.rate_limited(0.0)
    assert pacer.rate == pytest.approx(0.1)  # half, not raised to the 0.5/s floor
    pacer.rate_limited(float("nan"))  # a hostile Retry-After: the default pause
    pacer.rate_limited(-5.0)
    assert pacer.rate == pytest.approx(0.1)  # (the same epoch: halved once)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("start"), st.integers(1, 4)),
        st.tuples(st.just("429"), st.one_of(st.none(), st.floats(0, 5))),
        st.tuples(st.just("ok"), st.integers(0, 3)),
        st.tuples(st.just("stall"), st.floats(0, 2)),
        st.tuples(st.just("tick"), st.integers(1, 5)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rate=st.one_of(st.none(), st.floats(0.5, 500)), ops=OPS)
def test_pacing_is_exact_whatever_happens(rate: float | None, ops: list[Any]) -> None:
    # Any mix of concurrent starts, 429s (any Retry-After), successes and stalls of the
    # loop: no two starts closer than the pace in force, none inside a pause, no sleep
    # longer than a slice, and the pace never above the target.
    async def main() -> None:
        fake = FakeTime()
        pacer = Pacer(rate, clock=fake.clock, sleep=fake.sleep)
        run = Starter(pacer, fake)
        tasks: list[asyncio.Task[int]] = []
        pauses: list[tuple[float, float]] = []
        for op, arg in ops:
            if op == "start":
                tasks += [asyncio.create_task(run.start_one()) for _ in range(arg)]
                await fake.settle()
            elif op == "429":
                end = fake.now + min(
                    DEFAULT_RATE_LIMIT_PAUSE if arg is None else arg, _retry.MAX_RETRY_AFTER
                )
                pauses.append((fake.now, end))
                pacer.rate_limited(arg, pacer.epoch if arg is None else pacer.epoch - 1)
            elif op == "ok":
                pacer.succeeded(pacer.epoch - arg)
            elif op == "stall":
                await fake.advance(to=fake.now + arg)
            else:
                for _ in range(arg):
                    await fake.advance()
            if rate is not None:
                assert pacer.rate is not None and 0 < pacer.rate <= rate
        while not all(t.done() for t in tasks):
            assert await fake.advance()
        check_spacing(run.starts)
        for at, _, _ in run.starts:
            assert not any(begin < at < end - 1e-9 for begin, end in pauses), (at, pauses)
        assert all(s <= MAX_SLEEP for s in fake.sleeps)

    asyncio.run(main())


async def test_the_batch_restarts_at_half_its_pace_after_a_429_however_late_it_wakes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # End to end against the fake: one 429, concurrency 8, 100/s, and a caller whose
    # on_progress holds the loop for 150 ms as the first result after the pause comes
    # in (a slow first conversion, a GC pause). Every start the batch's pacer granted is
    # recorded with the time it granted it: none closer than the pace then in force.
    grants: list[tuple[float, float | None]] = []

    class Recording(Pacer):
        def take_now(self) -> bool:
            rate = self.rate
            if super().take_now():
                grants.append((self.started_at, rate))
                return True
            return False

        async def acquire(self) -> None:
            await super().acquire()
            grants.append((self.started_at, self._granted_rate))

        def _interval(self) -> float:
            self._granted_rate = self.rate
            return super()._interval()

    monkeypatch.setattr(_batch_run, "Pacer", Recording)
    stalled: list[float] = []

    def busy(progress: ss.BatchProgress) -> None:
        if not stalled:
            stalled.append(time.monotonic())
            time.sleep(0.15)

    async with FakeStripe() as fake, ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        fake.fail_next(429)
        results = await c.customer_sessions.create_many(
            ({"customer": f"cus_{i}", "components": PRICING} for i in range(30)),
            concurrency=8,
            rate_limit=100.0,
            on_progress=busy,
        )
    assert all(r.ok for r in results) and fake.created == 30
    assert fake.requests[0].status == 429
    assert len(grants) == 31
    for (a, rate), (b, _) in itertools.pairwise(grants):
        assert rate is not None and b - a >= 1 / rate - 1e-9, (a, b, rate)
    resumed = [(t, rate) for t, rate in grants if t >= fake.requests[0].at + 0.9]
    # Restarted at half the pace (the busy loop delayed a start, it did not bunch them),
    # then recovering, a twentieth of the target per success, back to 100/s.
    assert resumed[0][1] == 50.0 and resumed[1][0] - resumed[0][0] >= 0.020
    rates = [rate for _, rate in resumed]
    assert rates == sorted(rates) and rates[-1] == 100.0, rates
