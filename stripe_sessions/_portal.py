"""The private event loop behind the sync client: one loop in a daemon thread per client.

Why one loop per client, not one per process: a client's ``close()`` can then stop and
join its own thread, deterministically, without counting users of a shared loop; and
a slow ``on_progress`` callback of one client never stalls another's requests. Clients
are meant to be long-lived (one per process or per worker), so the cost is one thread
per client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import warnings
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Generator
from typing import Any, TypeVar

__all__ = ["Portal"]

T = TypeVar("T")

_warned_running_loop = False
#: Loops a forked child inherited from its parent: kept referenced, never closed (closing
#: one would unregister the parent's sockets from the epoll set the two share).
_INHERITED: list[asyncio.AbstractEventLoop | None] = []
#: How long a Ctrl-C waits for the cancelled request to unwind, and close() for the loop.
UNWIND_TIMEOUT = 10.0


class Portal:
    """Runs coroutines on a private event loop in a background thread and waits for them.

    The loop starts lazily under a lock and is handed out only once it runs. After
    ``os.fork()`` the child gets a fresh loop (the client's connection pool forgets the
    parent's connections through its own at-fork hook). A ``weakref.finalize`` owns the loop and
    thread: ``close()``, the portal being garbage-collected (a client dropped without
    ``close()``) and interpreter exit each run ``on_close`` on the loop, stop it and
    join the thread, once.
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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._pid != os.getpid():  # forked: the parent's loop and thread are not ours
            _INHERITED.append(self._loop)
            if self._finalizer is not None:
                self._finalizer.detach()
            self._lock = threading.Lock()
            self._loop, self._thread, self._pid = None, None, os.getpid()
            self._finalizer = None
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is not None:
                return self._loop
            if self._closed:
                raise RuntimeError("This client is closed; create a new one.")
            loop = asyncio.new_event_loop()
            running = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(loop, running), name=self._name, daemon=True
            )
            thread.start()
            running.wait()
            self._thread = thread
            self._loop = loop
            # The finalizer holds the loop, the thread and on_close, never the portal.
            self._finalizer = weakref.finalize(
                self, _shutdown, loop, thread, self._on_close, self._pid
            )
            return loop

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop, running: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(running.set)
        loop.run_forever()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def _check_caller(self) -> None:
        global _warned_running_loop  # noqa: PLW0603 - warn once per process
        if self._thread is not None and threading.get_ident() == self._thread.ident:
            raise RuntimeError(
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
        loop = self._start()
        self._check_caller()
        return self._wait(loop, fn(*args, **kwargs))

    def _wait(self, loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T]) -> T:
        # Only a Ctrl-C waits for the coroutine to unwind, so the threading.Event it
        # waits on is made then, not on every call (it costs a few µs per call):
        # ``done`` and ``waiters`` are each written by one thread and read by the other,
        # in orders that make at least one of them see the other's write.
        done: list[bool] = []
        waiters: list[threading.Event] = []
        unwound: list[BaseException] = []

        async def run() -> T:
            try:
                return await coro
            except BaseException as e:
                unwound.append(e)
                raise
            finally:
                done.append(True)
                for waiter in waiters:
                    waiter.set()

        future = asyncio.run_coroutine_threadsafe(run(), loop)
        try:
            return future.result()
        except KeyboardInterrupt as interrupt:
            # Ctrl-C: cancel the request on the loop, let it unwind, then re-raise,
            # with what the unwinding said (a batch's key, so it can be run again).
            future.cancel()
            finished = threading.Event()
            waiters.append(finished)
            if not done:
                finished.wait(UNWIND_TIMEOUT)
            for inner in unwound:
                _carry(inner, interrupt)
            raise
        except concurrent.futures.CancelledError:
            raise asyncio.CancelledError() from None

    def iterate(self, agen: AsyncIterator[T]) -> Generator[T, None, None]:
        """Drive an async iterator from sync code, one item per round trip to the loop."""
        loop = self._start()
        self._check_caller()
        try:
            while True:
                try:
                    yield self._wait(loop, _anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            aclose = getattr(agen, "aclose", None)
            if aclose is not None and self._loop is not None and not loop.is_closed():
                self._wait(loop, aclose())

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def close(self) -> None:
        """Run ``on_close`` on the loop, stop the loop and join its thread. Idempotent."""
        with self._lock:
            self._closed = True
            thread, finalizer = self._thread, self._finalizer
            self._loop = self._thread = self._finalizer = None
        if thread is not None and thread is threading.current_thread():
            raise RuntimeError("close() was called from the client's own event loop thread")
        attached = finalizer.detach() if finalizer is not None else None
        if attached is not None:
            _, _, (loop, thread, on_close, pid), _ = attached
            _shutdown(loop, thread, on_close, pid, strict=True)


def _shutdown(
    loop: asyncio.AbstractEventLoop,
    thread: threading.Thread,
    on_close: Callable[[], Coroutine[Any, Any, None]],
    pid: int,
    strict: bool = False,
) -> None:
    """Close the client on its loop, stop the loop, join the thread (the portal's finalizer).

    ``strict`` (an explicit ``close()``) raises what closing raised; from the garbage
    collector or at exit nothing can be raised to, so nothing is.
    """
    if pid != os.getpid() or loop.is_closed():  # a forked child: the parent's, not ours
        return
    if thread is threading.current_thread():
        # Garbage-collected on its own loop thread: it cannot wait for itself.
        async def close_then_stop() -> None:
            try:
                await on_close()
            finally:
                loop.stop()

        loop.create_task(close_then_stop())
        return
    try:
        asyncio.run_coroutine_threadsafe(on_close(), loop).result(UNWIND_TIMEOUT)
    except Exception:  # the loop is stopped and the thread joined whatever happened
        if strict:
            raise
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already stopped and closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(UNWIND_TIMEOUT)


def _carry(source: BaseException, target: BaseException) -> None:
    batch_key = getattr(source, "batch_key", None)
    if batch_key is not None:
        target.batch_key = batch_key  # type: ignore[attr-defined]
    for note in getattr(source, "__notes__", ()):
        if hasattr(target, "add_note"):
            target.add_note(note)


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
