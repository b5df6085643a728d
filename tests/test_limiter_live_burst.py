"""Live calls may borrow one slot of the account budget (issue #18, live wait at p99).

A live call starts up to ``LIVE_BURST`` (one) slot before the account's next slot, and
that slot still moves one interval on, so the batches behind it are pushed back and the
long-run rate is unchanged. So a live call behind saturating batches starts at once,
and the second of two live calls arriving together (another process's) waits at most
7/8 of a slot: before, the first waited up to 7/8 of a slot and the second up to 1 7/8.
The cost, exactly: a live call may start together with another start, so any ``n``
account starts span at least ``n - 2.25`` slots (was ``n - 1.25``), while a run of
starts ending in a batch start spans at least ``n - 1.25``, as before: batch starts pay
back what live calls borrowed.

``LocalRateLimiter`` on a fake clock; the Redis script on a real redis-server, either
with Redis's own clock bracketed, or running the script's exact text with its one
``TIME`` read replaced by a time the test gives (a fake clock for Redis's arithmetic).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._limits.gcra import LIVE_RESERVE, PACING_TOLERANCE
from stripe_sessions._limits.redis_scripts import PAUSE_SCRIPT, SCRIPT
from stripe_sessions.testing import RedisServer
from tests.helpers import examples
from tests.pacing import FakeTime, Recorder, Script, batch_workers, check_account, drive, now_ms

TOL = PACING_TOLERANCE
RES = LIVE_RESERVE


# --- LocalRateLimiter, on a fake clock ------------------------------------------------


async def test_two_live_calls_together_behind_saturating_batches_wait_under_a_slot() -> None:
    # The four-process case: batches take every slot, and two live calls (two
    # processes') arrive at the same moment, every 50-200 ms. The first starts at once
    # (it borrows a slot: the batches move back one), the second at the account's next
    # slot, at most 7/8 of a slot ahead. Before: 7/8 and 1 7/8 of a slot.
    rng = random.Random(4)
    fake = FakeTime(late=lambda: rng.uniform(0, 0.005))
    lim = Recorder(fake, 50, batch_share=1.0)

    async def pairs() -> None:
        for _ in range(40):
            await fake.sleep(rng.uniform(0.05, 0.2))
            await asyncio.gather(*(lim.acquire(batch=False, timeout=30) for _ in range(2)))

    await drive(fake, [*batch_workers(lim, 8, 60), asyncio.create_task(pairs())])
    firsts, seconds = lim.live_waits[0::2], lim.live_waits[1::2]
    assert len(firsts) == len(seconds) == 40
    assert max(firsts) == 0, firsts
    assert max(seconds) <= (1 - RES) / 50 + 1e-9, seconds
    assert sum(w > 0 for w in seconds) >= 20  # the batches did hold the slots
    assert len(lim.batch) == 480
    check_account(lim.grants, 1 / 50, 1e-9)


async def test_a_live_call_behind_a_booked_live_slot_is_booked_at_most_one_slot_ahead() -> None:
    # The account's next slot is 7/8 of a slot ahead (a batch just started). A live
    # call starts now, the next at that slot, the third one slot later: one slot apart
    # from then on, and the batch waits behind all of them.
    fake = FakeTime()
    lim = Recorder(fake, 50, batch_share=1.0)
    await lim.acquire(batch=True, timeout=0)  # a batch item takes the first slot
    t0 = fake.now
    lim._account_next = t0 + (1 - RES) / 50
    assert lim._wait(False, t0) == 0
    assert lim._wait(False, t0) == pytest.approx((1 - RES) / 50)
    assert lim._wait(False, t0) == pytest.approx((2 - RES) / 50)
    assert lim._account_next == pytest.approx(t0 + (4 - RES) / 50)
    assert lim._wait(True, t0 + (3 - RES) / 50) > 0  # the batch was moved back


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(1, 4)),
        st.tuples(st.just("live"), st.integers(1, 3)),
        st.tuples(st.just("saturate"), st.integers(1, 30)),
        st.tuples(st.just("429"), st.sampled_from([None, 0.0, 0.3])),
        st.tuples(st.just("wait"), st.floats(0, 0.1)),
        st.tuples(st.just("stall"), st.floats(0, 1)),
    ),
    max_size=30,
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rate=st.floats(5, 200),
    share=st.sampled_from([1.0, 0.5, 0.2]),
    ops=OPS,
    late=st.sampled_from([0.0, 0.002, 0.05]),
    rnd=st.randoms(use_true_random=False),
)
def test_local_live_bursts_are_paid_back_by_the_batches(
    rate: float, share: float, ops: list[Any], late: float, rnd: random.Random
) -> None:
    async def main() -> None:
        fake = FakeTime(late=lambda: rnd.uniform(0, late))
        lim = Recorder(fake, rate, batch_share=share, recovery=1.0, pause=0.5)
        tasks: list[asyncio.Task[None]] = []
        pauses: list[tuple[float, float]] = []
        for op, arg in ops:
            if op in ("batch", "live"):
                tasks += [
                    asyncio.create_task(lim.acquire(batch=op == "batch", timeout=30))
                    for _ in range(arg)
                ]
            elif op == "saturate":  # batch items waiting while the clock runs
                tasks += batch_workers(lim, 4, arg)
                for _ in range(arg):
                    await fake.advance()
            elif op == "429":
                pauses.append((fake.now, fake.now + (0.5 if arg is None else arg)))
                await lim.rate_limited(arg)
            else:
                await fake.advance(to=fake.now + arg)
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


# --- the Redis script, on a real redis-server -----------------------------------------


@pytest.fixture
def raw(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()


def test_the_script_books_a_second_live_call_at_most_one_slot_ahead(
    raw: redis.Redis, redis_server: RedisServer
) -> None:
    # The account's next slot 150 ms ahead (a batch just took the one before it). The
    # first live call starts now; the second at that slot (at most 150 ms, under a slot
    # of 200); the account's next slot moves on by one slot for each. Before: 150 and
    # 350 ms. Redis's own clock, bracketed; at 5/s (200 ms slots) a busy machine's delay
    # between two commands (tens of ms) changes none of it.
    s = Script(raw, redis_server.url, 5, 1.0)
    ahead = now_ms(raw) + 150
    raw.set(s.keys[0], str(ahead))
    answer, _, _ = s.run(batch=False)
    assert float(answer[0]) == 0
    assert ahead + 200 <= s.get(0) <= ahead + 200.0011
    answer, before, after = s.run(batch=False)
    assert max(0.0, ahead - after) <= float(answer[0]) <= max(0.0, ahead - before) <= 150
    assert ahead + 400 <= s.get(0) <= ahead + 400.0011
    answer, before, after = s.run(batch=True)  # the batch waits for the slot after them
    assert len(answer) == 3
    assert ahead + 400 + RES * 200 - after <= float(answer[0]) <= ahead + 400 + RES * 200 - before


async def test_redis_books_the_second_of_two_live_calls_under_a_slot_behind_batches(
    redis_server: RedisServer,
) -> None:
    # Two processes' batch items (two limiters, 8 items each) take every slot of 50/s;
    # every 40-80 ms both limiters make a live call at once. One of each pair starts at
    # once, the other is booked at most 7/8 of a slot ahead: Redis's own arithmetic on
    # its own clock, whatever this machine's speed (pairs are at least two slots apart
    # on Redis's clock). Before: up to 1 7/8 of a slot for the second.
    limiters = [
        ss.RedisRateLimiter(
            redis_server.url, rate=50, name="burst", batch_share=1.0, redis_timeout=2.0
        )
        for _ in range(2)
    ]
    done = False

    async def worker(limiter: ss.RedisRateLimiter) -> None:
        while not done:
            await limiter.acquire(batch=True, timeout=10)

    workers = [asyncio.create_task(worker(lim)) for lim in limiters for _ in range(8)]
    pairs: list[list[float]] = []
    rng = random.Random(6)
    try:
        await asyncio.sleep(0.2)  # the batches saturate the budget
        while len(pairs) < 30:
            await asyncio.sleep(rng.uniform(0.04, 0.08))
            waits = await asyncio.gather(*(lim._ask(False) for lim in limiters))
            assert None not in waits  # Redis answered (else the fallback paced it)
            pairs.append(sorted(w for w in waits if w is not None))
    finally:
        done = True
        await asyncio.gather(*workers, return_exceptions=True)
        for lim in limiters:
            await lim.aclose()
    assert max(first for first, _ in pairs) == 0, pairs
    assert max(second for _, second in pairs) <= (1 - RES) / 50 + 2e-6, pairs
    assert sum(second > 0 for _, second in pairs) >= 3  # the batches did hold the slots


# The scripts' exact text, with Redis's clock replaced by the last two arguments
# (seconds, microseconds): their arithmetic, run by Redis, on a fake clock.
TIME = "local t = redis.call('TIME')"
FAKE_TIME = "local t = {ARGV[#ARGV - 1], ARGV[#ARGV]}"


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[RedisServer]:
    """One redis-server for the module's property test (a fresh name per example)."""
    try:
        server = RedisServer()
    except FileNotFoundError:
        import os  # noqa: PLC0415

        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (.ci/run installs it)")
        pytest.skip("no redis-server binary")
    with server:
        yield server


