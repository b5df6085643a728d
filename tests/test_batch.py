"""Batch creation against the fake with seeded faults: nothing lost, nothing duplicated.

The suite runs twice, on AsyncClient and on the generated sync Client (``kind``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._batch import engine as _batch_run
from stripe_sessions._batch.engine import WORKER_NAME, YIELD_EVERY
from stripe_sessions._batch.pacing import Pacer
from stripe_sessions._batch.reader import READ_AHEAD
from stripe_sessions.testing import FakeStripe, FaultMix
from tests.helpers import PRICING, Api, items, run_script
from tests.pacing import check_spacing

MIX = FaultMix(
    server_error=0.10,
    reset_before=0.015,
    reset_after=0.015,
    conflict=0.02,
    lock_timeout=0.02,
    rate_limit=0.02,
)


async def test_thousand_items_with_faults_lose_and_duplicate_nothing(kind: str) -> None:
    async with FakeStripe(faults=MIX, seed=7) as fake, Api(kind, fake) as api:
        results = await api.call(
            "create_many", items(1000), concurrency=32, rate_limit=None, batch_key="batch-a"
        )
        assert [r.index for r in results] == list(range(1000))
        assert all((r.session is None) != (r.error is None) for r in results)
        faults = {r.fault for r in fake.requests if r.fault}
        assert {"500", "502", "503", "409", "429", "reset_before", "reset_after"} <= faults
        keys = [k for k in fake.session_keys]
        assert len(keys) == len(set(keys)), "a key created two sessions"
        ok = [r for r in results if r.ok]
        assert {r.idempotency_key for r in ok} <= set(keys)
        assert len(ok) >= 990
        for r in results:
            assert r.idempotency_key == f"batch-a-{r.index}"
            if r.ok:
                assert r.session is not None
                assert r.session.customer == f"cus_{r.index}"
        assert sum(r.attempts for r in results) > 1000  # faults were retried

        created = fake.created
        again = await api.call(
            "create_many", items(1000), concurrency=32, rate_limit=None, batch_key="batch-a"
        )
        assert fake.created - created <= len([r for r in results if not r.ok])
        for first, second in zip(results, again, strict=True):
            if first.ok and second.ok:
                assert first.session is not None and second.session is not None
                assert second.session.client_secret == first.session.client_secret


async def test_rerun_with_same_batch_key_creates_nothing(api: Api) -> None:
    fake = api.fake
    first = await api.call("create_many", items(40), rate_limit=None, batch_key="k")
    assert fake.created == 40
    second = await api.call("create_many", items(40), rate_limit=None, batch_key="k")
    assert fake.created == 40
    assert all(r.session is not None and r.session.idempotent_replayed for r in second)
    assert [r.session.client_secret for r in first if r.session] == [
        r.session.client_secret for r in second if r.session
    ]


async def test_random_batch_keys_differ(api: Api) -> None:
    fake = api.fake
    a = await api.call("create_many", items(3), rate_limit=None)
    b = await api.call("create_many", items(3), rate_limit=None)
    assert a[0].idempotency_key != b[0].idempotency_key
    assert fake.created == 6


async def test_bad_item_is_its_own_error_and_is_not_sent(api: Api) -> None:
    fake = api.fake
    batch: list[Any] = list(items(5))
    batch[2] = {"customer": "cus_2", "components": {"pricing_table": {"enabled": "yes"}}}
    batch[3] = {"customer": "cus_3", "components": {"pricing_table": {"enabled": True}}, "x": 1}
    batch[4] = 42
    results = await api.call("create_many", batch, rate_limit=None)
    assert [r.ok for r in results] == [True, True, False, False, False]
    assert isinstance(results[2].error, ss.ValidationError)
    assert results[2].error.param == "components.pricing_table.enabled"
    assert results[3].error is not None and results[3].error.param == "x"
    assert results[4].error is not None and "CreateParams" in str(results[4].error)
    assert results[2].attempts == 0
    assert fake.created == 2
    assert len(fake.requests) == 2


async def test_typed_create_params_are_accepted(api: Api) -> None:
    fake = api.fake
    params = [
        ss.CreateParams(
            customer="cus_t", components=ss.Components(buy_button=ss.BuyButton(enabled=True))
        )
    ]
    [result] = await api.call("create_many", params, rate_limit=None)
    assert result.ok
    assert fake.requests[0].form == {
        "components": {"buy_button": {"enabled": "true"}},
        "customer": "cus_t",
    }


async def test_fail_fast_raises_the_first_error(api: Api) -> None:
    fake = api.fake
    fake.fail_next(400)
    with pytest.raises(ss.InvalidRequestError):
        await api.call("create_many", items(50), concurrency=1, rate_limit=None, fail_fast=True)
    assert len(fake.requests) < 50


async def test_a_final_failure_is_a_result_not_an_exception(api: Api) -> None:
    fake = api.fake
    fake.fail_next(500, times=3)
    results = await api.call("create_many", items(1), rate_limit=None, max_retries=2)
    assert not results[0].ok
    assert isinstance(results[0].error, ss.APIError)
    assert results[0].attempts == 3
    assert results[0].request_id == fake.requests[-1].request_id
    assert results[0].error.idempotency_key == results[0].idempotency_key


async def test_rate_limit_429_pauses_and_is_retried(api: Api) -> None:
    fake = api.fake
    fake.fail_next(429, times=3)
    results = await api.call("create_many", items(3), concurrency=3, rate_limit=None)
    assert all(r.ok for r in results)
    assert fake.created == 3


class Grants:
    """Every start a batch's pacer granted (time, pace, 0) and when it heard of a 429."""

    def __init__(self) -> None:
        self.starts: list[tuple[float, float | None, int]] = []
        self.limited: list[float] = []


