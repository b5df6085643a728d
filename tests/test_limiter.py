"""One rate budget for many processes, through a real redis-server (see conftest).

No assertion here can be broken by a slow machine: a busy machine sends less, never
more. So the tests assert no 429, every item created once, and UPPER bounds on the rate
the slots Redis itself granted (each worker runs the limiter's script with a line that
records every grant: ``tests/limits_loops_support.py``'s RECORDING), checked by
``tests/pacing.py``'s ``check_account``; how close a run gets to the budget (a lower
bound, which a loaded machine can miss) is measured by ``benchmarks/pacing.py``, not here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import time

import pytest
import redis

import stripe_sessions as ss
from stripe_sessions._limits.gcra import LIVE_BURST, PACING_TOLERANCE
from stripe_sessions.testing import FakeStripe, RedisServer
from tests.helpers import PRICING, close_server
from tests.limits_loops_support import RECORDING, grants_of
from tests.pacing import check_account

WORKER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    import stripe_sessions as ss
    from stripe_sessions._limits import redis_loops

    url, redis_url, mode, name, count, share, script = sys.argv[1:8]
    count, share = int(count), float(share)
    redis_loops.SCRIPT = script  # the limiter's script, recording each slot it grants

    async def main():
        # A generous redis_timeout: a machine so busy that Redis answers late must not
        # turn this test of sharing into one of the fallback (pacing alone, R/4 each).
        limiter = (ss.RedisRateLimiter(redis_url, rate=25, name="test", batch_share=share,
                                       redis_timeout=5.0)
                   if mode == "shared" else None)
        async with ss.AsyncClient(api_key="sk_test_123", base_url=url,
                                  rate_limiter=limiter) as client:
            if name.startswith("live"):
                for i in range(count):
                    await client.customer_sessions.create(
                        customer=f"cus_{name}_{i}", components={"buy_button": {"enabled": True}})
                    await asyncio.sleep(0.125)  # live traffic at about 8/s
                print(json.dumps({"ok": count}))
                return
            results = await client.customer_sessions.create_many(
                ({"customer": f"cus_{name}_{i}", "components": {"pricing_table": {"enabled": True}}}
                 for i in range(count)),
                concurrency=8, rate_limit=None if mode == "shared" else 25.0, batch_key=name)
            print(json.dumps({"ok": sum(r.ok for r in results)}))
        if limiter is not None:
            await limiter.aclose()

    asyncio.run(main())
    """
)


#: Redis's clock in the recorded grants: milliseconds with six decimals.
EPS = 2e-6


def granted(server: RedisServer) -> list[tuple[float, bool, float]]:
    """The slots Redis granted budget "test": (start s, batch?, booked wait s)."""
    client = redis.Redis.from_url(server.url)
    try:
        return grants_of(client, "test")
    finally:
        client.close()


def start(
    fake: FakeStripe, redis: RedisServer, mode: str, name: str, count: int, share: float
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-c",
            WORKER,
            fake.url,
            redis.url,
            mode,
            name,
            str(count),
            str(share),
            RECORDING,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str]) -> dict[str, object]:
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return result


def test_four_processes_share_stripes_test_mode_budget(redis_server: RedisServer) -> None:
    with FakeStripe.running(rate_limit=25) as fake:
        procs = [start(fake, redis_server, "shared", f"p{i}", 200, 1.0) for i in range(4)]
        results = [finish(p) for p in procs]
        assert [r["ok"] for r in results] == [200] * 4
        assert not [r for r in fake.requests if r.status == 429]
        assert fake.created == 800
        assert len(set(fake.session_keys)) == 800  # every item created exactly once
        grants = granted(redis_server)
        assert len(grants) == 800  # each create took one slot Redis granted
        check_account(grants, 1 / 25, EPS)  # never faster than 25/s (how close: benchmarks/)


def test_the_same_run_without_sharing_meets_429s(redis_server: RedisServer) -> None:
    # The control: each process paced at 25/s on its own sends 4x the budget.
    with FakeStripe.running(rate_limit=25) as fake:
        procs = [start(fake, redis_server, "local", f"p{i}", 100, 1.0) for i in range(4)]
        for p in procs:
            finish(p)
        assert len([r for r in fake.requests if r.status == 429]) >= 4  # (20-40 seen)
        assert len(set(fake.session_keys)) == fake.created == 400


