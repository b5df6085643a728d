"""The limiters pace by GCRA with a quarter of a slot's tolerance (issue #18, efficiency).

``LocalRateLimiter`` on a fake clock whose sleeps end late, and the Redis script
against a real redis-server with times bracketed by Redis's own clock, so that no
assertion depends on how fast this machine is: a wake-up up to a quarter of a slot late
keeps the schedule, a later one books from its own time (one start, never a burst).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._limits.gcra import LIVE_RESERVE, PACING_TOLERANCE
from stripe_sessions._limits.redis_scripts import SCRIPT
from stripe_sessions.testing import RedisServer
from tests.helpers import examples
from tests.pacing import FakeTime, Recorder, Script, batch_workers, check_account, drive, now_ms

TOL = PACING_TOLERANCE
RES = LIVE_RESERVE


def check_gcra(slots: list[float], interval: float) -> None:
    """For every i < j: slots[j] - slots[i] >= (j - i) x interval - TOL x interval.

    The guarantee for batch items alone; with live calls (which may borrow a slot) see
    :func:`tests.pacing.check_account`.
    """
    for i, a in enumerate(slots):
        for j in range(i + 1, min(len(slots), i + 60)):
            assert slots[j] - a >= (j - i - TOL) * interval - 1e-9, (i, j, slots[j] - a)
    if len(slots) > 60:  # and over the whole run
        assert slots[-1] - slots[0] >= (len(slots) - 1 - TOL) * interval - 1e-9


async def test_late_wake_ups_within_the_tolerance_keep_the_local_schedule() -> None:
    # 8 batch workers at 50/s, every sleep ending up to 5 ms (a quarter of a slot) late:
    # slot k is within 5 ms of t0 - 5 ms + k x 20 ms. Booking from the grant's time
    # (before) lost each wake-up's lateness: about 11% of the rate here.
    rng = random.Random(7)
    fake = FakeTime(late=lambda: rng.uniform(0, TOL / 50))
    lim = Recorder(fake, 50, batch_share=1.0)
    await drive(fake, batch_workers(lim, 8, 60))
    slots = lim.batch
    assert len(slots) == 480
    for k, t in enumerate(slots[1:], 1):
        assert -1e-9 <= t - (slots[0] - TOL / 50 + k / 50) <= TOL / 50 + 1e-9, k
    check_gcra(lim.account, 1 / 50)


async def test_a_stalled_loop_starts_one_batch_item_not_a_burst() -> None:
    fake = FakeTime()
    lim = Recorder(fake, 50, batch_share=1.0)
    tasks = batch_workers(lim, 8, 3)
    for _ in range(3):
        await fake.advance()
    await fake.advance(to=fake.now + 0.5)  # the loop was busy for 25 slots
    await drive(fake, tasks)
    assert len(lim.batch) == 24
    gaps = [b - a for a, b in zip(lim.batch, lim.batch[1:], strict=False)]
    assert min(gaps) >= (1 - TOL) / 50 - 1e-9, gaps
    check_gcra(lim.account, 1 / 50)


async def test_a_live_call_books_at_most_one_slot_behind_a_saturating_batch() -> None:
    # Live calls go first: a batch item takes a slot only when the account has had one
    # free for the live reserve (an eighth of a slot), so the account's next slot is at
    # most 7/8 of a slot ahead, and a live call (none other queued) borrows it and starts
    # at once, even with every sleep ending late and the batch using the whole budget.
    # (Without the burst: booked up to 7/8 of a slot ahead; without the reserve too, up
    # to a whole slot.)
    rng = random.Random(3)
    fake = FakeTime(late=lambda: rng.uniform(0, 0.005))
    lim = Recorder(fake, 50, batch_share=1.0)

    async def live() -> None:
        for _ in range(40):
            await fake.sleep(rng.uniform(0.05, 0.2))
            await lim.acquire(batch=False, timeout=30)

    await drive(fake, [*batch_workers(lim, 8, 60), asyncio.create_task(live())])
    assert len(lim.live_waits) == 40 and max(lim.live_waits) == 0
    check_account(lim.grants, 1 / 50, 1e-9)
    # The batch still made up its own lateness up to the rest of the tolerance: with
    # sleeps up to 2.5 ms late, the batch's slots stay on their 20 ms grid.
    assert len(lim.batch) == 480


async def test_the_batch_keeps_its_pace_with_wake_ups_late_within_the_rest_of_the_tolerance() -> (
    None
):
    # The reserve is taken from the batch's tolerance: sleeps up to (TOL - RES) of a slot
    # late still keep the batch's schedule exactly (no throughput lost to them).
    rng = random.Random(11)
    fake = FakeTime(late=lambda: rng.uniform(0, (TOL - RES) / 50))
    lim = Recorder(fake, 50, batch_share=1.0)
    await drive(fake, batch_workers(lim, 8, 60))
    slots = lim.batch
    for k, t in enumerate(slots[1:], 1):
        grid = slots[0] - TOL / 50 + k / 50
        assert -1e-9 <= t - grid - RES / 50 <= (TOL - RES) / 50 + 1e-9, k
    check_gcra(lim.account, 1 / 50)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(1, 4)),
        st.tuples(st.just("live"), st.integers(1, 3)),
        st.tuples(st.just("429"), st.sampled_from([None, 0.0, 0.3])),
        st.tuples(st.just("stall"), st.floats(0, 1)),
        st.tuples(st.just("tick"), st.integers(1, 5)),
    ),
    max_size=30,
)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(1, 200),
    share=st.sampled_from([1.0, 0.5, 0.2]),
    ops=OPS,
    late=st.sampled_from([0.0, 0.002, 0.05]),
    rnd=st.randoms(use_true_random=False),
)
def test_local_pacing_is_gcra_whatever_happens(
    rate: float, share: float, ops: list[Any], late: float, rnd: random.Random
) -> None:
    # Any mix of batch items, live calls, 429s, stalls and late sleeps: the account's
    # slots never run faster than the rate by more than a quarter of a slot and the one
    # live calls may borrow (and a run ending in a batch slot by no more than an eighth),
    # batch slots never closer than 3/4 of the batch's fastest interval, and no batch
    # slot inside a pause.
    async def main() -> None:
        fake = FakeTime(late=lambda: rnd.uniform(0, late))
        lim = Recorder(fake, rate, batch_share=share, recovery=1.0, pause=0.5)
        tasks: list[asyncio.Task[None]] = []
        pauses: list[tuple[float, float]] = []
        for op, arg in ops:
            if op == "batch":
                tasks += [
                    asyncio.create_task(lim.acquire(batch=True, timeout=30)) for _ in range(arg)
                ]
            elif op == "live":
                tasks += [
                    asyncio.create_task(lim.acquire(batch=False, timeout=30)) for _ in range(arg)
                ]
            elif op == "429":
                pauses.append((fake.now, fake.now + (0.5 if arg is None else arg)))
                await lim.rate_limited(arg)
            elif op == "stall":
                await fake.advance(to=fake.now + arg)
            else:
                for _ in range(arg):
                    await fake.advance()
            await fake.settle()
        while not all(t.done() for t in tasks):
            assert await fake.advance()
        check_account(lim.grants, 1 / rate, 1e-9)
        batch_interval = 1 / (rate * share)
        for a, b in zip(lim.batch, lim.batch[1:], strict=False):
            assert b - a >= (1 - TOL) * batch_interval - 1e-9, (a, b)
        for at in lim.batch:
            assert not any(begin < at < end - 1e-9 for begin, end in pauses), (at, pauses)

    asyncio.run(main())


# --- the Redis script, against a real redis-server ------------------------------------


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


@pytest.mark.parametrize("late_ms", [0.5, 3.0, 4.0, 6.0, 50.0, 10_000.0])
def test_the_script_books_batch_and_account_slots_by_gcra(
    raw: redis.Redis, redis_server: RedisServer, late_ms: float
) -> None:
    # The previous slots passed late_ms ago (of a 20 ms slot: tolerance 5 ms). Each next
    # slot is max(previous, now - 5 ms) + 20 ms, with Redis's "now" somewhere between
    # the TIME read before and after the script: exactly that, on any machine. Up to
    # 5 ms late (a round trip, a late wake-up), the schedule is kept. A batch item
    # takes the account's slot only once it passed by the live reserve (2.5 ms).
    s = Script(raw, redis_server.url, 50, 1.0)
    prev = now_ms(raw) - late_ms
    raw.set(s.keys[0], str(prev))
    raw.set(s.keys[1], str(prev))
    answer, before, after = s.run(batch=True)
    if after - prev < RES * 20:  # within the live reserve: refused, told when to ask
        assert len(answer) == 3
        assert prev + RES * 20 - after <= float(answer[0]) <= prev + RES * 20 - before
        assert s.get(0) == prev  # nothing booked
        return
    if before - prev < RES * 20:  # Redis's now on either side of the reserve: unknown
        return
    assert answer[0] == b"0"  # granted

    def booked(at: float) -> float:
        return max(prev, at - TOL * 20) + 20

    for key in (0, 1):  # (stored to the microsecond, rounded up)
        assert booked(before) <= s.get(key) <= booked(after) + 0.0011, (key, late_ms)
        if after - prev <= TOL * 20:  # lateness within the tolerance: the schedule kept
            assert prev + 20 <= s.get(key) <= prev + 20.0011
    # The answer's last part: the next batch turn, from Redis's now (its own slot, and
    # the account's next slot plus the live reserve).
    turn = max(s.get(1), s.get(0) + RES * 20)
    assert turn - after - 0.0011 <= float(answer[3]) <= turn - before


def test_the_script_books_live_slots_by_gcra(raw: redis.Redis, redis_server: RedisServer) -> None:
    s = Script(raw, redis_server.url, 50, 0.5)
    # Queued live calls: each starts up to one slot (the live burst) before the booked
    # one, and books the slot after it.
    ahead = now_ms(raw) + 100
    raw.set(s.keys[0], str(ahead))
    answer, before, after = s.run(batch=False)
    assert ahead - 20 - after <= float(answer[0]) <= ahead - 20 - before
    assert ahead + 20 <= s.get(0) <= ahead + 20.0011
    # A slot long passed: booked from now less the tolerance.
    raw.set(s.keys[0], str(now_ms(raw) - 5000))
    answer, before, after = s.run(batch=False)
    assert float(answer[0]) == 0
    assert before - TOL * 20 + 20 <= s.get(0) <= after - TOL * 20 + 20.0011


def test_the_script_never_grants_a_batch_slot_before_its_turn(
    raw: redis.Redis, redis_server: RedisServer
) -> None:
    # The tolerance makes up lateness; it never lets a request in early.
    # 5/s: a slot of 200 ms, so a busy machine's delay between two commands (tens of ms)
    # cannot bring the turn set here into the past.
    s = Script(raw, redis_server.url, 5, 1.0)
    raw.set(s.keys[1], str(now_ms(raw) + 350))  # (plausible: within two batch slots)
    answer, _, _ = s.run(batch=True)
    assert float(answer[0]) > 0 and len(answer) == 3
    raw.delete(s.keys[1])
    raw.set(s.keys[0], str(now_ms(raw) + 1000))  # a live call booked the account ahead
    answer, _, _ = s.run(batch=True)
    assert float(answer[0]) > 0 and len(answer) == 3


async def test_a_process_asks_redis_once_per_batch_slot(redis_server: RedisServer) -> None:
    # Eight batch items of one process waiting together: one asks Redis at a time (the
    # others queue in the process), and it asks when Redis said the next turn comes, so
    # a slot costs one round trip, not one per waiting item (before: 3-8 per slot, each
    # also queueing a live call's command behind them). A slow machine asks later, not
    # more often.
    limiter = ss.RedisRateLimiter(
        redis_server.url, rate=100, name="gate", batch_share=1.0, redis_timeout=2.0
    )
    calls = 0
    call = limiter._call

    async def counting(pause: bool, keys: list[str], args: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        return await call(pause, keys, args)

    limiter._call = counting  # type: ignore[method-assign]

    async def worker() -> None:
        for _ in range(10):
            await limiter.acquire(batch=True, timeout=10)

    await asyncio.gather(*(worker() for _ in range(8)))
    await limiter.aclose()
    assert calls <= 80 + 2, calls


async def test_redis_starts_a_live_call_at_once_behind_saturating_batches(
    redis_server: RedisServer,
) -> None:
    # Two processes' worth of batch items (two limiters, 8 items each) take every slot of
    # a 50/s budget; a live call every 40-80 ms (none queued behind another) finds the
    # account's next slot ahead (held by the batches: at most (1 - RES) of a slot, by the
    # live reserve) and borrows it: Redis books it at once. Redis's own arithmetic on its
    # own clock, whatever this machine's speed; the live call's command runs in one
    # MULTI with a TIME and a GET of the account's slot, so the test sees what the
    # script saw. Without the burst: booked up to 7/8 of a slot ahead (a whole slot
    # without the reserve).
    limiters = [
        ss.RedisRateLimiter(
            redis_server.url, rate=50, name="reserve", batch_share=1.0, redis_timeout=2.0
        )
        for _ in range(2)
    ]
    client = redis.asyncio.Redis.from_url(redis_server.url)
    script = client.register_script(SCRIPT)
    done = False

    async def worker(limiter: ss.RedisRateLimiter) -> None:
        while not done:
            await limiter.acquire(batch=True, timeout=10)

    workers = [asyncio.create_task(worker(lim)) for lim in limiters for _ in range(8)]
    waits: list[float] = []
    held: list[float] = []  # how far ahead the account's next slot was (ms)
    rng = random.Random(5)
    try:
        await asyncio.sleep(0.2)  # the batches saturate the budget
        while len(waits) < 30:
            await asyncio.sleep(rng.uniform(0.04, 0.08))
            pipe = client.pipeline(transaction=True)
            pipe.time()
            pipe.get(limiters[0]._keys[0])
            await script(keys=limiters[0]._keys, args=limiters[0]._args(False), client=pipe)
            (seconds, micros), slot, answer = await pipe.execute()
            held.append(float(slot or 0) - (seconds * 1000 + micros / 1000))
            waits.append(float(answer[0]))
    finally:
        done = True
        await asyncio.gather(*workers, return_exceptions=True)
        for lim in limiters:
            await lim.aclose()
        await client.aclose()
    assert max(waits) == 0, waits
    assert max(held) <= (1 - RES) * 20 + 0.0011, held  # the live reserve
    assert sum(h > 0 for h in held) >= 3, held  # the batches did hold the slots