@pytest.fixture
def grants(monkeypatch: pytest.MonkeyPatch) -> Grants:
    """Batches record their pacer's grants, by the pacer's own clock."""
    record = Grants()

    class Recording(Pacer):
        def take_now(self) -> bool:
            if super().take_now():
                record.starts.append((self.started_at, self.started_rate, 0))
                return True
            return False

        async def acquire(self) -> None:
            await super().acquire()
            record.starts.append((self.started_at, self.started_rate, 0))

        def rate_limited(self, retry_after: float | None, epoch: int | None = None) -> None:
            record.limited.append(self._clock())
            super().rate_limited(retry_after, epoch)

    monkeypatch.setattr(_batch_run, "Pacer", Recording)
    return record


async def test_rate_limiter_holds_the_target_rate(api: Api, grants: Grants) -> None:
    # 161 starts at 40/s. The pacer never granted faster than 40/s (beyond a quarter
    # slot's tolerance, by its own clock): an upper bound only, which a slow machine
    # cannot break (how close to 40/s a batch gets is benchmarks/pacing.py's to
    # measure). Not checked on the server's arrival times: a busy machine can bunch
    # requests granted apart.
    results = await api.call("create_many", items(161), concurrency=16, rate_limit=40.0)
    assert all(r.ok for r in results)
    assert api.fake.created == len(set(api.fake.session_keys)) == 161
    assert len(grants.starts) == 161 and {rate for _, rate, _ in grants.starts} == {40.0}
    check_spacing(grants.starts)


