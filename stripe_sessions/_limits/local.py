"""Account-wide pacing: the RateLimiter interface and the in-process limiter.

Stripe limits an *account* (25 requests/s in test mode, 100 in live mode), not a process.
A client given ``rate_limiter=`` takes a slot before every request it sends:

- a single ``create`` (live traffic) takes the next slot of the **account** budget,
  or starts up to one slot before it (:data:`LIVE_BURST`: the slot it borrows is
  taken from the batches), waiting for it at most its timeout, and is never refused
  by the limiter;
- a batch item takes a slot only when the **batch** budget (``batch_share`` of the
  rate) has one *and* the account budget has one free now, so batches fill the gaps
  that live traffic leaves and never delay it;
- a ``rate_limit`` 429 seen by any process pauses batch traffic in every process, then
  lets it recover gradually (over ``recovery`` seconds, from half its share).

Every budget is paced by GCRA (``gcra``: the booking, its tolerances, the sliced
sleeps), and the budget is asked again after each slice (never past a live call's
timeout).

:class:`LocalRateLimiter` does this within one process; ``redis_limiter`` shares it
between processes through Redis.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol, runtime_checkable

from .._safe_text import safe_repr
from .._validate import Check, number, refuse, seconds
from .gcra import LIVE_BURST, LIVE_RESERVE, LIVE_SPIN, MAX_SLEEP, book, sleep_until
from .guard import Guard
from .pause import DEFAULT_PAUSE, PAUSE, clamp_pause

__all__ = [
    "DEFAULT_RECOVERY",
    "RATE",
    "RECOVERY",
    "LocalRateLimiter",
    "RateLimiter",
    "check_share",
    "clamp_timeout",
    "rate",
]

#: Seconds over which the batch share recovers from half to whole after a 429.
DEFAULT_RECOVERY: Final = 10.0
#: The slowest budget a limiter accepts: one request an hour (``rate`` and ``rate x
#: batch_share``). Slower budgets are a mistake, and their waits overflow Redis's numbers.
MIN_RATE: Final = 1 / 3600
MAX_RATE: Final = 1e6
MAX_RECOVERY: Final = 3600.0


@runtime_checkable
class RateLimiter(Protocol):
    """What a client needs from a rate limiter (give one as ``rate_limiter=``)."""

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot: an account slot, or for ``batch`` a batch slot too.

        A live (non-batch) caller waits at most ``timeout`` seconds, then goes ahead.
        """

    async def rate_limited(self, retry_after: float | None) -> None:
        """Stripe answered ``rate_limit``: pause batch traffic everywhere."""


#: The checks of a limiter's settings (see _validate); ``batch_share``'s is
#: :func:`check_share`, as it depends on the rate.
def rate(name: str) -> Check[float]:
    """The check of a rate called ``name``: from one request an hour to a million a second."""
    return number(
        name,
        MIN_RATE,
        MAX_RATE,
        noun="number of requests per second",
        shown="from 1/3600 (one an hour) to 1,000,000",
    )


RATE: Final = rate("rate")
RECOVERY: Final = seconds("recovery", MAX_RECOVERY)
_SHARE: Final = number("batch_share", 0, 1, lo_open=True, noun="fraction")


def check_share(value: Any, rate: float) -> float:
    """``value`` as a fraction in (0, 1] that leaves ``rate`` at least one request an hour."""
    share = _SHARE(value)
    if rate * share < MIN_RATE:
        raise refuse(
            "batch_share",
            "rate x batch_share must be at least one request an hour, "
            f"got {rate:.6g} x {safe_repr(value)}",
        )
    return share


def clamp_timeout(timeout: float) -> float:
    """A caller's timeout as a usable number of seconds (NaN or negative: 0)."""
    return float(timeout) if timeout > 0 else 0.0


class LocalRateLimiter:
    """The same budgets and priorities as :class:`RedisRateLimiter`, for one process.

    Also what a :class:`RedisRateLimiter` falls back to while Redis cannot be reached.
    Every argument is checked here (``ValidationError``, a ``ValueError``, naming it):
    ``rate`` from 1/3600 to 1e6 requests/s, ``batch_share`` in (0, 1] with ``rate x
    batch_share`` at least one an hour, ``recovery`` in (0, 3600] s, ``pause`` (after
    a 429 without ``Retry-After``) in [0, 60] s.

    It works from any asyncio event loop, and from several at once (threads each
    running a loop, clients on different loops sharing it): it holds no asyncio
    object, and each booking is atomic across threads (see ``guard``).
    """

    def __init__(
        self,
        rate: float,
        *,
        batch_share: float = 0.5,
        recovery: float = DEFAULT_RECOVERY,
        pause: float = DEFAULT_PAUSE,
    ) -> None:
        self.rate = RATE(rate)
        self.batch_share = check_share(batch_share, self.rate)
        self.recovery = RECOVERY(recovery)
        self.pause = PAUSE(pause)
        self._account_next = 0.0  # when the account budget next has a slot
        self._batch_next = 0.0
        self._pause_until = 0.0
        self._last_429 = -math.inf
        # Around each booking's arithmetic only (clock read included, so bookings are
        # made in time order); never held across an await (see guard: it would block
        # other threads' loops and deadlock this loop's next booking).
        self._lock = Guard()
        # The clock and sleep (a test gives fake ones); None: time.monotonic, asyncio.sleep
        # as they are when called.
        self._clock: Callable[[], float] | None = None
        self._sleep: Callable[[float], Awaitable[object]] | None = None

    def __repr__(self) -> str:
        return (
            f"LocalRateLimiter({self.rate}, batch_share={self.batch_share}, "
            f"recovery={self.recovery}, pause={self.pause})"
        )

    def _wait(self, batch: bool, now: float) -> float:
        """Take a slot now (0.0), or say how long until one may be free (no slot taken)."""
        interval = 1.0 / self.rate
        if not batch:  # it may borrow a slot: then the batches start one slot later
            start = max(now, self._account_next - LIVE_BURST * interval)
            self._account_next = book(self._account_next, start, interval)
            return start - now
        # The batch share recovers from half to whole over `recovery` after a 429.
        since = max(0.0, now - self._last_429)
        factor = min(1.0, 0.5 + 0.5 * since / self.recovery)
        batch_interval = interval / (self.batch_share * factor)
        turn = max(self._pause_until, self._batch_next)
        if turn > now:
            return turn - now
        gap = self._account_next + LIVE_RESERVE * interval
        if gap > now:  # live traffic has it (or may come): wait for a gap
            return gap - now
        self._batch_next = book(self._batch_next, now, batch_interval)
        self._account_next = book(self._account_next, now, interval)
        return 0.0

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot (see :class:`RateLimiter`)."""
        clock = self._clock or time.monotonic
        deadline = clock() + clamp_timeout(timeout)
        while True:
            with self._lock:
                now = clock()
                wait = self._wait(batch, now)
            if wait <= 0:
                return
            if not batch:  # a live call's slot is booked: wait for it, within its timeout
                await sleep_until(min(now + wait, deadline), clock, self._sleep, LIVE_SPIN)
                return
            await (self._sleep or asyncio.sleep)(min(wait, MAX_SLEEP))  # then ask again

    async def rate_limited(self, retry_after: float | None) -> None:
        """Pause batch traffic (see :class:`RateLimiter`)."""
        with self._lock:
            now = (self._clock or time.monotonic)()
            self._pause_until = max(self._pause_until, now + clamp_pause(retry_after, self.pause))
            self._last_429 = now
