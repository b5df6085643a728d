"""One private event loop in its daemon thread: started, called from other threads, ended.

Nothing here waits on itself. Code can run on the loop's own thread without being
asked to: ``on_progress``, and the garbage collector, which finalizes whatever it
collects on whichever thread triggered it (a sync stream iterator, a whole client).
Cleanup asked for on a loop thread is therefore scheduled on the loop, never waited
for; every other wait is bounded, or ends when the loop ends (see :class:`Loop`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from .._lifecycle import CLOSE_GRACE, ClientClosedError, refused
from . import native
from .interrupts import carry, closed_under
from .native import Signal, current_ident, locked_signal, new_thread, result, signal

__all__ = ["UNWIND_TIMEOUT", "Loop", "LoopThread", "close_stream", "inherit", "next_item"]
__all__ += ["shutdown", "wait"]

T = TypeVar("T")

#: Loops (and their streams) a forked child inherited from its parent: kept referenced,
#: never closed (closing one would unregister the parent's sockets from the epoll set the
#: two share, and the parent's loop thread does not exist in the child to run anything).
_INHERITED: list[object] = []
#: How long a Ctrl-C waits for the cancelled request to unwind, and close() for the loop.
UNWIND_TIMEOUT = 10.0
#: Tasks a loop thread scheduled to clean up after itself (kept referenced until done).
_CLEANUPS: set[asyncio.Task[Any]] = set()


def inherit(obj: object) -> None:
    """Keep a loop or stream a forked child inherited referenced, and never close it."""
    _INHERITED.append(obj)


class LoopThread(threading.Thread):
    """A portal's loop thread: code running on one must never block on a loop."""


class Loop:
    """One running loop, its thread, and the calls waiting on it from other threads.

    When the loop ends, every call still waiting is ended: its task is cancelled while
    the loop can still run it, and a call whose task never started is cancelled after
    the loop closed. ``stopping`` (set first) and ``pending`` are each written by one
    thread and read by the other, in orders that make at least one see the other's
    write, so no call can slip between the two and wait forever.
    """

    __slots__ = ("ident", "loop", "pending", "pid", "stopping", "streams", "thread")

    loop: asyncio.AbstractEventLoop

    def __init__(self, name: str) -> None:
        """Start the thread and return once its loop runs (raise what making the loop raised)."""
        #: The loop thread's OS thread id while it runs (None before and after).
        self.ident: int | None = None
        self.pid = os.getpid()
        self.pending: set[concurrent.futures.Future[Any]] = set()
        self.stopping = False
        #: The async streams sync iterators drive: closed one by one when the loop ends.
        self.streams: weakref.WeakSet[Any] = weakref.WeakSet()
        running = locked_signal()  # waited for under the portal's lock
        failed: list[BaseException] = []
        # Under gevent's monkey-patching a real OS thread, not a greenlet (see .native).
        self.thread = new_thread(_run, (self, running, failed), name, LoopThread)
        self.thread.start()
        running.wait()
        if failed:
            raise failed[0]

    def alive(self) -> bool:
        """Whether calls can still be run on this loop (not stopping, not another process's)."""
        return not self.stopping and self.pid == os.getpid()

    def on_thread(self) -> bool:
        """Whether this code runs on this loop's own thread."""
        return current_ident() == self.ident