@pytest.mark.usefixtures("real_pauses")  # the real 1 s pause, not the suite's fast one
async def test_rate_limit_429_pauses_and_slows_the_whole_batch(api: Api, grants: Grants) -> None:
    # No Retry-After (Stripe sends none): the batch pauses DEFAULT_PAUSE, 1 s.
    # By the pacer's own clock, so that a busy machine cannot fail it: nothing starts
    # from the moment the batch heard of the 429 until a second later, then the pace is
    # halved (50/s, not 100/s) and recovers from there, never faster than allowed.
    api.fake.fail_next(429)  # a rate_limit 429 for the first request
    results = await api.call("create_many", items(30), concurrency=8, rate_limit=100.0)
    assert all(r.ok for r in results)
    assert api.fake.created == len(set(api.fake.session_keys)) == 30
    assert api.fake.requests[0].fault == "429"
    assert len(grants.limited) == 1 and len(grants.starts) == 31
    heard = grants.limited[0]
    assert not [t for t, _, _ in grants.starts if heard < t < heard + 1.0 - 1e-9]
    resumed = [(t, rate) for t, rate, _ in grants.starts if t >= heard + 1.0 - 1e-9]
    assert resumed and resumed[0][1] == 50.0
    check_spacing(grants.starts)


async def test_progress_is_reported_per_item(api: Api) -> None:
    fake = api.fake
    seen: list[ss.BatchProgress] = []
    fake.fail_next(400)
    await api.call(
        "create_many", list(items(10)), concurrency=1, rate_limit=None, on_progress=seen.append
    )
    assert [p.done for p in seen] == list(range(1, 11))
    assert all(p.total == 10 for p in seen)
    assert seen[-1].succeeded == 9 and seen[-1].failed == 1


@pytest.mark.parametrize("concurrency", [1, 4])
async def test_an_on_progress_that_raises_ends_create_many_with_its_error(
    api: Api, concurrency: int
) -> None:
    # create_many counts each result in the worker that made it: what the callback
    # raises there still ends the whole batch, with the batch's key, and sends no more.
    class Stop(Exception):
        pass

    def stop_at_three(p: ss.BatchProgress) -> None:
        if p.done == 3:
            raise Stop("enough")

    with pytest.raises(Stop) as raised:
        await api.call(
            "create_many",
            items(200),
            concurrency=concurrency,
            rate_limit=None,
            on_progress=stop_at_three,
            batch_key="stopped",
        )
    assert getattr(raised.value, "batch_key", None) == "stopped"
    # Items are taken in order: only the three counted and those in flight with them
    # were sent (a request cut in flight may reach the fake later, never a new one).
    sent = {int(str(r.idempotency_key).rsplit("-", 1)[1]) for r in api.fake.requests}
    assert {0, 1, 2} <= sent and max(sent) < 3 + 2 * concurrency


async def test_items_that_fail_before_any_await_still_give_the_loop_turns(
    client: ss.AsyncClient,
) -> None:
    # Every item is invalid (no request, no await): create_many's workers still yield
    # to the loop every YIELD_EVERY results, so other tasks (a close, a Ctrl-C, the
    # batch's own end) run meanwhile; holding the loop for the whole input hung a
    # close called from on_progress.
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    count = 100 * YIELD_EVERY
    bad = [{"customer": "cus_1", "components": {}}] * count
    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        before = ticks
        results = await client.customer_sessions.create_many(bad, concurrency=1, rate_limit=None)
        during = ticks - before
    finally:
        ticking.cancel()
    assert len(results) == count and not any(r.ok for r in results)
    assert during >= count // YIELD_EVERY // 2


async def test_a_stream_runs_once_collected_or_iterated(client: ss.AsyncClient) -> None:
    stream = client.customer_sessions.stream_many(items(5), rate_limit=None)
    results = await stream.collect()
    assert sorted(r.index for r in results) == list(range(5)) and all(r.ok for r in results)
    assert [r async for r in stream] == []  # its results were all collected
    with pytest.raises(RuntimeError, match="runs once"):
        await stream.collect()
    iterated = client.customer_sessions.stream_many(items(5), rate_limit=None)
    async with contextlib.aclosing(iterated):
        first = await iterated.__anext__()
        assert first.ok
        with pytest.raises(RuntimeError, match="runs once"):
            await iterated.collect()


async def test_progress_total_is_none_for_a_generator(api: Api) -> None:
    seen: list[ss.BatchProgress] = []
    await api.call("create_many", items(2), rate_limit=None, on_progress=seen.append)
    assert seen[-1].total is None and seen[-1].done == 2


