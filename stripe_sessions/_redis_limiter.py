"""RedisRateLimiter: the budgets of ``_limiter`` kept in Redis, shared by every process.

Every process and machine pointing at the same Redis and ``name`` shares one budget.
Written as one small Lua script run through redis-py rather than with a rate-limiting
library: pyrate-limiter and limits both offer fixed or sliding windows and token
buckets that answer "allowed or not" for one key, while this needs two budgets with a
priority between them, a shared pause, and the wait until the next slot (one round trip
per request) - see :data:`SCRIPT` for the algorithm.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING, Any, Final

from ._config import mask_url
from ._errors import ValidationError, redact
from ._limiter import (
    DEFAULT_PAUSE,
    DEFAULT_RECOVERY,
    LocalRateLimiter,
    check_rate,
    check_share,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["PAUSE_SCRIPT", "SCRIPT", "RedisRateLimiter"]

logger: Final = logging.getLogger("stripe_sessions")

#: How long a Redis call may take before the limiter falls back to pacing in-process.
REDIS_TIMEOUT: Final = 0.25
#: After a Redis failure, how long the in-process fallback is used before trying again.
RETRY_REDIS_AFTER: Final = 5.0


#: The shared state, in milliseconds of Redis's own clock (``TIME``, the same for every
#: process): KEYS = account next slot, batch next slot, batch pause end, last 429.
#: ARGV = 1 for a batch item, account interval, batch interval, recovery (ms).
#: GCRA-like: each budget is the time of its next free slot. A live call books the
#: account's next slot and returns how long to wait for it. A batch item takes a slot
#: only when its own budget's turn has come (after any pause), and the account has one
#: free now; otherwise it takes nothing and returns how long to wait before asking
#: again. So live calls are never queued behind batch items.
SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local batch = ARGV[1] == '1'
local interval = tonumber(ARGV[2])
local acct = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = 60000
if not batch then
  local start = math.max(now, acct)
  redis.call('SET', KEYS[1], tostring(start + interval), 'PX', ttl)
  return tostring(start - now)
end
local last = tonumber(redis.call('GET', KEYS[4]) or '-1e18')
local recovery = tonumber(ARGV[4])
local factor = math.min(1, 0.5 + 0.5 * (now - last) / recovery)
local binterval = tonumber(ARGV[3]) / factor
local turn = math.max(tonumber(redis.call('GET', KEYS[3]) or '0'),
                      tonumber(redis.call('GET', KEYS[2]) or '0'))
if turn > now then return tostring(turn - now) end
if acct > now then return tostring(acct - now) end
redis.call('SET', KEYS[2], tostring(now + binterval), 'PX', ttl)
redis.call('SET', KEYS[1], tostring(now + interval), 'PX', ttl)
return '0'
"""

