"""Specification of a batch's input reader: order, bounded read-ahead, errors, closing.

No clock: the input thread and the loop are made to wait on each other by events, so
each test states an order of events, never a duration. A wait on a thread has a long
bound (``PATIENCE``) that only a hang reaches.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stripe_sessions._batch.reader import END, Source, ThreadedReader
from tests.helpers import PATIENCE, examples, until


async def test_items_come_out_in_input_order_then_end() -> None:
    reader = ThreadedReader((i for i in range(1000)), capacity=8)
    got = []
    while (item := await reader.get()) is not END:
        got.append(item)
    assert got == list(range(1000))
    assert await reader.get() is END  # and stays at the end


async def test_the_thread_reads_at_most_capacity_ahead_and_resumes_at_half() -> None:
    read = 0

    def endless() -> Iterator[int]:
        nonlocal read
        while True:
            read += 1
            yield read

    reader = ThreadedReader(endless(), capacity=10)
    try:
        await until(lambda: reader._full, "the buffer filled")
        assert read == 10  # it stopped reading, blocked until the buffer drains
        for expected in range(1, 5):  # down to 6 left: not yet half, no reading
            assert await reader.get() == expected
        assert read == 10 and reader._full
        assert await reader.get() == 5  # 5 left: half, the thread reads again
        await until(lambda: read == 15 and reader._full, "the buffer refilled")
    finally:
        reader.close()


async def test_a_blocking_input_never_blocks_the_loop() -> None:
    # The input waits for something only the running loop can do: were next() called
    # on the loop, this would never finish.
    ticked = threading.Event()

    def waits_for_the_loop() -> Iterator[str]:
        for i in range(3):
            ticked.clear()
            assert ticked.wait(PATIENCE), "the loop was blocked while the input was read"
            yield f"item {i}"

    reader = ThreadedReader(waits_for_the_loop(), capacity=4)
    loop = asyncio.get_running_loop()
    ticking = True

    def tick() -> None:
        ticked.set()
        if ticking:
            loop.call_later(0.001, tick)

    tick()
    try:
        assert [await reader.get() for _ in range(3)] == ["item 0", "item 1", "item 2"]
        assert await reader.get() is END
    finally:
        ticking = False


async def test_each_item_is_handed_over_as_soon_as_it_is_read() -> None:
    # Item 1 is read only once item 0 has reached the consumer: a reader that waited
    # for more input (a full buffer, the end) before handing item 0 over would hang.
    taken = threading.Event()

    def one_at_a_time() -> Iterator[int]:
        yield 0
        assert taken.wait(PATIENCE), "item 0 waited for the rest of the input"
        yield 1

    reader = ThreadedReader(one_at_a_time(), capacity=256)
    assert await reader.get() == 0
    taken.set()
    assert await reader.get() == 1
    assert await reader.get() is END


@pytest.mark.parametrize("error", [LookupError("cursor closed"), KeyboardInterrupt()])
async def test_what_the_input_raises_comes_after_the_items_read_before_it(
    error: BaseException,
) -> None:
    def failing() -> Iterator[int]:
        yield 1
        yield 2
        raise error

    reader = ThreadedReader(failing(), capacity=8)
    assert await reader.get() == 1
    assert await reader.get() == 2
    with pytest.raises(type(error)) as raised:
        await reader.get()
    assert raised.value is error


async def test_close_stops_reading_and_closes_the_generator_on_its_thread() -> None:
    closed_on: list[threading.Thread] = []
    read = 0

    def endless() -> Iterator[int]:
        nonlocal read
        try:
            while True:
                read += 1
                yield read
        finally:
            closed_on.append(threading.current_thread())

    reader = ThreadedReader(endless(), capacity=4)
    await until(lambda: reader._full, "the buffer filled")
    reader.close()
    reader._thread.join(PATIENCE)
    assert not reader._thread.is_alive()
    assert closed_on == [reader._thread]
    assert read == 4  # nothing more was read


async def test_close_during_a_blocked_next_ends_once_that_call_returns() -> None:
    release = threading.Event()
    started = threading.Event()
    after: list[str] = []

    def stuck() -> Iterator[int]:
        started.set()
        release.wait(PATIENCE)  # a cursor that hangs
        yield 1
        after.append("read on")  # pragma: no cover - must not happen
        yield 2

    reader = ThreadedReader(stuck(), capacity=4)
    await until(started.is_set, "the thread called next()")
    reader.close()
    release.set()
    reader._thread.join(PATIENCE)
    assert not reader._thread.is_alive() and after == []


async def test_a_list_is_read_in_place_with_indexes() -> None:
    source = Source(["a", "b"], read_ahead=4)
    assert source._reader is None  # next() on a list cannot block: no thread
    assert [await source.next(), await source.next(), await source.next()] == [
        (0, "a"),
        (1, "b"),
        None,
    ]


async def test_a_generator_is_read_in_a_thread_with_indexes() -> None:
    source = Source((x for x in "xyz"), read_ahead=2)
    assert source._reader is not None
    assert [await source.next() for _ in range(4)] == [(0, "x"), (1, "y"), (2, "z"), None]


async def test_an_async_input_is_read_by_one_worker_at_a_time_in_order() -> None:
    inside = 0
    most = 0

    async def slow() -> AsyncIterator[int]:
        nonlocal inside, most
        for i in range(20):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0)
            inside -= 1
            yield i

    source = Source(slow(), read_ahead=8)
    got: list[tuple[int, int]] = []

    async def worker() -> None:
        while (pair := await source.next()) is not None:
            got.append(pair)

    await asyncio.gather(*(worker() for _ in range(8)))
    assert most == 1
    assert sorted(got) == [(i, i) for i in range(20)]


async def test_closing_the_source_closes_an_async_generator_input() -> None:
    closed = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                i += 1
                yield i
        finally:
            closed.set()

    source = Source(endless(), read_ahead=1)
    assert await source.next() == (0, 1)
    await source.aclose()
    assert closed.is_set()


class _SwitchOften:
    """The interpreter switches threads every microsecond: the input thread and the loop
    interleave between any two lines of the hand-off, as on a busy machine."""

    def __enter__(self) -> None:
        self._was = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)

    def __exit__(self, *exc: object) -> None:
        sys.setswitchinterval(self._was)


@settings(max_examples=examples(60), deadline=None)
@given(
    count=st.integers(0, 120),
    capacity=st.integers(1, 6),
    consumers=st.integers(1, 6),
    pauses=st.lists(st.booleans(), min_size=1, max_size=16),
    fails=st.booleans(),
)
def test_any_interleaving_hands_every_item_over_once_in_order(
    count: int, capacity: int, consumers: int, pauses: list[bool], fails: bool
) -> None:
    # The hand-off takes no lock per item: a lost wake-up (a consumer asleep on an empty
    # buffer the thread has just filled, or the thread asleep on a full buffer the loop
    # has just drained) hangs here, bounded by PATIENCE; a lost or doubled item shows in
    # the list. Both sides pause (the thread gives up the GIL, a consumer yields) by a
    # drawn pattern, and tiny buffers put every item at the empty or full edge.
    def items() -> Iterator[int]:
        for i in range(count):
            if pauses[i % len(pauses)]:
                time.sleep(0)
            yield i
        if fails:
            raise LookupError("cursor closed")

    async def run() -> tuple[list[tuple[int, int]], int]:
        source = Source(items(), read_ahead=capacity)
        got: list[tuple[int, int]] = []
        raised = 0

        async def consumer(me: int) -> None:
            nonlocal raised
            step = me
            try:
                while (pair := await source.next()) is not None:
                    got.append(pair)
                    step += 1
                    if pauses[step % len(pauses)]:
                        await asyncio.sleep(0)
            except LookupError:
                raised += 1

        try:
            await asyncio.wait_for(
                asyncio.gather(*(consumer(i) for i in range(consumers))), PATIENCE
            )
        finally:
            await source.aclose()
        return got, raised

    with _SwitchOften():
        got, raised = asyncio.run(run())
    assert got == [(i, i) for i in range(count)]
    assert raised == (consumers if fails else 0)
