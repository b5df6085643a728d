"""One event loop's Redis client for a limiter: made on the loop's first call, closed with it.

A redis.asyncio client, its connections and its locks belong to the loop they were
made on. A limiter used from several loops (``asyncio.run`` twice, a loop per test,
threads each running a loop, clients on different loops sharing one limiter) keeps
one :class:`LoopRedis` per loop, as the connection pool keeps one aiohttp session per
loop (``_http.loops``), and closes each the same way:

- with its loop: on its first call it starts a tiny async generator that asyncio
  registers with the loop; ``asyncio.run``, ``asyncio.Runner``, uvicorn and the sync
  client's loop close a loop's async generators before closing it, and this one then
  closes the client, on its own loop, while that can still be awaited;
- when retired (a failed or cancelled call, ``aclose()``): at once if no call of its
  loop is using it, else when the last one ends, never under a call in flight;
- once: a second close (the loop's end while a retired client closes) waits for the
  first, and a close cut short (its task cancelled as ``asyncio.run`` ends) aborts
  the connections it had not closed yet (:func:`abort_quietly`), none left open;
- a loop closed by hand (``loop.close()`` without ``shutdown_asyncgens``) leaves a
  client that cannot be awaited any more: :func:`discard_quietly` closes its sockets
  as the loop would have and marks it closed, so nothing warns when it is collected.

The end hook and the socket closing are :mod:`stripe_sessions._loop_end`'s, shared with
the connection pool's ``_http.loops``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable
from typing import Any, Final

from .._loop_end import close_socket, shut_down, start_end_hook, weakly
from .redis_scripts import PAUSE_SCRIPT, SCRIPT

__all__ = ["LoopRedis", "abort_quietly", "close_quietly", "discard_quietly"]

logger: Final = logging.getLogger("stripe_sessions")


class _Holder:
    """One loop's client, shared by its LoopRedis and its end-of-loop generator.

    The generator holds this, not the LoopRedis: a limiter dropped while its loop
    runs still has its client closed (the loop's finalizer closes the generator).
    ``done`` ends once the client is closed or discarded (any thread may wait on it).
    """

    __slots__ = ("closing", "done", "redis")

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.closing = False
        self.done: concurrent.futures.Future[None] = concurrent.futures.Future()

    async def aclose(self) -> None:
        """Close the client, once, on its loop; a second caller waits for the first's close.

        ``redis`` is let go only once the close is over: a close cancelled before it
        began (its task cancelled as ``asyncio.run`` ends) leaves it to the loop's end
        hook, or to ``discard``. One cut short aborts what it had not closed.
        """
        redis = self.redis
        if redis is None:
            return  # closed: nothing awaited (the end hook then ends in one step)
        if self.closing:
            await asyncio.shield(asyncio.wrap_future(self.done))
            return
        self.closing = True
        try:
            await close_quietly(redis)
        finally:
            abort_quietly(redis)  # whatever a close cut short (or redis-py) left open
            self.redis = None
            self._finish()

    def discard(self) -> None:
        redis, self.redis = self.redis, None
        if redis is not None:
            discard_quietly(redis)
            self._finish()

    def _finish(self) -> None:
        with contextlib.suppress(concurrent.futures.InvalidStateError):
            self.done.set_result(None)


class LoopRedis:
    """A limiter's Redis client on one event loop: scripts, gate, calls using it, its end.

    Made on its loop, running. ``users``, ``retired`` and the close are only ever
    touched on that loop's thread (another thread asks through ``call_soon_threadsafe``),
    so they need no lock.
    """

    __slots__ = ("__weakref__", "_end", "_holder", "discovery", "gate", "loop", "pause",
                 "retired", "script", "users")  # fmt: skip

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        redis: Any,
        cluster: bool,
        on_end: Callable[..., None],
    ) -> None:
        self.loop = loop
        self._holder = _Holder(redis)
        self.script: Any = redis.register_script(SCRIPT)
        self.pause: Any = redis.register_script(PAUSE_SCRIPT)
        #: The lock the batch items of this loop queue at before asking Redis.
        self.gate = asyncio.Lock()
        #: Held while a cluster is discovered (None: not a cluster, or discovered).
        self.discovery: asyncio.Lock | None = asyncio.Lock() if cluster else None
        self.users = 0  # calls of this loop using the client now
        self.retired = False  # never used for a new call; closed when the last one ends
        # No end hook on a loop past ``shutdown_asyncgens`` (a call from an async
        # generator's ``finally``): asyncio would warn. Dropped quietly once it is closed.
        self._end: AsyncGenerator[None, None] | None = None
        if not shut_down(loop):
            self._end = start_end_hook(self._holder.aclose, weakly(self, on_end))

    @property
    def redis(self) -> Any:
        """The client (None once closed)."""
        return self._holder.redis

    @property
    def done(self) -> concurrent.futures.Future[None]:
        """Ends once the client is closed (or discarded with its closed loop)."""
        return self._holder.done

    def retire(self) -> None:
        """On this loop: no new call uses it; closed now if idle, else after the last call."""
        self.retired = True
        if self.users == 0:
            self._close_soon()

    def leave(self) -> None:
        """On this loop: a call stopped using the client (closed if it was the last, retired)."""
        self.users -= 1
        if self.retired and self.users == 0:
            self._close_soon()

    async def leave_and_close(self) -> None:
        """:meth:`leave`, awaiting the close if this call was the last (after a failure)."""
        self.users -= 1
        if self.retired and self.users == 0:
            await self._close()

    def _close_soon(self) -> None:
        if self._holder.redis is not None and not self._holder.closing:
            task = self.loop.create_task(self._close())
            _CLOSING.add(task)  # referenced until done
            task.add_done_callback(_CLOSING.discard)

    async def _close(self) -> None:
        """Close the client, then end the end hook, on this loop.

        The client first, alone: the loop's end may close the hook meanwhile (``asyncio.run``
        ending as a cancelled call retires it), and the hook's own close then waits for
        this one (``_Holder.aclose``). Once the client is closed the hook has nothing
        left to await, so ending it takes one step and cannot be caught half-way; left
        suspended, it would be collected with its LoopRedis, and asyncio's finalizer
        would make a task to close it that a loop closed by hand never runs ("Task was
        destroyed but it is pending!"). A hook the loop's end is closing right now
        raises RuntimeError ("already running"): that close finishes it.
        """
        await self._holder.aclose()
        end, self._end = self._end, None
        if end is not None:
            with contextlib.suppress(RuntimeError):
                await end.aclose()

    def discard(self) -> None:
        """The loop is closed: drop what cannot be closed any more, without a warning."""
        self._holder.discard()
        self._end = None  # a closed loop's finalizer does nothing with it

    def __del__(self) -> None:
        # Dropped with a loop closed by hand (its limiter collected): quietly (see module).
        with contextlib.suppress(Exception):
            if self.loop.is_closed():
                self._holder.discard()


#: Closes under way (kept referenced until done: the loop holds tasks only weakly).
_CLOSING: Final[set[asyncio.Task[None]]] = set()


async def close_quietly(redis: Any) -> None:
    """Close a client's connections now, on its loop; a dead server is only logged (debug)."""
    try:
        if hasattr(redis, "connection_pool"):  # a Redis: its pool too (made by from_url)
            await redis.aclose(close_connection_pool=True)
        else:  # a RedisCluster closes its nodes' connections
            await redis.aclose()
    except Exception as e:  # a dead server: nothing more to do than drop the sockets
        logger.debug("closing a Redis client failed: %s", type(e).__name__)


def abort_quietly(redis: Any) -> None:
    """On its running loop: abort every connection a close left open, mark each closed.

    A close cut short (cancelled) leaves connections redis-py never reached: each
    transport is aborted (off the loop's selector at once, its socket closed in the
    loop's next callback, which ``asyncio.run`` and every runner still run) and each
    connection marked closed, so that neither redis-py nor asyncio warns when
    collecting it. Private attributes, looked up with defaults, as in ``discard_quietly``.
    """
    for connection in _connections(redis):
        writer = getattr(connection, "_writer", None)
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.transport.abort()
        with contextlib.suppress(Exception):
            connection._writer = connection._reader = None


def discard_quietly(redis: Any) -> None:
    """Drop a client whose loop is closed: its sockets closed, itself marked closed, no warning.

    Nothing of it can be awaited any more, and asyncio closes a transport's socket in a
    callback of its loop, which a closed loop never runs: so that last step is done
    here, and each connection and stream is marked closed so that neither redis-py nor
    asyncio warns when collecting it. Hand-written on private attributes (each looked
    up with a default): nothing public closes a connection without its loop.
    """
    for connection in _connections(redis):
        writer = getattr(connection, "_writer", None)
        with contextlib.suppress(Exception):
            if writer is not None:
                close_socket(writer.transport)
        with contextlib.suppress(Exception):
            connection._writer = connection._reader = None
    if getattr(redis, "_initialize", True) is False:  # a RedisCluster: "closed"
        redis._initialize = True


def _connections(redis: Any) -> list[Any]:
    """Every connection of a Redis (its pool's) or a RedisCluster (its nodes')."""
    found: list[Any] = []
    pool = getattr(redis, "connection_pool", None)
    if pool is not None:
        found += getattr(pool, "_available_connections", [])
        found += getattr(pool, "_in_use_connections", [])
    nodes = getattr(redis, "nodes_manager", None)
    for cache in ("nodes_cache", "startup_nodes"):
        for node in getattr(nodes, cache, {}).values():
            found += getattr(node, "_connections", [])
    return found
