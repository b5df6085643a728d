"""Account-wide pacing: the RateLimiter interface and the in-process limiter.

Stripe limits an *account* (25 requests/s in test mode, 100 in live mode), not a process.
A client given ``rate_limiter=`` takes a slot before every request it sends:

- a single ``create`` (live traffic) takes the next slot of the **account** budget,
  waiting for it at most its timeout, and is never refused by the limiter;
- a batch item takes a slot only when the **batch** budget (``batch_share`` of the
  rate) has one *and* the account budget has one free now, so batches fill the gaps
  that live traffic leaves and never delay it;
- a ``rate_limit`` 429 seen by any process pauses batch traffic in every process, then
  lets it recover gradually (over ``recovery`` seconds, from half its share).

:class:`LocalRateLimiter` does this within one process; ``_redis_limiter`` shares it
between processes through Redis.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final, Protocol, runtime_checkable

from ._errors import ValidationError, safe_repr

__all__ = [
    "DEFAULT_PAUSE",
    "DEFAULT_RECOVERY",
    "LocalRateLimiter",
    "RateLimiter",
    "check_rate",
    "check_share",
]

#: Pause of batch traffic after a rate_limit 429 with no Retry-After (Stripe sends none).
DEFAULT_PAUSE: Final = 1.0
#: Seconds over which the batch share recovers from half to whole after a 429.
DEFAULT_RECOVERY: Final = 10.0


@runtime_checkable
class RateLimiter(Protocol):
    """What a client needs from a rate limiter (give one as ``rate_limiter=``)."""

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot: an account slot, or for ``batch`` a batch slot too.

        A live (non-batch) caller waits at most ``timeout`` seconds, then goes ahead.
        """

    async def rate_limited(self, retry_after: float | None) -> None:
        """Stripe answered ``rate_limit``: pause batch traffic everywhere."""


def check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1e6:
        raise ValidationError(
            f"{name}: must be a positive number of requests per second, got {safe_repr(value)}",
            param=name,
        )
    return float(value)


def check_share(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValidationError(
            f"batch_share: must be a fraction in (0, 1], got {safe_repr(value)}",
            param="batch_share",
        )
    return float(value)


class LocalRateLimiter:
    """The same budgets and priorities as :class:`RedisRateLimiter`, for one process.

    Also what a :class:`RedisRateLimiter` falls back to while Redis cannot be reached.
    """

    def __init__(
        self,
        rate: float,
        *,
        batch_share: float = 0.5,
        recovery: float = DEFAULT_RECOVERY,
    ) -> None:
        self.rate = check_rate("rate", rate)
        self.batch_share = check_share(batch_share)
        self.recovery = recovery
        self._account_next = 0.0  # when the account budget next has a slot
        self._batch_next = 0.0
        self._pause_until = 0.0
        self._last_429 = -1e18

    def _wait(self, batch: bool, now: float) -> float:
        """Take a slot now (0.0), or say how long until one may be free (no slot taken)."""
        interval = 1.0 / self.rate
        if not batch:
            start = max(now, self._account_next)
            self._account_next = start + interval
            return start - now
        # The batch share recovers from half to whole over `recovery` after a 429.
        factor = min(1.0, 0.5 + 0.5 * (now - self._last_429) / self.recovery)
        batch_interval = interval / (self.batch_share * factor)
        turn = max(self._pause_until, self._batch_next)
        if turn > now:
            return turn - now
        if self._account_next > now:  # live traffic has it: wait for a gap
            return self._account_next - now
        self._batch_next = now + batch_interval
        self._account_next = now + interval
        return 0.0

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot (see :class:`RateLimiter`)."""
        deadline = time.monotonic() + timeout
        while True:
            now = time.monotonic()
            wait = self._wait(batch, now)
            if wait <= 0:
                return
            if not batch:  # a live call's slot is booked: wait for it, within its timeout
                await asyncio.sleep(min(wait, max(0.0, deadline - now)))
                return
            await asyncio.sleep(wait)

    async def rate_limited(self, retry_after: float | None) -> None:
        """Pause batch traffic (see :class:`RateLimiter`)."""
        now = time.monotonic()
        pause = DEFAULT_PAUSE if retry_after is None else min(retry_after, 60.0)
        self._pause_until = max(self._pause_until, now + pause)
        self._last_429 = now
