"""Red team of ``create_many``'s collect mode (workers record and keep their own results).

Each test states a fault a helper session found in it (all fixed since; the docstrings
say what was seen), then two pin that both modes agree. The batch is run against a real
FakeStripe, and what went out is read from the keys the fake recorded. Every wait is
bounded (``PATIENCE``): a hang fails, never hangs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions import BatchProgress, BatchResult
from stripe_sessions.testing import FakeStripe, FaultMix
from tests.helpers import PATIENCE, PRICING, items, run_script


def sent_keys(fake: FakeStripe, batch_key: str) -> set[str]:
    """The idempotency keys of the batch's requests the fake received."""
    return {
        key
        for r in fake.requests
        if (key := r.idempotency_key) is not None and key.startswith(batch_key + "-")
    }


async def outcome(awaitable: Any) -> Any:
    """What an awaitable returned or raised (a CancelledError too), bounded by PATIENCE."""
    task = asyncio.ensure_future(awaitable)
    (got,) = await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), PATIENCE)
    return got


# --- Batch.collect(): the kept list is set before the run-once check -------------------


async def test_a_second_collect_on_the_same_stream_does_not_steal_the_first_ones_results(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    """Two tasks call ``stream.collect()`` at once: the second is refused ("a batch runs
    once"), but it has already replaced ``Batch.kept`` before that check, and the
    workers (which read ``self.kept`` at their first step) keep their results in the
    refused call's list: the first collect returns [] for a batch that created 10."""
    stream = client.customer_sessions.stream_many(list(items(10)), batch_key="twice")
    first = asyncio.ensure_future(stream.collect())
    await asyncio.sleep(0)  # the first collect has started the run; workers not yet
    with pytest.raises(RuntimeError, match="runs once"):
        await stream.collect()
    results = await asyncio.wait_for(first, PATIENCE)
    assert len(sent_keys(fake, "twice")) == 10
    assert sorted(r.index for r in results) == list(range(10))


async def test_collect_called_while_the_stream_is_iterated_does_not_swallow_its_results(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    """A task iterates a stream while another calls ``collect()`` on it (refused): the
    refused call switched the running batch to collect mode, and the iteration then
    yields nothing at all and ends as a completed batch, though 10 were created."""
    stream = client.customer_sessions.stream_many(list(items(10)), batch_key="both")

    async def iterate() -> list[BatchResult]:
        return [r async for r in stream]

    iterating = asyncio.ensure_future(iterate())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="runs once"):
        await stream.collect()
    results = await asyncio.wait_for(iterating, PATIENCE)
    assert len(sent_keys(fake, "both")) == 10
    assert sorted(r.index for r in results) == list(range(10))


# --- a worker ended by a CancelledError nobody in the batch sent ----------------------


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_on_progress_cancelling_its_task_never_truncates_create_many_silently(
    client: ss.AsyncClient, fake: FakeStripe, concurrency: int
) -> None:
    """``on_progress`` stops the batch the asyncio way: ``asyncio.current_task().cancel()``.
    Streamed, that task is the caller's and the batch ends with CancelledError. Collected,
    on_progress runs in a worker: the worker is cancelled, counted as a worker that ran
    out of input, and create_many *returns* (3 results of 20 with one worker; 19 of 20
    with three, one item neither a result nor an error), logged as a completed batch."""

    def stop(p: BatchProgress) -> None:
        if p.done == 3:
            asyncio.current_task().cancel()  # type: ignore[union-attr]

    got = await outcome(
        client.customer_sessions.create_many(
            list(items(20)), concurrency=concurrency, on_progress=stop, rate_limit=None
        )
    )
    if isinstance(got, list):  # returned: then it must be every input's result
        assert sorted(r.index for r in got) == list(range(20)), (
            f"create_many returned {len(got)} results for 20 inputs, no error"
        )
    else:
        assert isinstance(got, BaseException)


async def test_on_progress_raising_cancelled_error_never_truncates_create_many_silently(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    """The same through a raise: ``on_progress`` raises ``asyncio.CancelledError`` (an
    ``asyncio.Future.result()`` of a cancelled future inside it does). Streamed: raised
    to the caller. Collected: create_many returns 2 results of 10, no error, no warning."""

    def stop(p: BatchProgress) -> None:
        if p.done == 3:
            raise asyncio.CancelledError

    got = await outcome(
        client.customer_sessions.create_many(list(items(10)), concurrency=1, on_progress=stop)
    )
    assert not isinstance(got, list), f"returned {len(got)} results for 10 inputs, no error"


async def test_an_async_input_raising_cancelled_error_is_not_the_end_of_the_input(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    """An async generator input whose read raises CancelledError (a driver's future
    cancelled under it) after 5 items: create_many returns 5 results as if the input had
    ended there (streamed mode does the same: the class is a worker's CancelledError
    taken for a normal end whenever the batch did not cancel it)."""

    async def rows() -> AsyncIterator[dict[str, Any]]:
        for i in range(5):
            yield {"customer": f"cus_{i}", "components": PRICING}
        raise asyncio.CancelledError  # what the driver's cancelled future raised

    got = await outcome(client.customer_sessions.create_many(rows(), concurrency=2))
    assert not isinstance(got, list), "the input failed, yet the batch looks complete"


# --- on_progress / fail_fast: other workers keep recording after the batch ended ------


async def test_on_progress_is_never_called_again_after_it_raised(
    client: ss.AsyncClient,
) -> None:
    """``on_progress`` raises at done == 3, which ends the batch (streamed: calls 1, 2, 3).
    Collected: the raising worker only queues the error; another worker runs on without
    an await (invalid items) until YIELD_EVERY, calling on_progress 62 more times (up to
    done == 65) after it raised, and the early-end warning says "after 65 items"."""
    calls: list[int] = []

    def progress(p: BatchProgress) -> None:
        calls.append(p.done)
        if p.done == 3:
            raise RuntimeError("stop here")

    invalid = [{"not_a_parameter": i} for i in range(300)]
    with pytest.raises(RuntimeError, match="stop here"):
        await asyncio.wait_for(
            client.customer_sessions.create_many(invalid, concurrency=2, on_progress=progress),
            PATIENCE,
        )
    assert calls == [1, 2, 3]


async def test_nothing_is_recorded_after_fail_fast_raised(client: ss.AsyncClient) -> None:
    """The same class under ``fail_fast``: the first invalid item's error ends the batch
    (streamed: on_progress saw done == 1 only); collected, the other worker records and
    reports one more failed item after the batch's error was raised."""
    calls: list[int] = []
    invalid = [{"not_a_parameter": i} for i in range(300)]
    with pytest.raises(ss.ValidationError):
        await asyncio.wait_for(
            client.customer_sessions.create_many(
                invalid,
                concurrency=2,
                fail_fast=True,
                on_progress=lambda p: calls.append(p.done),
            ),
            PATIENCE,
        )
    assert calls == [1]


# --- the sync client: on_progress raising KeyboardInterrupt ---------------------------


def test_sync_on_progress_raising_keyboard_interrupt_raises_it_to_the_caller() -> None:
    """A sync ``Client``'s on_progress raises KeyboardInterrupt (on the loop thread; a
    real Ctrl-C lands on the caller's). The portal takes it for the caller's Ctrl-C and
    ``carry(inner, interrupt)``s the batch's notes from the unwound error, which is the
    same object: ``for note in source.__notes__: target.add_note(note)`` appends to
    the list it iterates, for ever: the caller spins, its memory grows without bound
    (and asyncio let the KeyboardInterrupt out of the loop thread's run_forever).
    Both create_many and stream_many; 3.11+ (3.10 builds a new list per note). Run in a
    subprocess whose memory is capped."""
    out = run_script(
        """
        import resource
        from tests.helpers import items
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

        def progress(p):
            if p.done == 3:
                raise KeyboardInterrupt

        with FakeStripe.running() as fake:
            c = ss.Client(api_key=fake.api_key, base_url=fake.url)
            for mode in ("create_many", "stream_many"):
                try:
                    list(getattr(c.customer_sessions, mode)(list(items(10)), on_progress=progress))
                except KeyboardInterrupt as e:
                    print("raised", len(getattr(e, "__notes__", ())), flush=True)
                s = c.customer_sessions.create(customer="cus_after", components=P)
                print("then", s.customer, flush=True)
            c.close()
        """,
        timeout=PATIENCE,
    )
    # Raised to the caller with the batch's note, and the client still serves calls
    # (asyncio also raised it out of the loop thread's run_forever, which ended it).
    assert out.stdout.splitlines() == ["raised 1", "then cus_after"] * 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr, out.stderr[-2000:]


# --- a second cancel during the batch's own cleanup -------------------------------------


async def test_a_second_cancel_during_cleanup_still_stops_the_input_thread(
    client: ss.AsyncClient,
) -> None:
    """create_many is cancelled, and cancelled again while its ``finally`` awaits the
    cancelled workers (a TaskGroup or a timeout around the caller's task, a second
    Ctrl-C): that second CancelledError leaves the ``finally`` at its ``gather``, and
    ``source.aclose()`` never runs: the input thread reads 1024 items ahead and then
    waits for room for ever, and the caller's generator (its cursor) is never closed.
    The same in streamed mode (the ``finally`` of ``Batch.results``)."""
    closed = threading.Event()

    def rows() -> Iterator[dict[str, Any]]:
        try:
            yield from items(10**6)
        finally:
            closed.set()

    fifth = asyncio.Event()

    def progress(p: BatchProgress) -> None:
        if p.done >= 5:
            fifth.set()

    task = asyncio.ensure_future(
        client.customer_sessions.create_many(
            rows(), concurrency=4, rate_limit=None, on_progress=progress
        )
    )
    await asyncio.wait_for(fifth.wait(), PATIENCE)
    task.cancel()
    await asyncio.sleep(0)  # the batch is in its finally, awaiting its cancelled workers
    task.cancel()
    assert isinstance(await outcome(task), asyncio.CancelledError)
    assert await asyncio.to_thread(closed.wait, PATIENCE), "the input is never closed"


# --- pinned: the two modes agree under seeded faults (passes) --------------------------


def _mixed() -> list[dict[str, Any]]:
    return [
        {"bad": i} if i % 7 == 3 else {"customer": f"cus_{i}", "components": PRICING}
        for i in range(90)
    ]


async def _run(mode: str, seed: int) -> tuple[list[Any], list[Any]]:
    mix = FaultMix(
        server_error=0.1, rate_limit=0.1, reset_after=0.05, reset_before=0.05, conflict=0.05
    )
    async with FakeStripe(faults=mix, seed=seed) as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
            progress: list[BatchProgress] = []
            kw: dict[str, Any] = dict(
                concurrency=1, on_progress=progress.append, batch_key=f"eq{seed}", rate_limit=None
            )
            if mode == "collect":
                got = await c.customer_sessions.create_many(_mixed(), **kw)
            else:
                streamed = [r async for r in c.customer_sessions.stream_many(_mixed(), **kw)]
                got = sorted(streamed, key=lambda r: r.index)
    results = [
        (r.index, r.idempotency_key, r.ok, type(r.error).__name__, r.attempts, r.batch_key)
        for r in got
    ]
    return results, [(p.done, p.total, p.succeeded, p.failed, p.retried) for p in progress]


@pytest.mark.parametrize("seed", [0, 1])
async def test_collect_and_stream_agree_under_seeded_faults(seed: int) -> None:
    """Same input, same seeded faults, one at a time: create_many's results, progress
    sequence (done 1..n) and retried counts are stream_many's, sorted."""
    collected = await _run("collect", seed)
    streamed = await _run("stream", seed)
    assert collected == streamed
    results, progress = collected
    assert [p[0] for p in progress] == list(range(1, 91))
    assert progress[-1][4] == sum(max(0, r[4] - 1) for r in results)