def test_live_traffic_goes_first(redis_server: RedisServer) -> None:
    with FakeStripe.running(rate_limit=25) as fake:
        batches = [start(fake, redis_server, "shared", f"b{i}", 90, 0.5) for i in range(2)]
        time.sleep(2.0)  # the batches saturate their share (12.5/s)
        live = start(fake, redis_server, "shared", "live", 50, 0.5)
        results = [finish(p) for p in (live, *batches)]
        assert [r["ok"] for r in results] == [50, 90, 90]
        grants = granted(redis_server)
        assert len(grants) == 50 + 180  # each create took one slot Redis granted
        check_account(grants, 1 / 25, EPS)  # the account: never faster than 25/s
        # No queue behind the batches: a batch item takes an account slot only when one
        # is free now, so Redis books each live call at most one slot (1/25 s) ahead,
        # however slow this machine (the wait Redis booked, not the time it took).
        booked = [wait for _, batch, wait in grants if not batch]
        assert len(booked) == 50 and max(booked) <= 1 / 25 + EPS, booked
        batch_grants = [g for g in grants if g[1]]  # the batches keep to their share: 12.5/s
        check_account(batch_grants, 1 / 12.5, EPS)
        assert not [r for r in fake.requests if r.status == 429]


async def test_redis_down_mid_batch_falls_back_warns_once_and_duplicates_nothing(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # This test is about an outage (refused and closed connections fail at once), not
    # slowness: a generous timeout keeps a busy CI machine's slow answer from counting
    # as a second failure (seen once: "Timeout reading" 0.25 s before the outage).
    limiter = ss.RedisRateLimiter(
        redis_server.url,
        rate=25,
        name="faults",
        batch_share=1.0,
        processes=4,
        redis_timeout=2.0,
    )
    caplog.set_level(logging.WARNING, logger="stripe_sessions")
    async with FakeStripe() as fake:
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, rate_limiter=limiter
        ) as client:

            async def outage() -> tuple[float, float]:
                await asyncio.sleep(1.0)
                redis_server.stop()
                down = time.monotonic()
                await asyncio.sleep(2.0)
                redis_server.start()
                return down, time.monotonic()

            task = asyncio.create_task(outage())
            results = await client.customer_sessions.create_many(
                ({"customer": f"cus_{i}", "components": PRICING} for i in range(75)),
                rate_limit=None,
                batch_key="faults",
            )
            down, up = await task
        await limiter.aclose()
    assert all(r.ok for r in results)
    assert len(set(fake.session_keys)) == fake.created == 75
    failed = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failed) == 1, [r.getMessage() for r in caplog.records]
    assert "****" not in failed[0].getMessage() or "@" not in redis_server.url
    # While Redis was down: at most the fallback's 25/4 = 6.25 per second (+1 slot).
    during = [r.at for r in fake.requests if down + 0.3 < r.at < up - 0.1]
    window = (up - 0.1) - (down + 0.3)
    assert len(during) <= 6.25 * window + 2, (len(during), window)
    assert len(during) >= 1  # it went on, in-process


def test_redis_limiter_checks_its_arguments_and_hides_the_password() -> None:
    limiter = ss.RedisRateLimiter("redis://:hunter2@127.0.0.1:6379/0", rate=25)
    assert "hunter2" not in repr(limiter)
    for kwargs, param in [
        ({"url": "http://x", "rate": 25}, "url"),
        ({"url": "redis://x", "rate": 0}, "rate"),
        ({"url": "redis://x", "rate": 25, "batch_share": 1.5}, "batch_share"),
        ({"url": "redis://x", "rate": 25, "processes": 0}, "processes"),
    ]:
        with pytest.raises(ss.ValidationError) as info:
            ss.RedisRateLimiter(**kwargs)  # type: ignore[arg-type]
        assert info.value.param == param
    with pytest.raises(ss.ValidationError, match="rate_limiter"):
        ss.AsyncClient(api_key="sk_test_123", rate_limiter=object())  # type: ignore[arg-type]


async def test_a_429_anywhere_pauses_batches_everywhere(redis_server: RedisServer) -> None:
    first = ss.RedisRateLimiter(redis_server.url, rate=50, name="pause", batch_share=1.0)
    second = ss.RedisRateLimiter(redis_server.url, rate=50, name="pause", batch_share=1.0)
    t0 = time.monotonic()
    await first.rate_limited(None)  # no Retry-After, as Stripe: the default 1 s pause
    wait = await second._ask(True)  # Redis: the other process's batch waits the pause
    assert wait is not None and 1.0 - (time.monotonic() - t0) - 0.001 <= wait <= 1.001, wait
    await second.acquire(batch=True, timeout=10)
    assert time.monotonic() - t0 >= 0.99
    live = await second._ask(False)  # live traffic is not paused: at most a slot away
    assert live is not None and live <= 1 / 50 + 1e-6
    await first.aclose()
    await second.aclose()