class FakeClockScript:
    """SCRIPT and PAUSE_SCRIPT of one limiter, run by Redis at the times the test gives."""

    def __init__(self, raw: redis.Redis, url: str, rate: float, share: float) -> None:
        assert SCRIPT.count(TIME) == 1 and PAUSE_SCRIPT.count(TIME) == 1
        self.limiter = ss.RedisRateLimiter(
            url, rate=rate, name=uuid.uuid4().hex, batch_share=share, recovery=1.0, pause=0.5
        )
        self.keys = self.limiter._keys
        self.script = raw.register_script(SCRIPT.replace(TIME, FAKE_TIME))
        self.pause = raw.register_script(PAUSE_SCRIPT.replace(TIME, FAKE_TIME))
        self.now_us = 1_700_000_000_000_000  # microseconds

    def clock(self) -> list[int]:
        return [self.now_us // 1_000_000, self.now_us % 1_000_000]

    def ask(self, batch: bool) -> list[Any]:
        answer: list[Any] = self.script(
            keys=self.keys, args=[*self.limiter._args(batch), *self.clock()]
        )
        assert int(answer[1]) == 0  # nothing the settings cannot explain was ever written
        return answer

    def rate_limited(self, pause_s: float) -> None:
        args = [pause_s * 1000.0, 60_000.0, 1000.0, *self.clock()]
        self.pause(keys=[self.keys[2], self.keys[3]], args=args)


REDIS_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("batch"), st.integers(1, 4)),
        st.tuples(st.just("live"), st.integers(1, 3)),
        st.tuples(st.just("saturate"), st.integers(1, 30)),
        st.tuples(st.just("429"), st.sampled_from([0.0, 0.3, 0.5])),
        st.tuples(st.just("wait"), st.integers(0, 100_000)),  # microseconds
    ),
    max_size=30,
)


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(  # a batch, five live calls at once, then saturating batches: n - 1.16 slots
    rate=30.02815244448115,
    share=1.0,
    ops=[("batch", 1), ("live", 2), ("live", 3), ("saturate", 29)],
    late=0,
    rnd=random.Random(0),
)
@given(
    rate=st.floats(5, 200),
    share=st.sampled_from([1.0, 0.5, 0.2]),
    ops=REDIS_OPS,
    late=st.sampled_from([0, 2_000, 50_000]),
    rnd=st.randoms(use_true_random=False),
)
def test_redis_live_bursts_are_paid_back_by_the_batches(
    shared_redis: RedisServer,
    rate: float,
    share: float,
    ops: list[Any],
    late: int,
    rnd: random.Random,
) -> None:
    # The same guarantee as LocalRateLimiter's, from the script Redis runs: live calls,
    # batch items asking now, batch items waiting for their turns (each waking up to
    # `late` late), 429s and time passing, in any order.
    client = redis.Redis.from_url(shared_redis.url)
    try:
        s = FakeClockScript(client, shared_redis.url, rate, share)
        interval = 1000.0 / rate  # ms
        grants: list[tuple[float, bool, float]] = []
        batches: list[float] = []
        pauses: list[tuple[float, float]] = []

        def now() -> float:
            return s.now_us / 1000.0

        def batch() -> float:
            answer = s.ask(True)
            wait = float(answer[0])
            if wait <= 0:
                grants.append((now(), True, 0.0))
                batches.append(now())
            return wait

        for op, arg in ops:
            if op == "batch":
                for _ in range(arg):
                    batch()
            elif op == "live":
                for _ in range(arg):
                    wait = float(s.ask(False)[0])
                    grants.append((now() + wait, False, wait))
            elif op == "saturate":
                granted = 0
                while granted < arg:
                    wait = batch()
                    granted += wait <= 0
                    ahead = max(wait, 0.0) * 1000 if wait > 0 else 0
                    s.now_us += int(ahead) + 1 + rnd.randint(0, late)
            elif op == "429":
                pauses.append((now(), now() + arg * 1000.0))
                s.rate_limited(arg)
            else:
                s.now_us += arg
        check_account(grants, interval, 0.002)
        batch_interval = interval / share
        for a, b in itertools.pairwise(batches):
            assert b - a >= (1 - TOL) * batch_interval - 0.002, (a, b)
        for at in batches:
            assert not any(begin < at < end - 0.002 for begin, end in pauses), (at, pauses)
    finally:
        client.close()


def test_a_pause_is_stored_to_the_microsecond_never_shorter(shared_redis: RedisServer) -> None:
    # Found by the property test above: PAUSE_SCRIPT stored the pause's end with Lua's
    # tostring (14 digits, 0.1 ms of a time in ms), so a pause could end up to 0.1 ms
    # early and a batch item start inside it. Now rounded up to the microsecond, as SCRIPT
    # stores slots.
    client = redis.Redis.from_url(shared_redis.url)
    try:
        s = FakeClockScript(client, shared_redis.url, 9, 1.0)
        s.now_us = 1_700_000_000_097_224
        s.rate_limited(0.3)
        stored = client.get(s.keys[2])
        assert stored is not None
        end = s.now_us / 1000 + 300
        assert end <= float(stored) <= end + 0.0011, (stored, end)
        s.now_us = 1_700_000_000_397_223  # a microsecond before the end: still paused
        answer = s.ask(True)
        assert float(answer[0]) > 0 and len(answer) == 3
    finally:
        client.close()
