"""Reads a batch's input: :class:`Source` hands out items in order, and
:class:`ThreadedReader` reads a caller's blocking iterable in a thread, so a slow input
never stalls the loop.

A batch's input may be a generator over a database cursor or stdin: calling ``next()``
on it from the event loop would block every request in flight. ``ThreadedReader``
runs the iterable in a daemon thread and hands items to the loop through a bounded
buffer, each one as soon as it is read.

Written by hand, not with a library: the SDK's runtime dependencies are aiohttp,
attrs, cattrs and tenacity, and a mixed sync/async queue (janus) is not among them.
The hand-off is built for a batch's hot path: no lock per item, the thread wakes the
loop only when a consumer is waiting, and the loop wakes the thread only when the
buffer has drained to half (so a fast generator costs one thread switch per
half-buffer, not per item).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
from collections.abc import AsyncIterable, Iterable
from typing import Any, Final

__all__ = ["END", "MISSING", "READ_AHEAD", "Source", "ThreadedReader"]

#: Items of a plain iterable the input thread reads ahead (more if the concurrency asks
#: for more at once). Large, because each refill (at half) costs a few hundred µs of
#: CPU whatever its size: the thread wakes and wins the GIL from a busy loop. Measured
#: (``benchmarks/run.py --scenario batch-paired --n 4096``, a generator against a list
#: of the same items): 256 cost about 3.5% more CPU per item, 1024 about 1.5%.
READ_AHEAD: Final = 1024

#: Returned by :meth:`ThreadedReader.get` once the input is exhausted.
END: Final = object()

#: Returned by :meth:`ThreadedReader.take` when no item is read yet.
MISSING: Final = object()


class ThreadedReader:
    """Iterates ``iterable`` in a daemon thread; :meth:`get` awaits its items in order.

    At most ``capacity`` items are read ahead. An exception raised by the iterable is
    raised by :meth:`get` after the items read before it. :meth:`close` stops reading
    (a thread blocked inside ``next()`` ends once that call returns) and closes a
    generator from its own thread.

    The buffer is a deque, appended by the thread and popped by the loop without a lock
    (both are atomic): the lock is taken only when one side must wait for the other.
    That hand-off is the classic pair of flags: the consumer says it waits *before* it
    looks at the buffer again, the thread appends *before* it looks for a waiter, so
    one of them always sees the other (the GIL orders the two threads' steps).
    Measured (``benchmarks/run.py --scenario batch-paired``): a lock taken per item
    cost a generator batch about 3% more CPU than a list.
    """

    def __init__(self, iterable: Iterable[Any], capacity: int) -> None:
        self._iterable = iterable
        self._capacity = max(capacity, 1)
        self._low = self._capacity // 2
        self._buffer: collections.deque[Any] = collections.deque()
        self._lock = threading.Condition(threading.Lock())  # the thread waits for room
        self._loop = asyncio.get_running_loop()
        self._ready = asyncio.Event()
        self._waiting = False  # a consumer found the buffer empty and awaits _ready
        self._full = False  # the thread waits for the buffer to drain to _low
        self._done = False
        self._stop = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="stripe-sessions-input", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        iterator: Any = None
        buffer, capacity = self._buffer, self._capacity
        try:
            iterator = iter(self._iterable)
            while not self._stop:
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                buffer.append(item)
                if self._waiting:  # read after the append: see the class docstring
                    self._hand_over()
                if len(buffer) >= capacity:
                    self._wait_for_room()
        except BaseException as e:  # the caller's iterable failed: the batch raises it
            self._error = e
        finally:
            close = getattr(iterator, "close", None)
            if self._stop and close is not None:
                with contextlib.suppress(Exception):
                    close()
            with self._lock:
                self._done = True
            self._wake()

    def _hand_over(self) -> None:
        with self._lock:
            wake, self._waiting = self._waiting, False
        if wake:
            self._wake()

    def _wait_for_room(self) -> None:
        with self._lock:
            # Checked again under the lock: a consumer that drained the buffer since
            # has not seen _full and would never wake this thread.
            if len(self._buffer) > self._low:
                self._full = True
                while self._full and not self._stop:
                    self._lock.wait()

    def _make_room(self) -> None:
        with self._lock:
            if self._full:
                self._full = False
                self._lock.notify()

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._ready.set)

    def take(self) -> Any:
        """The next item if one is read already, else :data:`MISSING`; never waits."""
        try:
            item = self._buffer.popleft()
        except IndexError:
            return MISSING
        if self._full and len(self._buffer) <= self._low:
            self._make_room()
        return item

    async def get(self) -> Any:
        """The next item, or :data:`END`; raises what the iterable raised."""
        while (item := self.take()) is MISSING:
            self._make_room()  # drained before the thread said it waits for room
            with self._lock:
                self._waiting = True  # said before the buffer is looked at again
                self._ready.clear()
                if self._buffer:
                    self._waiting = False
                    continue
                if self._done:
                    self._waiting = False
                    if self._error is not None:
                        raise self._error
                    return END
            await self._ready.wait()
        return item

    def close(self) -> None:
        """Stop reading; the thread closes a generator input and ends."""
        with self._lock:
            self._stop = True
            self._lock.notify()


class Source:
    """The batch's input, read in order: ``(index, item)`` pairs, then None.

    A list, tuple or range is read directly (``next()`` cannot block); an async
    iterable is read by one worker at a time; any other iterable (a generator over a
    cursor or stdin) is read in a :class:`ThreadedReader`, off the event loop, at most
    ``read_ahead`` items ahead.
    """

    def __init__(self, items: Iterable[Any] | AsyncIterable[Any], read_ahead: int) -> None:
        self._counter = itertools.count()
        self._lock = asyncio.Lock()
        self._reader: ThreadedReader | None = None
        self._aiter: Any = None
        self._iter: Any = None
        if isinstance(items, AsyncIterable):
            self._aiter = items.__aiter__()
        elif isinstance(items, (list, tuple, range)):
            self._iter = iter(items)
        else:
            self._reader = ThreadedReader(items, read_ahead)

    async def next(self) -> tuple[int, Any] | None:
        """The next item with its index, or None at the end; raises what the input raised."""
        if self._reader is not None:
            item = self._reader.take()  # no coroutine while the thread keeps ahead
            if item is MISSING:
                item = await self._reader.get()
                if item is END:
                    return None
            return next(self._counter), item
        if self._iter is not None:  # next() cannot be interleaved: no lock needed
            try:
                return next(self._counter), next(self._iter)
            except StopIteration:
                return None
        async with self._lock:  # one reader at a time, and indexes in input order
            try:
                item = await self._aiter.__anext__()
            except StopAsyncIteration:
                return None
            return next(self._counter), item

    def stop(self) -> None:
        """Stop the input thread (it closes a generator input when its ``next()`` returns)."""
        if self._reader is not None:
            self._reader.close()

    async def aclose(self) -> None:
        """Stop reading: the input thread ends, an async generator input is closed."""
        self.stop()
        if self._aiter is not None and hasattr(self._aiter, "aclose"):
            with contextlib.suppress(Exception):
                await self._aiter.aclose()