@pytest.mark.timing
async def test_a_redis_that_never_answers_costs_at_most_its_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A hostile "Redis": accepts connections and never says a word.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    url = f"redis://:s3cret-redis-pw@127.0.0.1:{port}/0"
    limiter = ss.RedisRateLimiter(url, rate=10, name="silent", redis_timeout=0.2)
    caplog.set_level(logging.WARNING, logger="stripe_sessions")
    # Without the timeout these would wait forever; the bounds are 25x what they take
    # (0.2 s), so that only a hang, not a busy machine, fails them.
    t0 = time.monotonic()
    await limiter.acquire(batch=False, timeout=5)  # falls back, takes a local slot
    assert time.monotonic() - t0 < 5.0
    await limiter.acquire(batch=False, timeout=0.05)  # within the call's own timeout
    assert time.monotonic() - t0 < 6.0
    await limiter.aclose()
    await close_server(server)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "failed" in logged and "s3cret-redis-pw" not in logged
    assert len([r for r in caplog.records if "failed" in r.getMessage()]) == 1


def test_the_sync_client_takes_a_shared_limiter(
    redis_server: RedisServer, fake_stripe: FakeStripe
) -> None:
    limiter = ss.RedisRateLimiter(redis_server.url, rate=20, name="sync")
    with ss.Client(api_key="sk_test_123", base_url=fake_stripe.url, rate_limiter=limiter) as client:
        t0 = time.monotonic()
        for i in range(5):
            client.customer_sessions.create(customer=f"cus_{i}", components=PRICING)
        # Paced at 20/s: 5 starts span at least 5 - 2.25 slots (the first two may start
        # together: a live call borrows a slot, LIVE_BURST). Was 4 slots, then 3.75.
        assert time.monotonic() - t0 >= (4 - PACING_TOLERANCE - LIVE_BURST) / 20 * 0.9
        copy = client.with_options(stripe_account="acct_1")
        copy.customer_sessions.create(customer="cus_x", components=PRICING)
    assert fake_stripe.created == 6


async def test_after_a_429_the_batch_share_recovers_gradually(redis_server: RedisServer) -> None:
    # The batch interval Redis books, bracketed by Redis's own clock (TIME before and
    # after the grant), so that the assertion holds exactly on any machine: the share
    # is halved by a 429 and grows back linearly over `recovery`.
    limiter = ss.RedisRateLimiter(
        redis_server.url, rate=50, name="recovery", batch_share=1.0, recovery=1.0
    )
    raw = redis.Redis.from_url(redis_server.url)
    batch_key, last_key = limiter._keys[1], limiter._keys[3]

    def now_ms() -> float:
        seconds, micros = raw.time()
        return float(seconds * 1000 + micros / 1000)

    def interval(at: float) -> float:  # the batch interval at Redis time `at` (ms)
        last = raw.get(last_key)
        since = at - float(last) if last is not None else 1e18
        return 20 / min(1.0, 0.5 + 0.5 * since / 1000)

    async def check_grant() -> float:
        raw.delete(batch_key)  # the next slot books from the grant's time less the tolerance
        before = now_ms()
        await limiter.acquire(batch=True, timeout=10)
        after = now_ms()
        booked = float(raw.get(batch_key) or "nan")

        def expect(at: float) -> float:
            return at + (1 - PACING_TOLERANCE) * interval(at)

        # (increasing in the grant's time; stored to the microsecond, rounded up)
        assert expect(before) - 1e-6 <= booked <= expect(after) + 0.0011, (before, after)
        return interval(before)

    await limiter.acquire(batch=True, timeout=10)
    assert await check_grant() == 20  # 50/s
    await limiter.rate_limited(0.0)  # a 429 (with a zero Retry-After: no pause)
    slowed = await check_grant()  # right after: from half the pace (40 ms), recovering
    assert 20 < slowed <= 40 or now_ms() - float(raw.get(last_key) or 0) >= 1000, slowed
    await asyncio.sleep(1.0)
    assert await check_grant() == 20  # recovered
    raw.close()
    await limiter.aclose()
