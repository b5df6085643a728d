"""The private event loop behind the sync client: one loop in a daemon thread per client.

Why one loop per client, not one per process: a client's ``close()`` can then stop and
join its own thread, deterministically, without counting users of a shared loop; and
a slow ``on_progress`` callback of one client never stalls another's requests. Clients
are meant to be long-lived (one per process or per worker), so the cost is one thread
per client.

The loop itself, its thread and the waits on it are :mod:`.loop`'s.
"""

from __future__ import annotations

import asyncio
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, TypeVar

from .._lifecycle import CLOSE_GRACE, ClientClosedError, LoopThreadError, refused
from .loop import UNWIND_TIMEOUT, Loop, close_stream, inherit, next_item, shutdown, wait

__all__ = ["Portal"]

T = TypeVar("T")

_warned_running_loop = False


class Portal:
    """Runs coroutines on a private event loop in a background thread and waits for them.

    The loop starts lazily under a lock and is handed out only once it runs. After
    ``os.fork()`` the child gets a fresh loop (the client's connection pool forgets the
    parent's connections through its own at-fork hook). A ``weakref.finalize`` owns the loop and
    thread: ``close()``, the portal being garbage-collected (a client dropped without
    ``close()``) and interpreter exit each run ``on_close`` on the loop, stop it and
    join the thread, once (on the loop's own thread: schedule it, without waiting).
    """

    def __init__(
        self,
        on_close: Callable[[], Coroutine[Any, Any, None]],
        *,
        name: str = "stripe-sessions-loop",
        warn_in_loop: bool = True,
    ) -> None:
        self._on_close = on_close
        self._name = name
        self._warn_in_loop = warn_in_loop
        self._lock = threading.Lock()
        self._state: Loop | None = None
        self._pid = os.getpid()
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _start(self) -> Loop:
        if self._pid != os.getpid():  # forked: the parent's loop and thread are not ours
            inherit(self._state)
            if self._finalizer is not None:
                self._finalizer.detach()
            self._lock = threading.Lock()
            self._state, self._pid = None, os.getpid()
            self._finalizer = None
        state = self._state
        if state is not None:
            return state
        with self._lock:
            if self._state is not None:
                return self._state
            if self._closed:
                raise refused()
            state = Loop(self._name)  # its thread runs the loop once this returns
            self._state = state
            # The finalizer holds the loop's state and on_close, never the portal.
            self._finalizer = weakref.finalize(self, shutdown, state, self._on_close)
            return state

    def _check_caller(self, state: Loop) -> None:
        global _warned_running_loop  # noqa: PLW0603 - warn once per process
        if state.on_thread():
            raise LoopThreadError(
                "A stripe_sessions.Client was called from its own event loop thread (for "
                "example from an on_progress callback); that would deadlock. Use the "
                "AsyncClient from async code."
            )
        # asyncio._get_running_loop (in asyncio.__all__) says None where
        # get_running_loop raises: no exception raised and caught on every call.
        if asyncio._get_running_loop() is None:
            return
        if self._warn_in_loop and not _warned_running_loop:
            _warned_running_loop = True
            warnings.warn(
                "stripe_sessions.Client was called from a thread with a running event loop; "
                "it works, but blocks that loop while it waits. Use "
                "stripe_sessions.AsyncClient and 'await' in async code.",
                RuntimeWarning,
                stacklevel=4,
            )

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop and return its result (or raise its error)."""
        try:
            state = self._start()
            self._check_caller(state)
            return wait(state, fn(*args, **kwargs))
        except ClientClosedError as e:
            # Refused here, before the call made its options: it still carries its key.
            if e.idempotency_key is None and isinstance(kwargs.get("idempotency_key"), str):
                e.idempotency_key = kwargs["idempotency_key"]
            raise

    def iterate(self, agen: AsyncIterator[T]) -> Generator[T, None, None]:
        """Drive an async iterator from sync code, one item per round trip to the loop."""
        batch_key = getattr(agen, "batch_key", None)  # a BatchStream knows it from the start
        try:
            state = self._start()
        except ClientClosedError as e:  # closed before the stream's first item
            e.batch_key = batch_key
            raise
        self._check_caller(state)
        state.streams.add(agen)
        try:
            while True:
                try:
                    item = wait(state, next_item(agen))
                except StopAsyncIteration:
                    return
                except ClientClosedError as e:  # the client closed: say which batch it was
                    if e.batch_key is None:
                        e.batch_key = batch_key
                    raise
                batch_key = getattr(item, "batch_key", None)
                yield item
        finally:
            # Runs wherever the generator is closed: on any thread, in the garbage
            # collector (which may run on the loop thread itself), at exit, in a child.
            close_stream(state, agen)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def close(
        self,
        on_close: Callable[[], Coroutine[Any, Any, None]] | None = None,
        timeout: float = CLOSE_GRACE + UNWIND_TIMEOUT,
    ) -> None:
        """Run ``on_close`` on the loop, stop the loop and join its thread. Idempotent.

        ``on_close`` replaces the portal's own for this close, and may take up to
        ``timeout`` seconds. Called on the loop's own thread (from ``on_progress``), it
        schedules all that on the loop and returns at once.
        """
        with self._lock:
            self._closed = True
            finalizer = self._finalizer
            self._state = self._finalizer = None
        attached = finalizer.detach() if finalizer is not None else None
        if attached is not None:
            _, _, (state, own_close), _ = attached
            shutdown(state, on_close or own_close, timeout, strict=True)
