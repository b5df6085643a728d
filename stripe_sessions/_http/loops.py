"""One event loop's share of a ConnectionPool: its aiohttp session, its calls, its end.

An aiohttp session, its connector and every socket in it belong to the loop they were
made on, and so do the tasks of the calls in flight. A client used from several loops
(``asyncio.run`` twice, a loop per test, threads each running a loop) therefore keeps
one :class:`LoopPool` per loop, made on that loop's first call.

A pool closes with its loop. On its first call it starts a tiny async generator
(``_loop_end.start_end_hook``), which asyncio registers with the loop (as it does every async
generator); ``asyncio.run``, ``asyncio.Runner`` (pytest-asyncio, anyio), uvicorn and the
sync client's loop all close a loop's async generators before closing it
(``loop.shutdown_asyncgens()``), and this one closes the pool's session there, on its
own loop, while it can still be awaited. A loop closed without that (``loop.close()``
by hand) leaves a session that cannot be closed any more: :func:`discard_quietly`
marks it closed and closes its sockets, so nothing warns when it is collected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import AsyncGenerator, Callable, Coroutine
from typing import Any

import aiohttp

from .._lifecycle import CLOSE_GRACE, InFlight
from .._loop_end import close_socket, shut_down, start_end_hook, weakly

__all__ = ["LoopPool", "close_on", "closed_calls", "discard_quietly"]


class _Holder:
    """The session of one loop, shared by its LoopPool and its end-of-loop generator.

    The generator holds this, not the LoopPool: a pool dropped while its loop runs
    still has its session closed (the loop's finalizer closes the generator).
    """

    __slots__ = ("owned", "session")

    def __init__(self, owned: bool) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.owned = owned

    async def aclose(self) -> None:
        session, self.session = self.session, None
        if session is not None and self.owned and not session.closed:
            await session.close()

    def discard(self) -> None:
        session, self.session = self.session, None
        if session is not None and self.owned:
            discard_quietly(session)


async def _after_calls(calls: InFlight, holder: _Holder) -> None:
    """The end hook's close: the calls still in flight on this loop end first (up to
    ``CLOSE_GRACE`` seconds), then the session closes.

    ``shutdown_asyncgens`` closes every async generator of the loop at once, so an
    app's generator whose ``finally`` creates a session runs alongside this hook:
    closing the session under its request failed it (``APIConnectionError``). The
    pool is forgotten first (``ended``), so a call started now gets a pool of its own.
    """
    me = asyncio.current_task()
    tasks = [task for task in calls.calls if task is not me and not task.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=CLOSE_GRACE)
    await holder.aclose()


class LoopPool:
    """What a ConnectionPool keeps for one event loop: the session and the calls in flight."""

    __slots__ = ("__weakref__", "_end", "_holder", "calls", "loop")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        calls: InFlight,
        owned: bool,
        on_end: Callable[[LoopPool], None] | None,
    ) -> None:
        self.loop = loop
        #: The calls in flight on this loop (``aclose`` lets them finish, then cuts them).
        self.calls = calls
        self._holder = _Holder(owned)
        self._end: AsyncGenerator[None, None] | None = None
        # Called on ``loop``, running: register the end hook now; unless the loop has
        # closed its async generators already (a call from an async generator's
        # ``finally`` or a thread during ``asyncio.run``'s shutdown): one started then
        # would never be closed, and asyncio warns (ResourceWarning). Such a pool is
        # dropped quietly once its loop is closed, as one of a loop closed by hand.
        if on_end is not None and not shut_down(loop):
            close = functools.partial(_after_calls, calls, self._holder)
            self._end = start_end_hook(close, weakly(self, on_end))

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session sent with on this loop, once made."""
        return self._holder.session

    @session.setter
    def session(self, session: aiohttp.ClientSession) -> None:
        self._holder.session = session

    async def aclose(self, grace: float) -> None:
        """On this pool's loop: end its calls (``InFlight.close``), close the session."""
        await self.calls.close(grace)
        await self._holder.aclose()
        end, self._end = self._end, None
        if end is not None:
            await end.aclose()  # nothing left to close: only its registration ends

    def discard(self) -> None:
        """The loop is closed: drop what cannot be closed any more, without a warning."""
        self._holder.discard()
        self._end = None  # a closed loop's finalizer does nothing with it

    def __del__(self) -> None:
        # A pool of a loop closed by hand, dropped with its client: quietly (see module).
        with contextlib.suppress(Exception):
            if self.loop.is_closed():
                self._holder.discard()


def discard_quietly(session: aiohttp.ClientSession) -> None:
    """Drop a session whose loop is closed: marked closed, its sockets closed, no warning.

    Nothing of it can be awaited any more. aiohttp's connector, asked to close on a
    closed loop, only marks itself closed (so neither it nor the session warns when
    collected); the sockets of its connections would stay open, and asyncio warns
    ``unclosed transport`` when it collects each one, since it closes a transport's
    socket in a callback of its loop, which a closed loop never runs. So that
    callback's last step is done here. Hand-written on asyncio's private attributes,
    each looked up with a default: nothing public closes a transport without its loop.
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    transports: list[Any] = []
    for conns in getattr(connector, "_conns", {}).values():
        transports.extend(proto.transport for proto, _ in conns)
    transports.extend(proto.transport for proto in getattr(connector, "_acquired", ()))
    waiter = connector.close()  # on a closed loop: marks it closed, returns a no-op
    with contextlib.suppress(Exception):
        _drive(waiter)
    for transport in transports:
        with contextlib.suppress(Exception):
            close_socket(transport)


def _drive(awaitable: Any) -> None:
    """Finish an awaitable that awaits nothing (aiohttp's no-op close), without a loop."""
    steps = awaitable.__await__()
    try:
        steps.send(None)
    except StopIteration:
        return
    steps.close()


def closed_calls() -> InFlight:
    """The calls of a closed pool: each refused (with its key), nothing sent."""
    calls = InFlight()
    calls.closing = True
    return calls


def close_on(
    loop: asyncio.AbstractEventLoop,
    close: Callable[[float], Coroutine[Any, Any, None]],
    grace: float,
) -> asyncio.Future[None]:
    """Run ``close(grace)`` on ``loop`` (running in another thread); a future of this loop.

    The coroutine is made on ``loop`` itself, so a loop that stops before it runs leaves
    none "never awaited" (its pool's end hook closes the session then). What the close
    raises is not this loop's to see: it ends the future all the same.
    """
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def finished(task: asyncio.Task[None]) -> None:
        if not task.cancelled():
            task.exception()  # retrieved: a failed close of another loop's pool is dropped
        done.set_result(None)

    def start() -> None:
        if done.set_running_or_notify_cancel():
            loop.create_task(close(grace)).add_done_callback(finished)

    try:
        loop.call_soon_threadsafe(start)
    except RuntimeError:  # closed meanwhile: the pool is discarded when collected
        done.set_result(None)
    return asyncio.wrap_future(done)
