"""Closing a client with calls in flight: a grace period, then each call ends with its key.

Against the fake: ``slow_next`` holds the answers so the calls are in flight when the
client closes, and ``fake.created`` / ``fake.session_keys`` say what Stripe created.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions import ClientClosedError
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, examples, until, until_sync

#: Generous: a bound for things that happen at once, so a busy machine never fails a test.
PATIENCE = 30.0


def _loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stripe-sessions-loop"]


async def _create(client: Any, **kwargs: Any) -> ss.CustomerSession:
    session: ss.CustomerSession = await client.customer_sessions.create(
        customer="cus_1", components=PRICING, **kwargs
    )
    return session


# --- the async client -------------------------------------------------------------


async def test_aclose_lets_calls_in_flight_finish_within_the_grace(fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(0.3, times=5)
    tasks = [asyncio.create_task(_create(client)) for _ in range(5)]
    await until(lambda: len(fake.requests) == 5, "5 requests")
    await client.aclose(grace=PATIENCE)
    sessions = await asyncio.gather(*tasks)
    assert all(isinstance(s, ss.CustomerSession) for s in sessions)
    assert fake.created == 5


async def test_aclose_cuts_calls_after_the_grace_each_with_its_key(fake: FakeStripe) -> None:
    """Issue #17 (9): each caller gets a StripeError with its key, not a bare RuntimeError."""
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(1.0, times=5)
    tasks = [asyncio.create_task(_create(client)) for _ in range(5)]
    await until(lambda: len(fake.requests) == 5, "5 requests")
    sent = {r.idempotency_key for r in fake.requests}
    await client.aclose(grace=0.05)
    assert all(t.done() for t in tasks), "aclose() returned with calls still running"
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    errors = [e for e in outcomes if isinstance(e, ClientClosedError)]
    assert len(errors) == 5, outcomes
    for error in errors:
        assert isinstance(error, ss.StripeError)
        assert error.in_flight is True
        assert "may have created" in str(error)
    assert {e.idempotency_key for e in errors} == sent
    # The fake went on and created them (as Stripe may): retrying with the keys is safe.
    await until(lambda: fake.created == 5, "the fake to create the 5 sessions")
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as again:
        replays = [await _create(again, idempotency_key=e.idempotency_key) for e in errors]
    assert all(s.idempotent_replayed for s in replays)
    assert fake.created == 5