async def test_stream_many_yields_all_with_indexes(api: Api) -> None:
    got = await api.call("stream_many", items(30), rate_limit=None)
    assert sorted(r.index for r in got) == list(range(30))
    assert api.fake.created == 30


async def test_stream_many_accepts_an_async_iterable(api: Api) -> None:
    async def source() -> AsyncIterator[dict[str, Any]]:
        for item in items(12):
            await asyncio.sleep(0)
            yield item

    got = await api.call("stream_many", source(), rate_limit=None)
    assert sorted(r.index for r in got) == list(range(12))


async def test_stream_many_reads_input_lazily(api: Api) -> None:
    read = 0

    def counting() -> Iterator[dict[str, Any]]:
        nonlocal read
        for item in items(10_000):
            read += 1
            yield item

    stream = api.client.customer_sessions.stream_many(counting(), concurrency=4, rate_limit=None)
    if api.kind == "async":
        async with contextlib.aclosing(stream):
            async for r in stream:
                assert r.ok
                break
    else:

        def first() -> None:
            with contextlib.closing(stream):
                for r in stream:
                    assert r.ok
                    break

        await asyncio.to_thread(first)
    # 2 x concurrency items hold a slot, the input thread reads at most READ_AHEAD more.
    assert read <= 4 * 2 + READ_AHEAD + 1, read
    assert api.fake.created <= 4 * 2 + 1


async def test_cancelling_a_batch_leaves_nothing_pending() -> None:
    async with FakeStripe(latency=0.05) as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            task = asyncio.create_task(
                client.customer_sessions.create_many(items(1000), concurrency=8, rate_limit=None)
            )
            while fake.created < 20:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await asyncio.sleep(0)
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            assert [t for t in others if "stripe_sessions" in repr(t.get_coro())] == []
            created = fake.created
            assert created < 1000
            # The client is still usable after the cancellation.
            again = await client.customer_sessions.create_many(items(2), rate_limit=None)
            assert all(r.ok for r in again)


def _workers(loop: asyncio.AbstractEventLoop | None = None) -> list[asyncio.Task[Any]]:
    tasks = asyncio.all_tasks(loop)
    return [t for t in tasks if t.get_name().startswith(WORKER_NAME)]


