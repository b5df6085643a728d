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

Every budget is paced by GCRA (the generic cell rate algorithm) with a small
tolerance, :data:`PACING_TOLERANCE` of a slot (see :func:`book`): the next slot is booked
from the previous *booked* slot, so a start that comes up to a quarter of a slot late
(the event loop woke late, Redis answered late) costs nothing, while a start after a
long stall books from the stall's end and starts one request, never a burst.
Live calls alone may start one slot early (:data:`LIVE_BURST`); the batches pay it back.

Every wait is slept in slices of at most :data:`MAX_SLEEP` (and never past a live
call's timeout), and the budget is asked again after each slice.

:class:`LocalRateLimiter` does this within one process; ``_redis_limiter`` shares it
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

__all__ = [
    "DEFAULT_PAUSE",
    "DEFAULT_RECOVERY",
    "LIVE_BURST",
    "LIVE_RESERVE",
    "LIVE_SPIN",
    "MAX_PAUSE",
    "MAX_SLEEP",
    "PACING_TOLERANCE",
    "PAUSE",
    "RATE",
    "RECOVERY",
    "LocalRateLimiter",
    "RateLimiter",
    "book",
    "check_share",
    "clamp_pause",
    "clamp_timeout",
    "rate",
]

#: Pause of batch traffic after a rate_limit 429 with no Retry-After (Stripe sends none).
DEFAULT_PAUSE: Final = 1.0
#: Seconds over which the batch share recovers from half to whole after a 429.
DEFAULT_RECOVERY: Final = 10.0
#: The longest pause a 429 (its Retry-After, or ``pause=``) can cause.
MAX_PAUSE: Final = 60.0
#: The longest single sleep of a limiter or the batch pacer: then the budget is asked again.
MAX_SLEEP: Final = 1.0
#: The slowest budget a limiter accepts: one request an hour (``rate`` and ``rate x
#: batch_share``). Slower budgets are a mistake, and their waits overflow Redis's numbers.
MIN_RATE: Final = 1 / 3600
MAX_RATE: Final = 1e6
MAX_RECOVERY: Final = 3600.0
#: The pacing tolerance (GCRA's limit), as a fraction of one slot: the one constant the
#: batch pacer, :class:`LocalRateLimiter` and the Redis script all pace by. A start up to
#: this late keeps the schedule; so two starts are never closer than 3/4 of a slot, ``n``
#: starts never span less than ``n - 1.25`` slots, and no window of time holds more than
#: one start beyond what exact spacing would put in it (see :func:`book`) - for the batch
#: pacer, and for the batch items of the limiters; their live calls may also borrow a
#: slot (:data:`LIVE_BURST`). Measured
#: (benchmarks/pacing.py, a busy 2-core machine): an event loop's sleeps at 50/s end
#: 1 ms late at p50, 2-4 ms at p90, 5-10 ms at p99; a tenth of a slot (2 ms) lost
#: 0.5-3% of the rate, a quarter 0-0.3%.
PACING_TOLERANCE: Final = 0.25
#: The part of the tolerance kept for live calls, as a fraction of one slot: a batch item
#: takes an account slot only once the account's next slot is this far past, so right
#: after a batch start the account's next slot is at most ``1 - LIVE_RESERVE`` slots
#: ahead: a live call arriving then starts at once (it borrows a slot,
#: :data:`LIVE_BURST`), and a second one arriving within that slot (another process's)
#: is booked at most ``1 - LIVE_RESERVE`` slots ahead, leaving the rest of its slot for a
#: late wake-up or a Redis round trip. The batch keeps ``PACING_TOLERANCE -
#: LIVE_RESERVE`` (an eighth of a slot) to make up its own lateness.
LIVE_RESERVE: Final = PACING_TOLERANCE / 2
#: How far before the account's next slot a live call may start, in slots (GCRA with a
#: larger limit for live calls only): ``start = max(now, next - LIVE_BURST x interval)``,
#: and the next slot still moves on by one interval from where it was (:func:`book`), so
#: the batches behind it start one slot later and the long-run rate is unchanged. Why:
#: live calls arrive independently (from several processes), and without it the second
#: of two arriving within a slot waited for the slot after the first's, up to a slot
#: and 7/8 (measured at 50/s, four processes: 24 ms p99 booked, one slot being 20 ms).
#: The cost, exactly: a live call may start together with another start, so ``n``
#: account starts never span less than ``n - 1.25 - LIVE_BURST`` slots and no window of
#: time holds more than two starts beyond exact spacing (was one); a run of starts
#: ending in a batch start still spans at least ``n - 1.25 + LIVE_RESERVE`` slots (batch
#: items are never early), and live calls arriving together beyond the first two still
#: queue one slot apart. Any ``t`` seconds hold at most ``rate x t + 2.25`` starts, so a
#: token bucket refilled at ``rate`` and holding 3 requests or more never refuses them
#: (FakeStripe's holds a second's worth; Stripe states its limits per second and does
#: not document its algorithm).
LIVE_BURST: Final = 1.0
#: A live call's sleep for its booked slot ends this early (seconds), then the loop
#: yields until the slot: an event loop's timers end a millisecond or more late
#: (``select`` rounds to whole milliseconds, and a busy machine wakes a sleeper late),
#: which a live call would otherwise add to its wait. Live calls are few: the CPU this
#: costs is bounded by this much per live call.
LIVE_SPIN: Final = 0.002


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
PAUSE: Final = seconds("pause", MAX_PAUSE, zero=True)
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


def clamp_pause(retry_after: float | None, default: float, cap: float = MAX_PAUSE) -> float:
    """The pause after a ``rate_limit`` 429: its ``Retry-After``, else ``default``, at most ``cap``.

    The one rule for every pause a 429 causes (the limiters' and a batch's pacer's): a
    missing, negative or NaN ``Retry-After`` means ``default``.
    """
    if retry_after is None or not retry_after >= 0:  # None or NaN
        return min(default, cap)
    return min(float(retry_after), cap)


def clamp_timeout(timeout: float) -> float:
    """A caller's timeout as a usable number of seconds (NaN or negative: 0)."""
    return float(timeout) if timeout > 0 else 0.0


def book(next_slot: float, now: float, interval: float) -> float:
    """The next free slot after granting one at ``now``: GCRA.

    ``now`` is at least ``next_slot`` for a batch item, and at least ``next_slot -
    LIVE_BURST x interval`` for a live call (which borrows a slot: the next one is still
    one interval after ``next_slot``).

    The slot after the one just *booked*, unless that one passed more than the
    tolerance ago (``PACING_TOLERANCE x interval``, a quarter of a slot): then one
    interval after ``now`` less the tolerance. So lateness up to the tolerance (a
    wake-up a few ms late on a busy machine) is made up and the pace holds; a longer
    stall is lost, and after it one start is granted, then the next one at least
    ``interval - tolerance`` later: never a burst. Over any run of grants at their
    booked slot, ``t[j] - t[i] >= (j - i) x interval - tolerance`` (for a constant
    interval); with live calls borrowing up to ``LIVE_BURST`` slots, ``t[j] - t[i] >=
    (j - i - LIVE_BURST) x interval - tolerance``.
    """
    return max(next_slot, now - PACING_TOLERANCE * interval) + interval


async def sleep_until(
    end: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] | None = None,
    spin: float = 0.0,
) -> None:
    """Sleep until ``clock()`` reaches ``end``, in slices of at most :data:`MAX_SLEEP`.

    ``sleep``: None for ``asyncio.sleep`` (as it is when called). ``spin``: end the
    sleep this much early, then yield to the event loop (``asyncio.sleep(0)``) until
    ``end``, so that a timer's lateness is not added (live calls; with a ``sleep`` of
    its own, a fake clock, no spin: it would never advance).
    """
    if sleep is not None:
        spin = 0.0
    while (left := end - spin - clock()) > 0:  # a deadline: sliced, re-checked
        await (sleep or asyncio.sleep)(min(left, MAX_SLEEP))
    # A deliberate spin to the exact time (at most `spin`, plus a slow loop's last turn).
    while clock() < end:  # noqa: ASYNC110
        await asyncio.sleep(0)


class LocalRateLimiter:
    """The same budgets and priorities as :class:`RedisRateLimiter`, for one process.

    Also what a :class:`RedisRateLimiter` falls back to while Redis cannot be reached.
    Every argument is checked here (``ValidationError``, a ``ValueError``, naming it):
    ``rate`` from 1/3600 to 1e6 requests/s, ``batch_share`` in (0, 1] with ``rate x
    batch_share`` at least one an hour, ``recovery`` in (0, 3600] s, ``pause`` (after
    a 429 without ``Retry-After``) in [0, 60] s.
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
        now = (self._clock or time.monotonic)()
        self._pause_until = max(self._pause_until, now + clamp_pause(retry_after, self.pause))
        self._last_429 = now
