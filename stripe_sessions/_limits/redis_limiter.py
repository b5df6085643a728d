"""RedisRateLimiter: the budgets of ``local`` kept in Redis, shared by every process.

Every process and machine pointing at the same Redis and ``name`` shares one budget:
the scripts (``redis_scripts``) keep it, a ``redis_connection`` runs them, and
``redis_health`` says when to pace in-process instead.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

from .._errors import ValidationError
from .._validate import flag, number, text, whole
from .gcra import LIVE_SPIN, MAX_SLEEP, sleep_until
from .local import (
    DEFAULT_RECOVERY,
    RATE,
    RECOVERY,
    LocalRateLimiter,
    check_share,
    clamp_timeout,
    rate,
)
from .pause import DEFAULT_PAUSE, PAUSE, clamp_pause
from .redis_connection import REDIS_TIMEOUT, RedisConnection, client_problem
from .redis_health import RedisHealth
from .redis_scripts import budget_args, budget_keys, pause_args
from .redis_url import RedisURL

__all__ = ["RedisRateLimiter"]

MAX_REDIS_TIMEOUT: Final = 60.0
MAX_NAME: Final = 200
#: More processes than this leave any rate's fallback below one request an hour (1e6/s x
#: 3600 s), and more than a float holds would overflow dividing the rate by them.
MAX_PROCESSES: Final = 10**10
#: The checks of the settings only a RedisRateLimiter has (see _validate).
_CLUSTER: Final = flag("cluster")
_NAME: Final = text(
    "name",
    max_len=MAX_NAME,
    ascii=False,
    forbid="{}",
    must=f"must be 1 to {MAX_NAME} printable characters without {{ or }}",
    show=True,
)
_PROCESSES: Final = whole("processes", 1, MAX_PROCESSES)
_REDIS_TIMEOUT: Final = number("redis_timeout", 0.001, MAX_REDIS_TIMEOUT, noun="number of seconds")
_FALLBACK_RATE: Final = rate("fallback_rate")


class RedisRateLimiter:
    """One rate budget for every process that uses the same Redis and ``name``.

    ::

        limiter = ss.RedisRateLimiter("redis://localhost:6379/0", rate=90, name="acct_live")
        async with ss.AsyncClient(rate_limiter=limiter) as stripe: ...

    ``rate`` is the account's requests per second (stay under Stripe's: 100 live, 25
    test); batches together get at most ``batch_share`` of it, live calls the rest and
    any gap. ``cluster=True`` talks to a Redis Cluster (redis-py's ``RedisCluster``;
    every key of one budget shares the hash tag ``{name}``). Needs the ``redis`` extra
    (``pip install stripe-sessions[redis]``).

    If Redis cannot be reached or answers slower than ``redis_timeout``, the limiter
    logs one warning and paces in this process at ``fallback_rate`` (default: ``rate``
    divided by ``processes``, the number of processes you expect to share the budget),
    trying Redis again every few seconds; a create never fails because of it. No wait
    is slept in one piece: at most a second, then Redis is asked again. A slot further
    ahead than the settings explain (a clock that went back on a failover, a stale key)
    is logged and repaired, not obeyed. It works from any asyncio event loop: one
    Redis connection per loop it is used from (``asyncio.run`` twice, a loop per test,
    threads each running a loop), made on that loop's first call and closed when the
    loop ends; ``aclose()`` closes them all. A forked child never touches the
    parent's connections; it opens its own. The URL's credentials never appear in a repr, a log
    or an error. Every argument is checked here (``ValidationError``, a ``ValueError``).
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        name: str = "default",
        batch_share: float = 0.5,
        processes: int = 4,
        fallback_rate: float | None = None,
        recovery: float = DEFAULT_RECOVERY,
        redis_timeout: float = REDIS_TIMEOUT,
        pause: float = DEFAULT_PAUSE,
        cluster: bool = False,
    ) -> None:
        # The caller's string leaves this frame at once: a traceback rendered with
        # locals (of any error below) shows only the masked form.
        url = RedisURL(url)  # type: ignore[assignment]
        self._url: RedisURL = url  # type: ignore[assignment]
        if self._url.problem is not None:
            raise ValidationError(self._url.problem, param="url")
        self.cluster = _CLUSTER(cluster)
        if cluster and self._url.scheme == "unix":
            raise ValidationError(
                "url: a Redis Cluster is reached by redis:// or rediss://, not unix://",
                param="url",
            )
        self.name = _NAME(name)
        processes = _PROCESSES(processes)
        self.rate = RATE(rate)
        self.batch_share = check_share(batch_share, self.rate)
        self.recovery = RECOVERY(recovery)
        self.pause = PAUSE(pause)
        self.redis_timeout = _REDIS_TIMEOUT(redis_timeout)
        if fallback_rate is None:
            fallback, fallback_param = self.rate / processes, "processes"
        else:
            fallback, fallback_param = _FALLBACK_RATE(fallback_rate), "fallback_rate"
        problem: str | None = None
        try:
            self.fallback = LocalRateLimiter(
                fallback, batch_share=self.batch_share, recovery=self.recovery, pause=self.pause
            )
        except ValidationError as e:
            problem = e.message.partition(": ")[2]
        if problem is not None:  # raised here, without the chain of the one above
            raise ValidationError(
                f"{fallback_param}: the fallback rate ({fallback:.6g}/s) {problem}",
                param=fallback_param,
            )
        problem = client_problem(self._url, cluster)
        if problem is not None:
            raise ValidationError(problem, param="url")
        self._keys = budget_keys(self.name)
        self._connection = RedisConnection(self._url, cluster=cluster, timeout=self.redis_timeout)
        self._health = RedisHealth(self.name, self._url, self.fallback.rate)
        # (monotonic) when Redis said the batch's next turn comes. Shared by every loop
        # and thread without a lock: a stale value only makes an item ask Redis early
        # (Redis decides), or wait for a turn that was just given (at most a slice).
        self._batch_turn = 0.0

    def __repr__(self) -> str:
        # getattr: also a limiter whose __init__ raised (a traceback rendered with locals)
        url, get = getattr(self, "_url", None), getattr
        return (
            f"RedisRateLimiter({url.masked if url else '?'!r}, rate={get(self, 'rate', '?')}, "
            f"name={get(self, 'name', '?')!r}, batch_share={get(self, 'batch_share', '?')}, "
            f"cluster={get(self, 'cluster', '?')})"
        )

    @property
    def repairs(self) -> int:
        """How many implausible slots this limiter found in Redis and repaired."""
        return self._health.repairs

    @property
    def _warned(self) -> bool:  # pacing in-process since a failure was logged
        return self._health.warned

    async def _call(self, pause: bool, keys: list[str], args: list[Any]) -> Any:
        """Run SCRIPT (or PAUSE_SCRIPT) in Redis: one round trip, bounded by redis_timeout."""
        return await self._connection.call(pause, keys, args)

    def _args(self, batch: bool) -> list[Any]:
        """SCRIPT's ARGV for a live call or a batch item of this limiter."""
        return budget_args(batch, self.rate, self.batch_share, self.recovery)

    async def _ask(self, batch: bool) -> float | None:
        """Seconds to wait from Redis (0: slot taken), or None when Redis failed."""
        if self._health.down():
            return None
        cancelled = False
        try:
            answer = await self._call(False, self._keys, self._args(batch))
            wait, repaired, worst = float(answer[0]), int(answer[1]), float(answer[2])
            if len(answer) > 3:  # a batch slot taken: the next batch turn, from now
                self._batch_turn = time.monotonic() + float(answer[3]) / 1000.0
        except asyncio.CancelledError:
            cancelled = True
        except Exception as e:  # unreachable, slow, or refusing: pace in-process instead
            failure = e
        else:
            self._health.answered(repaired, worst)
            return wait / 1000.0
        if cancelled:  # a fresh one: no frame of redis-py's (and its locals) in its traceback
            raise asyncio.CancelledError
        if _running_loop() is None:
            # Closed by the collector, its loop gone (closed by hand mid-call): what
            # redis-py raised then (no running event loop) says nothing about Redis.
            return None
        self._health.failed(failure)  # (its client is retired: see RedisConnection.call)
        return None

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot (see :class:`RateLimiter`): every sleep at most a second."""
        if not batch:
            deadline = time.monotonic() + clamp_timeout(timeout)
            wait = await self._ask(False)
            if wait is None:
                await self.fallback.acquire(
                    batch=False, timeout=max(0.0, deadline - time.monotonic())
                )
            elif wait > 0:  # the slot is booked: wait for it, within the call's timeout
                await sleep_until(min(time.monotonic() + wait, deadline), spin=LIVE_SPIN)
            return
        # One batch item of this process (and event loop) at a time asks Redis, the
        # others queue here in order: a grant costs one round trip per process instead
        # of one per waiting item, and a live call's command is not queued behind them.
        async with self._connection.gate():
            while True:
                # Redis said when the batch's next turn comes: ask then (or after a
                # slice), not before.
                if (early := self._batch_turn - time.monotonic()) > 0:
                    await asyncio.sleep(min(early, MAX_SLEEP))
                wait = await self._ask(True)
                if wait is None:
                    await self.fallback.acquire(batch=True, timeout=0.0)
                    return
                if wait <= 0:
                    return
                # Not this item's turn (a pause, or another process took it): ask again
                # then, or after a slice. A wait is never obeyed longer than a slice.
                await asyncio.sleep(min(wait, MAX_SLEEP))

    async def rate_limited(self, retry_after: float | None) -> None:
        """Pause batch traffic in every process (see :class:`RateLimiter`)."""
        pause = clamp_pause(retry_after, self.pause)
        await self.fallback.rate_limited(retry_after)
        if self._health.down():
            return
        cancelled = False
        try:
            await self._call(True, self._keys[2:], pause_args(pause, self.recovery))
        except asyncio.CancelledError:
            cancelled = True
        except Exception as e:
            failure = e
        else:
            return
        if cancelled:
            raise asyncio.CancelledError
        self._health.failed(failure)

    async def aclose(self) -> None:
        """Close the Redis connections of every event loop (new ones are made on next use).

        This loop's at once (or as soon as its calls in flight are done with it);
        another running loop's (a thread's) on that loop, waited for up to
        ``4 x redis_timeout + 1`` s; a closed loop's quietly. Each loop's connection
        also closes by itself when its loop ends (``asyncio.run``, ``asyncio.Runner``).
        """
        await self._connection.aclose()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    """The running event loop, or None (a coroutine closed by the collector runs on none)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