def test_sync_ctrl_c_cancels_a_batch_and_leaves_the_client_usable() -> None:
    # The one Ctrl-C-a-sync-batch test: a real SIGINT in a fresh interpreter. The
    # KeyboardInterrupt carries the batch's key (attribute and note, on every Python),
    # nothing of the batch is left running or sending, and the batch run again with
    # that key finishes it, creating nothing twice. No clock: the batch cannot finish
    # before the signal (1000 items held 50 ms each, 8 at a time).
    out = run_script(
        """
        items = lambda: ({"customer": f"cus_{i}", "components": P} for i in range(1000))
        with FakeStripe.running(latency=0.05) as fake:
            with ss.Client(api_key=fake.api_key, base_url=fake.url) as client:
                threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
                try:
                    client.customer_sessions.create_many(items(), concurrency=8, rate_limit=None)
                    print("not interrupted")
                except KeyboardInterrupt as e:
                    key = e.batch_key
                    print("key", len(key), e.__notes__ == [
                        f"stripe_sessions: run the batch again with batch_key={key!r} "
                        "to create nothing twice"])
                tasks = []
                client.customer_sessions.create_many(  # its callback runs on the loop
                    [{"customer": "c", "components": P}], rate_limit=None, concurrency=1,
                    batch_key="probe", on_progress=lambda p: tasks.extend(
                        t for t in asyncio.all_tasks() if t.get_name() != "probe"))
                print("pending", [t for t in tasks if "batch worker" in t.get_name()
                                  and not t.get_name().endswith(" probe")])
                sent = len(fake.requests)
                time.sleep(0.3)
                print("sent after", len(fake.requests) - sent, "of", sent < 1000)
                rs = client.customer_sessions.create_many(
                    items(), concurrency=32, rate_limit=None, batch_key=key)
                keys = [k for k in fake.session_keys if k.startswith(key)]
                print("usable", all(r.ok for r in rs), "dupes", len(keys) - len(set(keys)),
                      "created", len(keys))
        """,
        "-W",
        "error::ResourceWarning",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == [
        "key 32 True",
        "pending []",
        "sent after 0 of True",
        "usable True dupes 0 created 1000",
    ], out.stdout
    assert "run it again with batch_key=" in out.stderr  # logged as it stopped


def test_closing_a_sync_stream_cancels_in_flight(fake_stripe: FakeStripe) -> None:
    # on_progress runs on the client's loop: there it sees the loop's tasks.
    seen: list[int] = []

    def count_workers(_: ss.BatchProgress) -> None:
        seen.append(len(_workers()))

    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:
        stream = client.customer_sessions.stream_many(
            items(100), concurrency=4, rate_limit=None, on_progress=count_workers
        )
        with contextlib.closing(stream):
            for _ in stream:
                break
        assert seen[0] == 4  # four workers of the batch were running
        created = fake_stripe.created
        assert created < 100
        # Another batch on the same loop finds only its own worker: the first batch's
        # are gone (create_many counts each result in the worker that made it).
        seen.clear()
        client.customer_sessions.create_many(
            [{"customer": "c", "components": PRICING}], concurrency=1, on_progress=count_workers
        )
        assert seen == [1]


async def test_closing_a_stream_cancels_in_flight_at_once(client: ss.AsyncClient) -> None:
    stream = client.customer_sessions.stream_many(items(100), concurrency=4, rate_limit=None)
    async with contextlib.aclosing(stream):
        async for _ in stream:
            assert len(_workers()) == 4
            break
    assert _workers() == []


async def test_breaking_out_of_a_stream_cleans_up_soon_after(client: ss.AsyncClient) -> None:
    async for _ in client.customer_sessions.stream_many(items(100), concurrency=4, rate_limit=None):
        break
    for _ in range(100):
        if not _workers():
            break
        await asyncio.sleep(0.01)
    assert _workers() == []


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": float("inf")}, "rate_limit"),
        ({"max_retries": -1}, "max_retries"),
        ({"batch_key": ""}, "batch_key"),
        ({"batch_key": "x" * 201}, "batch_key"),
        ({"timeout": -1}, "timeout"),
    ],
)
async def test_bad_batch_options_raise_before_sending(
    api: Api, kwargs: dict[str, Any], words: str
) -> None:
    for method in ("create_many", "stream_many"):
        with pytest.raises(ValueError, match=words):
            await api.call(method, items(3), **kwargs)
    assert api.fake.requests == []


@pytest.mark.usefixtures("real_pauses")  # the real 1 s pause, not the suite's fast one
async def test_pacing_holds_against_stripes_429s_that_carry_no_retry_after() -> None:
    # The fake at its defaults answers rate_limit 429s as Stripe does: no Retry-After.
    async with FakeStripe(rate_limit=25) as fake, Api("async", fake) as api:
        # At the default pace (20/s, under test mode's 25/s) no 429 ever comes.
        results = await api.call("create_many", items(40), batch_key="under")
        assert all(r.ok for r in results)
        assert not [r for r in fake.requests if r.status == 429]
        # Asked for twice the server's limit, the batch backs off on its own and finishes.
        fake.reset()
        results = await api.call(
            "create_many", items(100), concurrency=16, rate_limit=50.0, batch_key="over"
        )
        assert all(r.ok for r in results), [r.error for r in results if not r.ok][:1]
        assert fake.created == 100
        # (A few 429s on a machine fast enough to exceed 25/s; none on one too busy to:
        # only the upper bounds are asserted.)
        limited = [r for r in fake.requests if r.status == 429]
        assert len(limited) <= 0.2 * len(fake.requests), len(limited)
