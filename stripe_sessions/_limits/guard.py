"""A lock around a few lines of a limiter's arithmetic, shared by threads, safe across fork.

A limiter may be used from several threads, each running its own event loop (threads
with their own ``asyncio.run``, the sync client's loop thread next to an async app's).
A booking reads a slot and writes the next one; two threads doing so at once could
both take the same slot (seen: 3 threads with a 1 us switch interval lost 2-42% of
60,000 bookings). So each
booking runs under a :class:`Guard`: a ``threading.Lock``, never an ``asyncio.Lock``
(that belongs to one loop, and a task of another loop cannot wait on it).

It is held only around arithmetic, never across an ``await``: a task suspended while
holding it would block every other thread's loop, and deadlock its own loop's next
task that asks for it (the lock is not reentrant, and both run on one thread).
A forked child gets a fresh lock (another thread of the parent may have held it at
the fork, and never releases it in the child); a pickled copy gets a fresh one too.
"""

from __future__ import annotations

import os
import threading
import weakref
from types import TracebackType
from typing import Final

__all__ = ["Guard"]

#: Every Guard, so that a forked child can renew each one's lock.
_GUARDS: Final[weakref.WeakSet[Guard]] = weakref.WeakSet()


class Guard:
    """``with guard:`` around a booking (see the module): a fork-safe, picklable Lock."""

    __slots__ = ("__weakref__", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        _GUARDS.add(self)

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()

    def __reduce__(self) -> tuple[type[Guard], tuple[()]]:
        return (Guard, ())

    def _renew(self) -> None:
        self._lock = threading.Lock()


def _renew_all_in_child() -> None:
    for guard in list(_GUARDS):
        guard._renew()


os.register_at_fork(after_in_child=_renew_all_in_child)
