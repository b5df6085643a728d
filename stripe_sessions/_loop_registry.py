"""What an owner keeps per event loop: one entry per loop, added under a lock, swept at exit.

A connection pool's aiohttp sessions (``_http.pool``) and a limiter's Redis clients
(``_limits.redis_connection``) each keep one entry per asyncio loop they were used
on. Both keep them the same way, here: a plain dict under a ``threading.Lock``
(threads add theirs at once), not a ``WeakKeyDictionary`` keyed on the loop (an entry
holds its loop, so a weak key would never die); an entry leaves when its loop ends
(its end hook calls :meth:`LoopRegistry.ended`), and one whose loop was closed by hand
is discarded when the next loop is added, at ``aclose()`` and at exit. Their owners
are tracked (:class:`LoopOwners`) so that a forked child forgets its parent's entries
and the exit sweeps them.

Hand-written: nothing in aiohttp, attrs, cattrs or tenacity keeps objects per event
loop (aiohttp binds a session to one loop and leaves the rest to its user).
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

__all__ = ["LoopEntry", "LoopOwner", "LoopOwners", "LoopRegistry"]


class LoopEntry(Protocol):
    """What an owner keeps for one loop: it names its loop, and can be dropped quietly."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the entry belongs to."""

    def discard(self) -> None:
        """Drop what the entry holds without its (closed) loop, quietly."""


class LoopOwner(Protocol):
    """An owner of a registry: forgets it after a fork, sweeps it at exit."""

    def forget(self) -> None:
        """In a forked child: drop the parent's entries, never closing them."""

    def sweep(self) -> None:
        """Drop the entries of loops closed by hand, quietly."""


E = TypeVar("E", bound=LoopEntry)
OwnerT = TypeVar("OwnerT", bound=LoopOwner)


class LoopRegistry(Generic[E]):
    """One entry per event loop, in a plain dict under ``lock``.

    ``get`` is the dict's own ``get``: the lock-free fast path of every call (the dict
    is never replaced, so a reference to it, or to ``get``, stays good). Methods said
    to be called under ``lock`` leave taking it to their caller, which may do more
    under the same hold.
    """

    __slots__ = ("__weakref__", "_entries", "get", "lock")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # held for dict updates only, never across an await
        self._entries: dict[asyncio.AbstractEventLoop, E] = {}
        #: The entry of a loop, or None: lock-free.
        self.get: Callable[[asyncio.AbstractEventLoop], E | None] = self._entries.get

    def __len__(self) -> int:
        return len(self._entries)

    def add(
        self, loop: asyncio.AbstractEventLoop, make: Callable[[asyncio.AbstractEventLoop], E]
    ) -> E:
        """``loop``'s entry, made by ``make(loop)`` unless another thread just added one.

        Under the lock: the entries of loops closed by hand are discarded first.
        """
        with self.lock:
            entry = self._entries.get(loop)
            if entry is None:
                self.discard_closed()
                entry = self._entries[loop] = make(loop)
        return entry

    def ended(self, entry: E) -> None:
        """``entry``'s loop is ending (its end hook): forget it, if still its loop's entry."""
        with self.lock:
            self.drop(entry)

    def drop(self, entry: E) -> None:
        """Forget ``entry`` if it is still its loop's entry (called under ``lock``)."""
        if self._entries.get(entry.loop) is entry:
            del self._entries[entry.loop]

    def pop(self, loop: asyncio.AbstractEventLoop) -> E | None:
        """Remove and return ``loop``'s entry, or None (called under ``lock``)."""
        return self._entries.pop(loop, None)

    def sweep(self) -> None:
        """Discard the entries of loops closed by hand, quietly (at exit, say)."""
        with self.lock:
            self.discard_closed()

    def discard_closed(self) -> None:
        """Discard the entries of loops closed by hand (called under ``lock``)."""
        for loop in [loop for loop in self._entries if loop.is_closed()]:
            self._entries.pop(loop).discard()

    def entries(self) -> list[E]:
        """The entries now (a copy)."""
        return list(self._entries.values())

    def take_all(self) -> list[E]:
        """Remove and return every entry (called under ``lock``)."""
        entries = list(self._entries.values())
        self._entries.clear()
        return entries


class LoopOwners(Generic[OwnerT]):
    """The live owners of a kind: a forked child makes each forget, the exit sweeps each.

    Held weakly; the hooks are registered once, when this is made (at import).
    """

    __slots__ = ("_live",)

    def __init__(self) -> None:
        self._live: weakref.WeakSet[OwnerT] = weakref.WeakSet()
        # Each owner handles its own fork (as synchronicity does): a child's entries
        # start afresh.
        os.register_at_fork(after_in_child=self._forget_all)
        atexit.register(self._sweep_all)

    def add(self, owner: OwnerT) -> None:
        """Track ``owner`` (again: a no-op)."""
        self._live.add(owner)

    def _forget_all(self) -> None:
        for owner in list(self._live):
            owner.forget()

    def _sweep_all(self) -> None:
        """At exit: drop the entries of loops closed by hand, before they are collected."""
        for owner in list(self._live):
            owner.sweep()