def wait(state: Loop, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the loop and wait for it (a caller's thread, never the loop's)."""
    # Only an interrupted wait waits for the coroutine to unwind, so the Signal it
    # waits on is made then, not on every call (it costs a few µs per call):
    # ``done`` and ``waiters`` are each written by one thread and read by the other,
    # in orders that make at least one of them see the other's write.
    done: list[bool] = []
    waiters: list[Signal] = []
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
    if state.stopping:  # the loop is ending: it may never run this (see Loop)
        future.cancel()
    try:
        return result(future)
    except concurrent.futures.CancelledError:
        if state.alive():
            raise asyncio.CancelledError() from None
        # The loop ended under this call: the client was closed (or collected).
        if not done:  # never started: close both, or each warns "never awaited"
            for unstarted in (job, coro):
                with contextlib.suppress(Exception):
                    unstarted.close()
        error = closed_under(unwound)
        if not state.on_thread():
            state.thread.join(UNWIND_TIMEOUT)  # nothing left behind once it raises
        raise error from None
    except BaseException as interrupt:
        if future.done() and not isinstance(interrupt, KeyboardInterrupt):
            raise  # the call's own outcome
        # The caller stopped waiting: Ctrl-C, sys.exit() from a signal handler (gunicorn's
        # quick shutdown), under gevent a gevent.Timeout or a killed greenlet. The call
        # must not go on unseen (a batch would go on creating): cancel it, let it unwind,
        # re-raise with what it said (a batch's key, a call's idempotency key).
        future.cancel()
        finished = signal()
        waiters.append(finished)
        if not done:
            finished.wait(UNWIND_TIMEOUT)
        for inner in unwound:
            carry(inner, interrupt)
        raise
    finally:
        pending.discard(future)


def _run(state: Loop, running: Signal, failed: list[BaseException]) -> None:
    """The loop thread: run until stopped, then end everything still on the loop."""
    loop: asyncio.AbstractEventLoop | None = None
    try:
        # Made on its own thread: under gevent, the loop's selector (gevent's) then
        # waits on this thread's hub, where the greenlets this loop starts (patched
        # threads: the default executor's, a batch's input reader) run meanwhile.
        state.loop = loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        state.ident = ident = current_ident()
    except BaseException as e:  # e.g. out of file descriptors: the caller raises it
        failed.append(e)
        if loop is not None:
            loop.close()
        running.set()
        return
    native.LOOP_THREADS.add(ident)
    loop.call_soon(running.set)
    try:
        while True:
            try:
                loop.run_forever()
                break  # stopped
            except (KeyboardInterrupt, SystemExit):  # an on_progress raised it: asyncio
                continue  # raises it out of the loop too; its caller has it, the loop goes on
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
            native.LOOP_THREADS.discard(ident)
            state.ident = None


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


def shutdown(
    state: Loop,
    on_close: Callable[[], Coroutine[Any, Any, None]],
    timeout: float = CLOSE_GRACE + UNWIND_TIMEOUT,
    strict: bool = False,
) -> None:
    """Close the client on its loop, stop the loop, join the thread (the portal's finalizer).

    ``strict`` (an explicit ``close()``) raises what closing raised; from the garbage
    collector or at exit nothing can be raised to, so nothing is: not even a Ctrl-C or
    ``sys.exit()`` from a signal handler (a server's second SIGINT) that interrupts the
    wait, which would only print "Exception ignored". On a portal's loop
    thread (this one's, from ``on_progress`` or the collector; or another's, whose
    collector found this portal) nothing waits: the close is scheduled on the loop.
    """
    loop, thread = state.loop, state.thread
    if not state.alive() or loop.is_closed():  # a forked child's (the parent's), or ending
        return
    if native.on_a_loop_thread():

        async def close_then_stop() -> None:
            try:
                await on_close()
            finally:
                loop.stop()

        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_schedule, loop, close_then_stop)
        return
    try:
        result(asyncio.run_coroutine_threadsafe(on_close(), loop), timeout)
    except BaseException:  # the loop is stopped and the thread joined whatever happened
        if strict:
            raise
    finally:
        with contextlib.suppress(RuntimeError):  # the loop already stopped and closed
            loop.call_soon_threadsafe(loop.stop)
        try:
            thread.join(UNWIND_TIMEOUT)
        except BaseException:
            if strict:
                raise


def _schedule(loop: asyncio.AbstractEventLoop, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    task = loop.create_task(fn())
    _CLEANUPS.add(task)
    task.add_done_callback(_CLEANUPS.discard)


def close_stream(state: Loop, agen: AsyncIterator[Any]) -> None:
    """Close the async stream behind a sync iterator, from whatever thread finalizes it."""
    state.streams.discard(agen)
    aclose = getattr(agen, "aclose", None)
    if aclose is None:
        return
    if state.pid != os.getpid():  # a forked child: the stream is the parent's, keep it
        inherit(agen)
        return
    if not state.alive():  # the loop is ending: it closes its streams itself
        return
    if state.on_thread():
        # It cannot wait for itself. Dropping the stream is enough: once unreferenced,
        # asyncio's async-generator finalizer schedules its aclose() on the loop (doing
        # it here as well would run two aclose() at once).
        return
    with contextlib.suppress(ClientClosedError):  # the client closed under it: done
        wait(state, _aclose(agen))


async def _aclose(agen: Any) -> None:
    try:
        await agen.aclose()
    except RuntimeError as e:  # asyncio's finalizer (the stream was collected) got there first
        if "already running" not in str(e):
            raise


async def next_item(agen: AsyncIterator[T]) -> T:
    """The next item of ``agen`` (a coroutine to run on the loop)."""
    return await agen.__anext__()