#: Record a rate_limit 429: pause batch traffic until now + ARGV[1] ms (or later).
PAUSE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local until_ = now + tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if until_ > current then redis.call('SET', KEYS[1], tostring(until_), 'PX', 120000) end
redis.call('SET', KEYS[2], tostring(now), 'PX', 120000)
return 1
"""


class RedisRateLimiter:
    """One rate budget for every process that uses the same Redis and ``name``.

    ::

        limiter = ss.RedisRateLimiter("redis://localhost:6379/0", rate=90, name="acct_live")
        async with ss.AsyncClient(rate_limiter=limiter) as stripe: ...

    ``rate`` is the account's requests per second (stay under Stripe's: 100 live, 25
    test); batches together get at most ``batch_share`` of it, live calls the rest and
    any gap. Needs the ``redis`` extra (``pip install stripe-sessions[redis]``).

    If Redis cannot be reached or answers slower than ``redis_timeout``, the limiter
    logs one warning and paces in this process at ``fallback_rate`` (default: ``rate``
    divided by ``processes``, the number of processes you expect to share the budget),
    trying Redis again every few seconds; a create never fails because of it. The URL's
    password never appears in a repr or a log.
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
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValidationError("url: must be a redis://, rediss:// or unix:// URL", param="url")
        if not isinstance(name, str) or not name or not name.isprintable():
            raise ValidationError("name: must be a non-empty printable string", param="name")
        if isinstance(processes, bool) or not isinstance(processes, int) or processes < 1:
            raise ValidationError("processes: must be a whole number >= 1", param="processes")
        self._url = url
        self.rate = check_rate("rate", rate)
        self.batch_share = check_share(batch_share)
        self.name = name
        self.recovery = recovery
        self.redis_timeout = redis_timeout
        fallback = self.rate / processes if fallback_rate is None else fallback_rate
        self.fallback = LocalRateLimiter(fallback, batch_share=batch_share, recovery=recovery)
        prefix = f"stripe_sessions:rate:{name}"
        self._keys = [f"{prefix}:account", f"{prefix}:batch", f"{prefix}:pause", f"{prefix}:429"]
        self._redis: Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._script: Any = None
        self._pause: Any = None
        self._down_until = 0.0
        self._warned = False

    def __repr__(self) -> str:
        return (
            f"RedisRateLimiter({mask_url(self._url)!r}, rate={self.rate}, name={self.name!r}, "
            f"batch_share={self.batch_share})"
        )

    def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:  # one client per event loop
            from redis.asyncio import Redis  # noqa: PLC0415 - an optional extra

            self._redis = Redis.from_url(
                self._url,
                socket_timeout=self.redis_timeout,
                socket_connect_timeout=self.redis_timeout,
            )
            self._loop = loop
            self._script = self._redis.register_script(SCRIPT)
            self._pause = self._redis.register_script(PAUSE_SCRIPT)
        return self._redis

    async def _failed(self, e: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        old, self._redis = self._redis, None
        if old is not None:  # close its connections now, not when garbage-collected
            await _close_quietly(old)
        if not self._warned:
            self._warned = True
            logger.warning(
                "rate limiter %r: Redis at %s failed (%s); pacing in this process at "
                "%.3g requests/s until it is back",
                self.name,
                mask_url(self._url),
                redact(f"{type(e).__name__}: {e}", self._url)[:200],
                self.fallback.rate,
            )

    async def _ask(self, batch: bool) -> float | None:
        """Seconds to wait from Redis (0: slot taken), or None when Redis failed."""
        if time.monotonic() < self._down_until:
            return None
        try:
            self._connection()
            interval = 1000.0 / self.rate
            # Bounded by the client's socket timeouts (redis_timeout), not by cancelling:
            # a command cancelled mid-way leaves its connection in an unknown state.
            answer = await self._script(
                keys=self._keys,
                args=["1" if batch else "0", interval, interval / self.batch_share,
                      self.recovery * 1000.0],
            )  # fmt: skip
        except Exception as e:  # unreachable, slow, or refusing: pace in-process instead
            failure = e
        else:
            if self._warned:
                self._warned = False
                logger.warning("rate limiter %r: Redis is back; pacing is shared again", self.name)
            return float(answer) / 1000.0
        await self._failed(failure)
        return None

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot (see :class:`RateLimiter`)."""
        deadline = time.monotonic() + timeout
        while True:
            wait = await self._ask(batch)
            if wait is None:
                await self.fallback.acquire(
                    batch=batch, timeout=max(0.0, deadline - time.monotonic())
                )
                return
            if wait <= 0:
                return
            if not batch:  # the slot is booked: wait for it, within the call's timeout
                await asyncio.sleep(min(wait, max(0.0, deadline - time.monotonic())))
                return
            # Not this batch item's turn: ask again then (a little jitter spreads askers).
            await asyncio.sleep(wait * (1.0 + 0.1 * random.random()))

    async def rate_limited(self, retry_after: float | None) -> None:
        """Pause batch traffic in every process (see :class:`RateLimiter`)."""
        pause = DEFAULT_PAUSE if retry_after is None else min(retry_after, 60.0)
        await self.fallback.rate_limited(retry_after)
        if time.monotonic() < self._down_until:
            return
        try:
            self._connection()
            await self._pause(keys=[self._keys[2], self._keys[3]], args=[pause * 1000.0])
        except Exception as e:
            failure = e
        else:
            return
        await self._failed(failure)

    async def aclose(self) -> None:
        """Close the Redis connection (a new one is made on next use)."""
        redis, self._redis = self._redis, None
        if redis is not None:
            await _close_quietly(redis)


async def _close_quietly(redis: Any) -> None:
    try:
        await redis.aclose(close_connection_pool=True)
    except Exception as e:  # a dead server: nothing more to do than drop the sockets
        logger.debug("closing a Redis client failed: %s", type(e).__name__)
