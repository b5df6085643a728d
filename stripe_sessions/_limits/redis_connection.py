"""A limiter's Redis clients: one per event loop, a cluster discovered once, none after a fork."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from typing import Any, Final

from .._loop_registry import LoopOwners, LoopRegistry
from .redis_loops import LoopRedis
from .redis_url import RedisURL, url_problem

__all__ = ["REDIS_TIMEOUT", "RedisConnection", "client_problem"]

#: How long a Redis call may take before the limiter falls back to pacing in-process.
REDIS_TIMEOUT: Final = 0.25
#: Every RedisConnection: a forked child makes each forget its parent's clients, and at
#: exit each drops the clients of loops closed by hand, before they are collected (quietly).
_CONNECTIONS: Final[LoopOwners[RedisConnection]] = LoopOwners()
#: Redis clients a forked child inherited and must never close, read or write: closing
#: one (or letting it be garbage-collected, which closes its connections) unregisters
#: the parent's socket from the epoll set both processes share, and the parent's next
#: answer from Redis never arrives. So the child keeps them, unused, for good.
_INHERITED: Final[list[object]] = []


class RedisConnection:
    """The Redis clients of one limiter: one per event loop, made on that loop's first call.

    Kept in a :class:`LoopRegistry` (a plain dict under a lock). An entry leaves it
    when its loop ends (its end hook, see ``redis_loops``) or is retired; one whose
    loop was closed by hand is discarded when the next loop is added, at ``aclose()``
    and at exit. So after any number of ``asyncio.run`` calls only the clients of live
    loops remain.

    A client whose call failed or was cancelled is retired: never used for a new call,
    closed once its loop's other calls are done with it (a new one is made on next
    use). A forked child never touches its parent's clients; it makes its own.
    Pickled (a spawned process): the settings only.
    """

    def __init__(self, url: RedisURL, *, cluster: bool, timeout: float) -> None:
        self.url, self.cluster, self.timeout = url, cluster, timeout
        self._start()

    def _start(self) -> None:
        """No client yet (a new connection, a spawned copy, a forked child's)."""
        self._pid = os.getpid()
        self._loops: LoopRegistry[LoopRedis] = LoopRegistry()
        self._retired: list[LoopRedis] = []  # retired, not yet closed (under its lock)
        _CONNECTIONS.add(self)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a spawned process): the settings, never a connection."""
        return {"url": self.url, "cluster": self.cluster, "timeout": self.timeout}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._start()

    @property
    def loops(self) -> int:
        """How many event loops this limiter keeps a Redis client for."""
        return len(self._loops)

    def forget(self) -> None:
        """After ``os.fork()``, in the child: drop the parent's clients without touching them."""
        # Their end hooks and gates too: the parent's tasks may hold them.
        _INHERITED.append((self._loops.entries(), self._retired))
        self._start()

    def _here(self) -> LoopRedis:
        """The running loop's client, made on its first call."""
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():  # forked by something that skipped the at-fork hook
            self.forget()
        here = self._loops.get(loop)
        if here is None:
            here = self._loops.add(loop, self._make)
        return here

    def _make(self, loop: asyncio.AbstractEventLoop) -> LoopRedis:
        """``loop``'s client (under the lock, once the registry swept its closed loops)."""
        self._sweep_retired()
        redis = _make_client(self.url, self.cluster, self.timeout)
        return LoopRedis(loop, redis, self.cluster, self._loops.ended)

    def gate(self) -> asyncio.Lock:
        """The lock the batch items of the running event loop queue at before asking Redis.

        A retired client's gate still serializes the items that queued at it; items
        arriving after take the new client's: for a moment two ask at once (harmless:
        the script is atomic; the gate only saves round trips).
        """
        return self._here().gate

    def sweep(self) -> None:
        """Drop the clients of loops closed by hand, quietly (at exit, say)."""
        with self._loops.lock:
            self._sweep()

    def _sweep(self) -> None:
        self._loops.discard_closed()
        self._sweep_retired()

    def _sweep_retired(self) -> None:
        for entry in self._retired:
            if entry.loop.is_closed():
                entry.discard()
        self._retired = [e for e in self._retired if not e.done.done()]

    def _retire(self, entry: LoopRedis) -> None:
        """On ``entry``'s loop: never use it again (closed once its calls are done)."""
        with self._loops.lock:
            self._loops.drop(entry)
            if not entry.retired:
                self._retired.append(entry)  # until closed: aclose() waits for it
        entry.retire()

    async def call(self, pause: bool, keys: list[str], args: list[Any]) -> Any:
        """Run SCRIPT (or PAUSE_SCRIPT, for ``pause``) with these keys and arguments.

        A failed or cancelled call retires the client, whatever state it was left in.
        """
        here = self._here()
        here.users += 1
        script = here.pause if pause else here.script
        try:
            # Bounded by the client's socket timeouts (redis_timeout). A cluster client
            # may also rediscover the cluster (several round trips): bounded as a whole.
            if self.cluster:
                answer = await asyncio.wait_for(
                    _cluster_call(here, script, keys, args), 4 * self.timeout + 0.5
                )
            else:
                answer = await script(keys=keys, args=args)
        except Exception:
            self._retire(here)
            await here.leave_and_close()  # the last call out closes it now
            raise
        except BaseException:  # cancelled mid-command: closed in the background
            self._retire(here)
            here.leave()
            raise
        here.leave()
        return answer

    async def aclose(self) -> None:
        """Close every loop's client (a new one is made on next use).

        This loop's: now, or once its calls in flight are done. Another running loop's:
        the same, on that loop (thread-safe), waited for up to ``4 x timeout + 1`` s.
        A closed loop's: dropped quietly. A loop neither running nor closed closes its
        client when it ends (or it is dropped when found closed).
        """
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():
            self.forget()
        with self._loops.lock:
            self._sweep()
            entries = self._loops.take_all()
            self._retired += entries  # until closed (or discarded with a closed loop)
            retired = list(self._retired)
        waits: list[concurrent.futures.Future[None]] = []
        for entry in retired:
            if entry.loop is loop:
                entry.retire()
                waits.append(entry.done)
            elif entry.loop.is_running():
                with contextlib.suppress(RuntimeError):  # closed meanwhile: discarded later
                    entry.loop.call_soon_threadsafe(entry.retire)
                    waits.append(entry.done)
        if waits:
            await asyncio.wait(
                [asyncio.wrap_future(w) for w in waits], timeout=4 * self.timeout + 1
            )


async def _cluster_call(here: LoopRedis, script: Any, keys: list[str], args: list[Any]) -> Any:
    discovery = here.discovery
    if discovery is not None:
        # redis-py's RedisCluster discovers the cluster on its first command, and
        # first commands made together race in it (seen: AttributeError on a node's
        # connection, one call in about 40 fresh clients): one discovery, then all.
        async with discovery:
            if here.discovery is discovery:
                await here.redis.initialize()
                here.discovery = None
    return await script(keys=keys, args=args)


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
