"""A limiter's Redis client: one per event loop, a cluster discovered once, none after a fork."""

from __future__ import annotations

import asyncio
import logging
import os
import weakref
from typing import Any, Final

from .redis_scripts import PAUSE_SCRIPT, SCRIPT
from .redis_url import RedisURL, url_problem

__all__ = ["REDIS_TIMEOUT", "RedisConnection", "client_problem"]

logger: Final = logging.getLogger("stripe_sessions")

#: How long a Redis call may take before the limiter falls back to pacing in-process.
REDIS_TIMEOUT: Final = 0.25
#: Every RedisConnection, so that a forked child can make each forget its parent's client.
_CONNECTIONS: Final[weakref.WeakSet[RedisConnection]] = weakref.WeakSet()
#: Redis clients a forked child inherited and must never close, read or write: closing
#: one (or letting it be garbage-collected, which closes its connections) unregisters
#: the parent's socket from the epoll set both processes share, and the parent's next
#: answer from Redis never arrives. So the child keeps them, unused, for good.
_INHERITED: Final[list[object]] = []


def _forget_all_in_child() -> None:
    for connection in list(_CONNECTIONS):
        connection.forget()


os.register_at_fork(after_in_child=_forget_all_in_child)


class RedisConnection:
    """The Redis client of one limiter and its two scripts, made on first use in each loop.

    A client whose call failed or was cancelled is closed and never used again, whatever
    state it was left in (a new one is made on next use). A forked child never touches
    its parent's client; it makes its own. Pickled (a spawned process): the settings only.
    Also the gate that batch items of one event loop queue at to ask Redis one at a time.
    """

    def __init__(self, url: RedisURL, *, cluster: bool, timeout: float) -> None:
        self.url, self.cluster, self.timeout = url, cluster, timeout
        self._start()

    def _start(self) -> None:
        """No client yet (a new connection, a spawned copy, a forked child's)."""
        self._redis: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        self._script: Any = None
        self._pause: Any = None
        self._closing: set[asyncio.Future[None]] = set()
        self._discovery: asyncio.Lock | None = None  # held while a cluster is discovered
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        _CONNECTIONS.add(self)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a spawned process): the settings, never a connection."""
        return {"url": self.url, "cluster": self.cluster, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    def forget(self) -> None:
        """After ``os.fork()``, in the child: drop the parent's client without touching it."""
        if self._redis is not None:
            _INHERITED.append(self._redis)
            _INHERITED.append((self._script, self._pause))
        _INHERITED.append(self._closing)  # the parent's tasks, never run here
        # The parent's gates are dropped too (its tasks may hold them).
        self._start()

    def gate(self) -> asyncio.Lock:
        """The lock the batch items of the running event loop queue at before asking Redis."""
        gate = self._gates.get(loop := asyncio.get_running_loop())
        if gate is None:
            gate = self._gates[loop] = asyncio.Lock()
        return gate

    def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():  # forked by something that skipped the at-fork hook
            self.forget()
        if self._redis is None or self._loop is not loop:  # one client per event loop
            self._redis = _make_client(self.url, self.cluster, self.timeout)
            self._loop = loop
            self._script = self._redis.register_script(SCRIPT)
            self._pause = self._redis.register_script(PAUSE_SCRIPT)
            self._discovery = asyncio.Lock() if self.cluster else None

    async def call(self, pause: bool, keys: list[str], args: list[Any]) -> Any:
        """Run SCRIPT (or PAUSE_SCRIPT, for ``pause``) with these keys and arguments."""
        self._connect()
        script = self._pause if pause else self._script
        # Bounded by the client's socket timeouts (redis_timeout). A cluster client may
        # also rediscover the cluster (several round trips): bounded as a whole.
        if self.cluster:
            return await asyncio.wait_for(
                self._cluster_call(script, keys, args), 4 * self.timeout + 0.5
            )
        return await script(keys=keys, args=args)

    async def _cluster_call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        redis, discovery = self._redis, self._discovery
        if discovery is not None:
            # redis-py's RedisCluster discovers the cluster on its first command, and
            # first commands made together race in it (seen: AttributeError on a node's
            # connection, one call in about 40 fresh clients): one discovery, then all.
            async with discovery:
                if self._discovery is discovery:
                    await redis.initialize()
                    self._discovery = None
        return await script(keys=keys, args=args)

    async def close(self) -> None:
        """After a failure, or when done: close the client's connections now."""
        old, self._redis = self._redis, None
        if old is not None:  # now, not when garbage-collected
            await _close_quietly(old)

    def drop(self) -> None:
        """After a cancelled call: the client may be mid-command; closed in the background."""
        old, self._redis = self._redis, None
        if old is not None:
            task = asyncio.ensure_future(_close_quietly(old))
            self._closing.add(task)  # referenced until done; aclose() waits for it
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        """Close the client, and wait for those dropped after a cancelled call."""
        if self._pid != os.getpid():
            self.forget()
        await self.close()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def client_problem(url: RedisURL, cluster: bool) -> str | None:
    """Why redis-py could not use ``url`` (checked now, not on the first request), or None."""
    problem = url_problem(url)
    if problem is not None:
        return problem
    try:
        import redis.asyncio  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        return "url: RedisRateLimiter needs redis-py: pip install 'stripe-sessions[redis]'"
    try:
        client = _make_client(url, cluster, REDIS_TIMEOUT)
        if not cluster:  # the pool makes connections lazily: make one (no I/O) to check
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
    except Exception as e:  # the message only: its traceback holds the URL in redis-py's frames
        problem = f"url: redis-py cannot use this URL: {type(e).__name__}: {url.redact(str(e))}"
    return problem


def _make_client(url: RedisURL, cluster: bool, timeout: float) -> Any:
    """A redis-py client (a RedisCluster for ``cluster``), timing out after ``timeout`` s."""
    if cluster:
        from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415 - an optional extra

        return RedisCluster.from_url(
            url.reveal(), socket_timeout=timeout, socket_connect_timeout=timeout
        )
    from redis.asyncio import Redis  # noqa: PLC0415 - an optional extra

    return Redis.from_url(url.reveal(), socket_timeout=timeout, socket_connect_timeout=timeout)


async def _close_quietly(redis: Any) -> None:
    try:
        if hasattr(redis, "connection_pool"):  # a Redis: its pool too (made by from_url)
            await redis.aclose(close_connection_pool=True)
        else:  # a RedisCluster closes its nodes' connections
            await redis.aclose()
    except Exception as e:  # a dead server: nothing more to do than drop the sockets
        logger.debug("closing a Redis client failed: %s", type(e).__name__)
