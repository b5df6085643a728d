"""Reads a caller's blocking iterable in a thread, so a slow input never stalls the loop.

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
import threading
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["END", "ThreadedReader"]

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