async def test_calls_after_aclose_get_a_stripe_error_and_send_nothing(fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    await _create(client)
    await client.aclose()
    assert client.closed
    with pytest.raises(ClientClosedError, match="closed, so nothing was sent") as info:
        await _create(client, idempotency_key="late-1")
    assert info.value.in_flight is False
    assert info.value.idempotency_key == "late-1"
    assert isinstance(info.value, RuntimeError)  # what it raised before, still true
    with pytest.raises(ClientClosedError) as batch_info:
        await client.customer_sessions.create_many(
            [{"customer": "cus_1", "components": PRICING}] * 3, batch_key="late"
        )
    assert batch_info.value.batch_key == "late" and batch_info.value.in_flight is False
    assert len(fake.requests) == 1


async def test_aclose_cuts_the_calls_of_copies_too(fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    copy = client.with_options(stripe_account="acct_1")
    fake.slow_next(5.0)
    task = asyncio.create_task(_create(copy, idempotency_key="copy-1"))
    await until(lambda: len(fake.requests) == 1, "the request")
    await copy.aclose(grace=0)  # a copy's close leaves the pool (and its calls) alone
    assert not task.done()
    await client.aclose(grace=0)
    with pytest.raises(ClientClosedError) as info:
        await task
    assert info.value.idempotency_key == "copy-1"


async def test_a_batch_in_flight_ends_with_its_key_and_resumes_creating_nothing_twice(
    fake: FakeStripe,
) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(5.0, times=4)
    items = [{"customer": f"cus_{i}", "components": PRICING} for i in range(10)]
    batch = asyncio.create_task(
        client.customer_sessions.create_many(
            items, concurrency=4, rate_limit=None, batch_key="closing"
        )
    )
    await until(lambda: len(fake.requests) == 4, "4 requests")
    await client.aclose(grace=0.05)
    with pytest.raises(ClientClosedError) as info:
        await batch
    assert info.value.batch_key == "closing" and not info.value.in_flight
    assert len(fake.requests) == 4  # nothing was sent once the client was closed
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as again:
        results = await again.customer_sessions.create_many(
            items, concurrency=4, rate_limit=None, batch_key="closing"
        )
    assert all(r.ok for r in results)
    assert sorted(fake.session_keys) == sorted(f"closing-{i}" for i in range(10))


async def test_a_stream_over_an_endless_input_ends_when_its_client_closes(
    fake: FakeStripe,
) -> None:
    """After aclose(), an endless input is not refused item by item for ever: the batch ends."""
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    endless = ({"customer": f"cus_{i}", "components": PRICING} for i in itertools.count())
    seen = 0
    with pytest.raises(ClientClosedError) as info:
        async for _ in client.customer_sessions.stream_many(
            endless, concurrency=4, rate_limit=None, batch_key="endless"
        ):
            seen += 1
            if seen == 20:
                await client.aclose(grace=0.05)
            assert seen < 10_000, "the batch went on refusing items after close"
    assert info.value.batch_key == "endless"


async def test_a_cut_keeps_a_cancellation_of_the_callers_own(fake: FakeStripe) -> None:
    """The caller's own cancel() arriving with the cut is a CancelledError, not swallowed."""
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(5.0)
    task = asyncio.create_task(_create(client))
    await until(lambda: len(fake.requests) == 1, "the request")
    closing = asyncio.create_task(client.aclose(grace=0))
    await asyncio.sleep(0)  # the cut is made
    task.cancel()
    await closing
    if hasattr(task, "uncancel"):  # 3.11+ tells one cancellation from two
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        with pytest.raises((asyncio.CancelledError, ClientClosedError)):
            await task


async def test_aclose_leaves_no_task_behind(fake_stripe: FakeStripe) -> None:
    fake = fake_stripe  # served from its own thread: every task here is the client's
    before = asyncio.all_tasks()
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    fake.slow_next(5.0, times=3)
    calls = [asyncio.create_task(_create(client)) for _ in range(3)]
    stream = client.customer_sessions.stream_many(
        [{"customer": "cus_1", "components": PRICING}] * 20, concurrency=3, rate_limit=None
    )
    await until(lambda: len(fake.requests) == 3, "3 requests")
    await client.aclose(grace=0)
    await asyncio.gather(*calls, return_exceptions=True)
    with pytest.raises(ClientClosedError):  # the stream ends at once, sending nothing
        async for _ in stream:
            pass
    assert len(fake.requests) == 3
    await asyncio.sleep(0)
    assert asyncio.all_tasks() - before == set()


@settings(
    max_examples=examples(12),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    slow=st.lists(st.booleans(), min_size=1, max_size=6),
    grace=st.sampled_from([0.0, 0.05, PATIENCE]),
)
def test_every_call_ends_as_a_session_or_with_its_own_key(
    fake_stripe: FakeStripe, slow: list[bool], grace: float
) -> None:
    """Whatever is slow and whatever the grace: a session, or ClientClosedError with its key."""
    fake = fake_stripe

    async def run() -> None:
        client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
        await _create(client)  # the pool is open before the calls start
        fake.reset()
        for is_slow in slow:
            fake.slow_next(0.5 if is_slow else 0.0)
        keys = [f"k{i}-{time.monotonic_ns()}" for i in range(len(slow))]
        tasks = [asyncio.create_task(_create(client, idempotency_key=k)) for k in keys]
        await until(lambda: len(fake.requests) == len(slow), "every request")
        await client.aclose(grace=grace)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for key, outcome in zip(keys, outcomes, strict=True):
            if isinstance(outcome, ss.CustomerSession):
                continue
            assert isinstance(outcome, ClientClosedError), repr(outcome)
            assert outcome.idempotency_key == key
            assert outcome.in_flight
        if grace == PATIENCE:
            assert all(isinstance(o, ss.CustomerSession) for o in outcomes)

    asyncio.run(run())


# --- the sync client ------------------------------------------------------------------


def test_sync_close_with_calls_in_flight_on_other_threads(fake_stripe: FakeStripe) -> None:
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    client.customer_sessions.create(customer="cus_1", components=PRICING)
    fake_stripe.reset()
    fake_stripe.slow_next(5.0, times=5)
    outcomes: dict[str, BaseException | ss.CustomerSession] = {}

    def work(key: str) -> None:
        try:
            outcomes[key] = client.customer_sessions.create(
                customer="cus_1", components=PRICING, idempotency_key=key
            )
        except BaseException as e:
            outcomes[key] = e

    threads = [threading.Thread(target=work, args=(f"t-{i}",)) for i in range(5)]
    for t in threads:
        t.start()
    until_sync(lambda: len(fake_stripe.requests) == 5, "5 requests")
    client.close(grace=0.05)
    for t in threads:
        t.join(PATIENCE)
        assert not t.is_alive()
    assert sorted(outcomes) == [f"t-{i}" for i in range(5)]
    for key, outcome in outcomes.items():
        assert isinstance(outcome, ClientClosedError), repr(outcome)
        assert outcome.idempotency_key == key
        assert outcome.in_flight
    assert _loop_threads() == []
    with pytest.raises(ClientClosedError):
        client.customer_sessions.create(customer="cus_1", components=PRICING)


def test_sync_close_with_a_batch_in_flight(fake_stripe: FakeStripe) -> None:
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    fake_stripe.slow_next(5.0, times=2)
    got: list[Any] = []
    items = ({"customer": "cus_1", "components": PRICING} for _ in range(1000))

    def work() -> None:
        try:
            got.append(
                client.customer_sessions.create_many(
                    items, concurrency=2, rate_limit=None, batch_key="sync-batch"
                )
            )
        except BaseException as e:
            got.append(e)

    thread = threading.Thread(target=work)
    thread.start()
    until_sync(lambda: len(fake_stripe.requests) == 2, "2 requests")
    client.close(grace=0.05)
    thread.join(PATIENCE)
    assert not thread.is_alive()
    (outcome,) = got
    if isinstance(outcome, list):  # every item ended, each with its key
        for r in outcome:
            assert isinstance(r.error, ClientClosedError)
            assert r.error.idempotency_key == r.idempotency_key
    else:
        assert isinstance(outcome, ClientClosedError), repr(outcome)
        assert outcome.batch_key == "sync-batch"
    assert _loop_threads() == []


def test_a_sync_stream_read_after_close_says_which_batch(fake_stripe: FakeStripe) -> None:
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    stream = client.customer_sessions.stream_many(
        [{"customer": f"cus_{i}", "components": PRICING} for i in range(8)],
        concurrency=3,
        batch_key="bk-1",
    )
    next(stream)
    client.close(grace=0)
    with pytest.raises(ClientClosedError) as info:
        list(stream)
    assert info.value.batch_key == "bk-1"


def test_a_call_from_the_loop_thread_is_refused_with_a_stripe_error(
    fake_stripe: FakeStripe,
) -> None:
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:
        with pytest.raises(ss.StripeError, match="own event loop thread") as info:
            client.customer_sessions.create_many(
                [{"customer": "cus_1", "components": PRICING}],
                on_progress=lambda _: client.customer_sessions.create(
                    customer="cus_2", components=PRICING
                ),
            )
        assert isinstance(info.value, RuntimeError)
        assert client.customer_sessions.create(customer="cus_3", components=PRICING)


def test_a_sync_stream_closed_before_its_first_item_says_which_batch(
    fake_stripe: FakeStripe,
) -> None:
    """Stateful finding 6: a stream never read before close() carries its batch_key too."""
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    _ = client.customer_sessions.create(customer="cus_0", components=PRICING)
    stream = client.customer_sessions.stream_many(
        [{"customer": "cus_1", "components": PRICING}], rate_limit=None
    )
    client.close(grace=0)
    with pytest.raises(ClientClosedError) as info:
        next(stream)
    assert info.value.batch_key is not None and not info.value.in_flight
    assert len(fake_stripe.requests) == 1


async def test_a_stream_knows_its_batch_key_before_the_first_result(fake: FakeStripe) -> None:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
        stream = client.customer_sessions.stream_many(
            [{"customer": "cus_1", "components": PRICING}], rate_limit=None
        )
        key = stream.batch_key  # e.g. to log before anything is sent
        assert not fake.requests
        results = [r async for r in stream]
    assert [r.batch_key for r in results] == [key]
    assert fake.session_keys == [f"{key}-0"]
