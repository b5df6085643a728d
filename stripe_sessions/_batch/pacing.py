"""The batch's pacer: request starts spaced at the batch's ``rate_limit``, and its 429s."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from typing import Final

from .._limits.gcra import MAX_SLEEP, book
from .._limits.pause import DEFAULT_PAUSE, MAX_PAUSE, clamp_pause

__all__ = ["MIN_PACE", "Pacer"]

#: The pace a 429 never halves below (requests/s), unless the target itself is lower.
MIN_PACE: Final = 0.5


class Pacer:
    """Paces request starts across a batch at ``rate``: GCRA, a quarter of a slot's tolerance.

    Starts queue in arrival order; only the first of the queue waits on the clock, and
    a start is granted when it is made, by the time read then. The next turn is booked
    one interval after the previous *booked* turn (``_limits.gcra.book``), so a wake-up up
    to :data:`~stripe_sessions._limits.gcra.PACING_TOLERANCE` (a quarter) of a slot late (a
    few ms on a busy machine) costs no throughput; a longer stall (a slow callback, a GC pause)
    makes the next start late and books from then, so it starts one request, never the
    few whose turns passed. Two starts are never closer than ``0.75 / rate``, and ``n``
    starts at one pace never span less than ``(n - 1.25) / rate``. Every sleep is at
    most :data:`MAX_SLEEP`, then the clock is read again.

    A ``rate_limit`` 429 pauses every start for ``Retry-After`` (at most ``max_pause``),
    or ``pause`` without one, and halves the pace, once per *epoch*: 429s
    for attempts started before the pace was halved extend the pause but do not halve
    it again. After the pause the batch restarts at half its pace; each success of an
    attempt started since then wins back a twentieth of the target (successes of
    attempts started before the 429 do not count). ``rate=None`` never paces but
    still pauses after a 429.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        pause: float = DEFAULT_PAUSE,
        max_pause: float = MAX_PAUSE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.target = rate
        self.pause = pause
        self.max_pause = max_pause
        self.rate = rate
        #: Bumped by the first 429 of each epoch; an attempt remembers the epoch it started in.
        self.epoch = 0
        #: When the last start was granted (by ``clock``).
        self.started_at = -math.inf
        #: The pace (requests/s, None: unpaced) the last start was granted at.
        self.started_rate: float | None = rate
        self._clock = clock
        self._sleep = sleep
        self._next = -math.inf  # the earliest time the next start may be made
        self._pause_end = -math.inf
        self._queue = asyncio.Lock()  # FIFO: only the head of the queue watches the clock

    def _interval(self) -> float:
        return 1.0 / self.rate if self.rate else 0.0

    def take_now(self) -> bool:
        """Start now if nothing queues and the pace allows it; False: ``await acquire()``.

        The same grant as ``acquire`` when it would not wait, without a coroutine:
        with no pacing (``rate=None``), every start of a batch takes this path.
        """
        now = self._clock()
        if self._next > now or self._queue.locked():
            return False
        self._grant(now)
        return True

    def _grant(self, now: float) -> None:
        self._next = book(self._next, now, self._interval())
        self.started_at = now
        self.started_rate = self.rate

    async def acquire(self) -> None:
        """Wait for this start's turn, then start (in the order starts asked)."""
        async with self._queue:
            while True:
                now = self._clock()
                if self._next <= now:
                    self._grant(now)
                    return
                # Bounded: a 429 may move the turn later, never is a stale wait obeyed.
                await self._sleep(min(self._next - now, MAX_SLEEP))

    def rate_limited(self, retry_after: float | None, epoch: int | None = None) -> None:
        """Stripe said ``rate_limit`` to an attempt started in ``epoch``: pause, slow down.

        ``epoch=None`` (unknown) counts as the current epoch.
        """
        pause = clamp_pause(retry_after, self.pause, self.max_pause)
        # Starts not yet made (queued or booked) wait too: the next is after the pause.
        self._pause_end = max(self._pause_end, self._clock() + pause)
        self._next = max(self._next, self._pause_end)
        if epoch is not None and epoch != self.epoch:
            return  # sent before the pace was halved: the same overload, halved once
        self.epoch += 1
        if self.rate is not None and self.target is not None:
            self.rate = max(self.rate / 2, min(MIN_PACE, self.target / 2))

    def succeeded(self, epoch: int | None = None) -> None:
        """An attempt started in ``epoch`` succeeded: move the pace back toward the target.

        Only attempts started at the current pace count (``epoch=None``: the current).
        """
        if epoch is not None and epoch != self.epoch:
            return
        if self.rate is not None and self.target is not None and self.rate < self.target:
            self.rate = min(self.target, self.rate + self.target / 20)
