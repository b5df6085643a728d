"""Reads a batch's input: :class:`Source` hands out items in order, and
:class:`ThreadedReader` reads a caller's blocking iterable in a thread, so a slow input
never stalls the loop.

A batch's input may be a generator over a database cursor or stdin: calling ``next()``
on it from the event loop would block every request in flight. ``ThreadedReader``
runs the iterable in a daemon thread and hands items to the loop through a bounded
buffer, each one as soon as it is read.

Written by hand, not with a library: the SDK's runtime dependencies are aiohttp,
attrs, cattrs and tenacity, and a mixed sync/async queue (janus) is not among them.
The hand-off is built for a batch's hot path: the thread wakes the loop only when a
consumer is waiting, and the loop wakes the thread only when the buffer has drained
to half (so a fast generator costs one thread switch per half-buffer, not per item).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import threading
from collections.abc import AsyncIterable, Iterable
from typing import Any, Final

__all__ = ["END", "READ_AHEAD", "Source", "ThreadedReader"]

#: Items of a plain iterable the input thread reads ahead (more if the concurrency asks
#: for more at once). Large enough that the thread wakes rarely: measured, a read-ahead
#: of 32 cost about 10% of a fast batch's throughput, 256 about 2%.
READ_AHEAD: Final = 256

#: Returned by :meth:`ThreadedReader.get` once the input is exhausted.
END: Final = object()


class ThreadedReader:
    """Iterates ``iterable`` in a daemon thread; :meth:`get` awaits its items in order.

    At most ``capacity`` items are read ahead. An exception raised by the iterable is
    raised by :meth:`get` after the items read before it. :meth:`close` stops reading
    (a thread blocked inside ``next()`` ends once that call returns) and closes a
    generator from its own thread.
    """

    def __init__(self, iterable: Iterable[Any], capacity: int) -> None:
        self._iterable = iterable
        self._capacity = max(capacity, 1)
        self._low = self._capacity // 2
        self._buffer: collections.deque[Any] = collections.deque()
        self._lock = threading.Condition(threading.Lock())
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
        try:
            iterator = iter(self._iterable)
            while True:
                with self._lock:
                    if len(self._buffer) >= self._capacity:
                        self._full = True
                        while self._full and not self._stop:
                            self._lock.wait()
                    if self._stop:
                        return
                try:
                    item = next(iterator)
                except StopIteration:
                    return
                with self._lock:
                    self._buffer.append(item)
                    wake, self._waiting = self._waiting, False
                if wake:
                    self._wake()
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

    def _wake(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self._loop.call_soon_threadsafe(self._ready.set)

    async def get(self) -> Any:
        """The next item, or :data:`END`; raises what the iterable raised."""
        while True:
            with self._lock:
                if self._buffer:
                    item = self._buffer.popleft()
                    if self._full and len(self._buffer) <= self._low:
                        self._full = False
                        self._lock.notify()
                    return item
                if self._done:
                    if self._error is not None:
                        raise self._error
                    return END
                self._waiting = True
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Stop reading; the thread closes a generator input and ends."""
        with self._lock:
            self._stop = True
            self._lock.notify()


class Source:
    """The batch's input, read in order: ``(index, item)`` pairs, then None.

    A list, tuple or range is read directly (``next()`` cannot block); an async
    iterable is read by one worker at a time; any other iterable (a generator over a
    cursor or stdin) is read in a :class:`ThreadedReader`, off the event loop.
    """

    def __init__(self, items: Iterable[Any] | AsyncIterable[Any], concurrency: int) -> None:
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
            self._reader = ThreadedReader(items, max(READ_AHEAD, 2 * concurrency))

    async def next(self) -> tuple[int, Any] | None:
        """The next item with its index, or None at the end; raises what the input raised."""
        if self._reader is not None:
            item = await self._reader.get()
            return None if item is END else (next(self._counter), item)
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

    async def aclose(self) -> None:
        """Stop reading: the input thread ends, an async generator input is closed."""
        if self._reader is not None:
            self._reader.close()
        if self._aiter is not None and hasattr(self._aiter, "aclose"):
            with contextlib.suppress(Exception):
                await self._aiter.aclose()
