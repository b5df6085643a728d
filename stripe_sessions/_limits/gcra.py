"""GCRA pacing, shared by both limiters, the Redis script's arguments and the batch pacer.

Every budget is paced by GCRA (the generic cell rate algorithm) with a small
tolerance, :data:`PACING_TOLERANCE` of a slot (see :func:`book`): the next slot is booked
from the previous *booked* slot, so a start that comes up to a quarter of a slot late
(the event loop woke late, Redis answered late) costs nothing, while a start after a
long stall books from the stall's end and starts one request, never a burst.
Live calls alone may start one slot early (:data:`LIVE_BURST`); the batches pay it back.
Every wait is slept in slices of at most :data:`MAX_SLEEP` (:func:`sleep_until`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Final

__all__ = [
    "LIVE_BURST",
    "LIVE_RESERVE",
    "LIVE_SPIN",
    "MAX_SLEEP",
    "PACING_TOLERANCE",
    "book",
    "sleep_until",
]

#: The longest single sleep of a limiter or the batch pacer: then the budget is asked again.
MAX_SLEEP: Final = 1.0
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
