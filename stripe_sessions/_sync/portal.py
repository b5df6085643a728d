"""The private event loop behind the sync client: one loop in a daemon thread per client.

Why one loop per client, not one per process: a client's ``close()`` can then stop and
join its own thread, deterministically, without counting users of a shared loop; and
a slow ``on_progress`` callback of one client never stalls another's requests. Clients
are meant to be long-lived (one per process or per worker), so the cost is one thread
per client.

Nothing here waits on itself. Code can run on the loop's own thread without being
asked to: ``on_progress``, and the garbage collector, which finalizes whatever it
collects on whichever thread triggered it (a sync stream iterator, a whole client).
Cleanup asked for on a loop thread is therefore scheduled on the loop, never waited
for; every other wait is bounded, or ends when the loop ends (see :class:`_Loop`).
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

from .._lifecycle import CLOSE_GRACE, ClientClosedError, LoopThreadError, refused

__all__ = ["Portal"]

T = TypeVar("T")

_warned_running_loop = False
#: Loops (and their streams) a forked child inherited from its parent: kept referenced,
#: never closed (closing one would unregister the parent's sockets from the epoll set the
#: two share, and the parent's loop thread does not exist in the child to run anything).
_INHERITED: list[object] = []
#: How long a Ctrl-C waits for the cancelled request to unwind, and close() for the loop.
UNWIND_TIMEOUT = 10.0
#: Tasks a loop thread scheduled to clean up after itself (kept referenced until done).
_CLEANUPS: set[asyncio.Task[Any]] = set()


class _LoopThread(threading.Thread):
    """A portal's loop thread: code running on one must never block on a loop."""


class _Loop:
    """One running loop, its thread, and the calls waiting on it from other threads.

    When the loop ends, every call still waiting is ended: its task is cancelled while
    the loop can still run it, and a call whose task never started is cancelled after
    the loop closed. ``stopping`` (set first) and ``pending`` are each written by one
    thread and read by the other, in orders that make at least one see the other's
    write, so no call can slip between the two and wait forever.
    """

    __slots__ = ("loop", "pending", "pid", "stopping", "streams", "thread")

    def __init__(self, name: str, running: threading.Event) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = _LoopThread(target=_run, args=(self, running), name=name, daemon=True)
        self.pid = os.getpid()
        self.pending: set[concurrent.futures.Future[Any]] = set()
        self.stopping = False
        #: The async streams sync iterators drive: closed one by one when the loop ends.
        self.streams: weakref.WeakSet[Any] = weakref.WeakSet()

    def alive(self) -> bool:
        """Whether calls can still be run on this loop (not stopping, not another process's)."""
        return not self.stopping and self.pid == os.getpid()


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
        self._state: _Loop | None = None
        self._pid = os.getpid()
        self._closed = False
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def _start(self) -> _Loop:
        if self._pid != os.getpid():  # forked: the parent's loop and thread are not ours
            _INHERITED.append(self._state)
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
            running = threading.Event()
            state = _Loop(self._name, running)
            state.thread.start()
            running.wait()
            self._state = state
            # The finalizer holds the loop's state and on_close, never the portal.
            self._finalizer = weakref.finalize(self, _shutdown, state, self._on_close)
            return state

    def _check_caller(self, state: _Loop) -> None:
        global _warned_running_loop  # noqa: PLW0603 - warn once per process
        if state.thread is threading.current_thread():
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
            return _wait(state, fn(*args, **kwargs))
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
                    item = _wait(state, _anext(agen))
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
            _close_stream(state, agen)

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
            _shutdown(state, on_close or own_close, timeout, strict=True)


def _wait(state: _Loop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the loop and wait for it (a caller's thread, never the loop's)."""
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

    job = run()
    try:
        future = asyncio.run_coroutine_threadsafe(job, state.loop)
    except RuntimeError:  # the loop is closed: the client was closed meanwhile
        job.close()
        coro.close()
        raise refused() from None
    pending = state.pending
    pending.add(future)
    if state.stopping:  # the loop is ending: it may never run this (see _Loop)
        future.cancel()
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
        if state.alive():
            raise asyncio.CancelledError() from None
        # The loop ended under this call: the client was closed (or collected).
        if not done:  # never started: close both, or each warns "never awaited"
            for unstarted in (job, coro):
                with contextlib.suppress(Exception):
                    unstarted.close()
        error = _closed_under(unwound)
        if state.thread is not threading.current_thread():
            state.thread.join(UNWIND_TIMEOUT)  # nothing left behind once it raises
        raise error from None
    finally:
        pending.discard(future)


def _run(state: _Loop, running: threading.Event) -> None:
    """The loop thread: run until stopped, then end everything still on the loop."""
    loop = state.loop
    asyncio.set_event_loop(loop)
    loop.call_soon(running.set)
    try:
        loop.run_forever()
    finally:
        state.stopping = True
        try:
            _cancel_all(loop)
            # One by one: shutdown_asyncgens closes every generator at once, a stream
            # and the batch inside it too ("aclose(): ... already running").
            for stream in list(state.streams):
                with contextlib.suppress(Exception):  # bounded; a failure is the stream's
                    loop.run_until_complete(asyncio.wait_for(_aclose(stream), UNWIND_TIMEOUT))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
            # A call submitted before the loop closed whose task never started.
            for future in list(state.pending):
                future.cancel()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel every task and let it unwind (as ``asyncio.run`` does), in bounded rounds.

    Each round also runs the callbacks submitted meanwhile, which may start new tasks.
    """
    for _ in range(10):
        tasks = asyncio.all_tasks(loop)
        if not tasks:
            loop.run_until_complete(asyncio.sleep(0))  # run what was submitted last
            if not asyncio.all_tasks(loop):
                return
            continue
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.wait(tasks, timeout=UNWIND_TIMEOUT))


def _shutdown(
    state: _Loop,
    on_close: Callable[[], Coroutine[Any, Any, None]],
    timeout: float = CLOSE_GRACE + UNWIND_TIMEOUT,
    strict: bool = False,
) -> None:
    """Close the client on its loop, stop the loop, join the thread (the portal's finalizer).

    ``strict`` (an explicit ``close()``) raises what closing raised; from the garbage
    collector or at exit nothing can be raised to, so nothing is. On a portal's loop
    thread (this one's, from ``on_progress`` or the collector; or another's, whose
    collector found this portal) nothing waits: the close is scheduled on the loop.
    """
    loop, thread = state.loop, state.thread
    if not state.alive() or loop.is_closed():  # a forked child's (the parent's), or ending
        return
    if isinstance(threading.current_thread(), _LoopThread):

        async def close_then_stop() -> None:
            try:
                await on_close()
            finally:
                loop.stop()

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_schedule, loop, close_then_stop)
        return
    try:
        asyncio.run_coroutine_threadsafe(on_close(), loop).result(timeout)
    except Exception:  # the loop is stopped and the thread joined whatever happened
        if strict:
            raise
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already stopped and closed
            loop.call_soon_threadsafe(loop.stop)
        thread.join(UNWIND_TIMEOUT)


def _schedule(loop: asyncio.AbstractEventLoop, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    task = loop.create_task(fn())
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)


def _close_stream(state: _Loop, agen: AsyncIterator[Any]) -> None:
    """Close the async stream behind a sync iterator, from whatever thread finalizes it."""
    state.streams.discard(agen)
    aclose = getattr(agen, "aclose", None)
    if aclose is None:
        return
    if state.pid != os.getpid():  # a forked child: the stream is the parent's, keep it
        _INHERITED.append(agen)
        return
    if not state.alive():  # the loop is ending: it closes its streams itself
        return
    if threading.current_thread() is state.thread:
        # It cannot wait for itself. Dropping the stream is enough: once unreferenced,
        # asyncio's async-generator finalizer schedules its aclose() on the loop (doing
        # it here as well would run two aclose() at once).
        return
    with contextlib.suppress(ClientClosedError):  # the client closed under it: done
        _wait(state, _aclose(agen))


def _closed_under(unwound: list[BaseException]) -> ClientClosedError:
    """The error of a call whose loop ended under it: the client was closed meanwhile."""
    error = ClientClosedError(
        "The client was closed while this call was running; a batch can be run again "
        "with its batch_key to create nothing twice"
    )
    for inner in unwound:
        batch_key = getattr(inner, "batch_key", None)
        if batch_key is not None:
            error.batch_key = batch_key
    return error


def _carry(source: BaseException, target: BaseException) -> None:
    """Put on a Ctrl-C what the interrupted call can be retried with, as attribute and note.

    A batch's ``batch_key`` (and its notes); a single call's ``idempotency_key``
    (``InFlight.run`` put it on the cancellation): its request may have been sent.
    """
    batch_key = getattr(source, "batch_key", None)
    if batch_key is not None:
        target.batch_key = batch_key  # type: ignore[attr-defined]
    for note in getattr(source, "__notes__", ()):
        _add_note(target, note)
    key = getattr(source, "idempotency_key", None)
    if (
        isinstance(key, str)
        and batch_key is None
        and getattr(target, "idempotency_key", None) is None
    ):
        target.idempotency_key = key  # type: ignore[attr-defined]
        _add_note(
            target,
            "stripe_sessions: the request may have been sent: retry with "
            f"idempotency_key={key!r} to create nothing twice",
        )


def _add_note(target: BaseException, note: str) -> None:
    if hasattr(target, "add_note"):
        target.add_note(note)
    else:  # Python 3.10: the list add_note keeps (see _batch.mark_batch_key)
        target.__notes__ = [*getattr(target, "__notes__", ()), note]  # type: ignore[attr-defined]


async def _aclose(agen: Any) -> None:
    try:
        await agen.aclose()
    except RuntimeError as e:  # asyncio's finalizer (the stream was collected) got there first
        if "already running" not in str(e):
            raise


async def _anext(agen: AsyncIterator[T]) -> T:
    return await agen.__anext__()
