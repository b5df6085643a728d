"""Batch creation's parts: results, progress, options, the pace and the reachability watch.

The run itself is ``_batch_run.Batch``.

Each item gets the idempotency key ``f"{batch_key}-{index}"``, so a batch run again
with the same ``batch_key`` within Stripe's 24 hours creates nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Final

import attrs

from .._config import check_retries
from .._errors import APIConnectionError, StripeError, ValidationError, parse_retry_after
from .._http import retry as _retry
from .._limits.local import MAX_SLEEP, book
from .._safe_text import safe_repr
from .._wire.models import CustomerSession

__all__ = [
    "BatchProgress",
    "BatchResult",
    "Counts",
    "Pacer",
    "Reachability",
    "mark_batch_key",
]

#: Pace used when the caller gives none: safely below Stripe's 25 requests/s in test mode.
DEFAULT_RATE_LIMIT: Final = 20.0
DEFAULT_CONCURRENCY: Final = 16
#: Retries per item (5xx, connection errors, 409, lock_timeout and rate_limit 429s).
DEFAULT_BATCH_RETRIES: Final = 5
#: Pause after a rate_limit 429 that carries no Retry-After.
DEFAULT_RATE_LIMIT_PAUSE: Final = 1.0
#: The pace a 429 never halves below (requests/s), unless the target itself is lower.
MIN_PACE: Final = 0.5
MAX_BATCH_KEY: Final = 200
#: Items of a plain iterable the input thread reads ahead (more if the concurrency asks
#: for more at once). Large enough that the thread wakes rarely: measured, a read-ahead
#: of 32 cost about 10% of a fast batch's throughput, 256 about 2%.
READ_AHEAD: Final = 256
#: A batch none of whose attempts has reached the server stops after this many
#: connection failures, or after this many seconds of them: a wrong ``base_url`` or no
#: network would otherwise retry every item, at the batch's pace, for many minutes.
UNREACHABLE_ATTEMPTS: Final = 10
UNREACHABLE_SECONDS: Final = 10.0

logger: Final = logging.getLogger("stripe_sessions")


@attrs.frozen
class BatchResult:
    """The outcome of one batch item: ``session`` or ``error``, never neither.

    ::

        for r in results:
            print(r.index, r.session.client_secret if r.ok else r.error)
    """

    index: int
    idempotency_key: str
    session: CustomerSession | None = None
    error: StripeError | None = None
    attempts: int = 0
    #: Seconds from the item's first request to its result (retries included).
    elapsed: float = 0.0
    #: The batch's key: run the batch again with ``batch_key=`` this to create nothing twice.
    batch_key: str = ""

    @property
    def ok(self) -> bool:
        """True when the item produced a session."""
        return self.session is not None

    @property
    def request_id(self) -> str | None:
        """Stripe's ``Request-Id`` of the last answer for this item, if one came."""
        if self.session is not None:
            return self.session.request_id
        return self.error.request_id if self.error is not None else None


@attrs.frozen
class BatchProgress:
    """Counts passed to ``on_progress`` each time an item finishes.

    ``total`` is None when the input has no length. ``retried`` counts extra attempts.
    """

    done: int
    total: int | None
    succeeded: int
    failed: int
    retried: int


@attrs.define
class Counts:
    """What a batch has counted so far: the numbers behind ``on_progress``."""

    done: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0

    def add(self, result: BatchResult) -> None:
        """Count one finished item."""
        self.done += 1
        if result.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self.retried += max(0, result.attempts - 1)

    def progress(self, total: int | None) -> BatchProgress:
        """The counts as a :class:`BatchProgress`."""
        return BatchProgress(self.done, total, self.succeeded, self.failed, self.retried)


class Pacer:
    """Paces request starts across a batch at ``rate``: GCRA, a quarter of a slot's tolerance.

    Starts queue in arrival order; only the first of the queue waits on the clock, and
    a start is granted when it is made, by the time read then. The next turn is booked
    one interval after the previous *booked* turn (``_limiter.book``), so a wake-up up
    to :data:`~stripe_sessions._limiter.PACING_TOLERANCE` (a quarter) of a slot late (a
    few ms on a busy machine) costs no throughput; a longer stall (a slow callback, a GC pause)
    makes the next start late and books from then, so it starts one request, never the
    few whose turns passed. Two starts are never closer than ``0.75 / rate``, and ``n``
    starts at one pace never span less than ``(n - 1.25) / rate``. Every sleep is at
    most :data:`MAX_SLEEP`, then the clock is read again.

    A ``rate_limit`` 429 pauses every start for ``Retry-After`` (or
    :data:`DEFAULT_RATE_LIMIT_PAUSE`) and halves the pace, once per *epoch*: 429s
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
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.target = rate
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
        pause = DEFAULT_RATE_LIMIT_PAUSE if retry_after is None else retry_after
        pause = min(pause, _retry.MAX_RETRY_AFTER) if pause >= 0 else DEFAULT_RATE_LIMIT_PAUSE
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


def is_rate_limit(exc: BaseException) -> bool:
    """Whether Stripe said ``rate_limit`` (the whole batch pauses for it)."""
    return isinstance(exc, StripeError) and exc.code == "rate_limit"


def make_batch_key(batch_key: str | None) -> str:
    """Check the caller's batch key, or make a random one."""
    if batch_key is None:
        return uuid.uuid4().hex
    if not isinstance(batch_key, str) or not batch_key or len(batch_key) > MAX_BATCH_KEY:
        raise ValidationError(
            f"batch_key must be a non-empty string of at most {MAX_BATCH_KEY} characters",
            param="batch_key",
        )
    if not batch_key.isascii() or not batch_key.isprintable():
        raise ValidationError("batch_key must be printable ASCII", param="batch_key")
    return batch_key


def check_batch_options(concurrency: int, rate_limit: float | None, max_retries: int) -> None:
    """Raise ValidationError (a ValueError) for batch options that cannot work."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValidationError(
            f"concurrency must be a whole number >= 1, got {safe_repr(concurrency)}",
            param="concurrency",
        )
    if rate_limit is not None and (
        isinstance(rate_limit, bool)
        or not isinstance(rate_limit, (int, float))
        or not math.isfinite(rate_limit)
        or rate_limit <= 0
    ):
        raise ValidationError(
            "rate_limit must be a positive number of requests/s or None, "
            f"got {safe_repr(rate_limit)}",
            param="rate_limit",
        )
    check_retries(max_retries)


class Reachability:
    """Watches whether any attempt of a batch has reached the server.

    "Reached" means an HTTP answer (a status line and headers) came back, not that a
    TCP connection was made. Until one has, each connection failure with no HTTP answer
    counts (``APIConnectionError.reached is False``): refused, DNS, TLS, proxy, connect
    timeout, and a peer that accepts the connection but never answers HTTP (another
    service on the port, ``http://`` to an HTTPS port, a server that closes or stays
    silent until the timeout). At :data:`UNREACHABLE_ATTEMPTS` of them, or
    :data:`UNREACHABLE_SECONDS` after the first, :attr:`error` says why the batch stops.
    Once any attempt gets an answer (any status), the batch never stops for this.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.reached = False
        self.failures = 0
        self.first: float | None = None
        self.error: APIConnectionError | None = None

    def answered(self) -> None:
        """An attempt got an HTTP answer: the server is there."""
        self.reached = True

    def failed(self, exc: BaseException) -> APIConnectionError | None:
        """Count a failed attempt; the error to stop the batch with, once, when it must."""
        if self.reached or self.error is not None:
            return None
        if not isinstance(exc, APIConnectionError) or exc.reached is not False:
            self.reached = isinstance(exc, StripeError)  # an answer came, even an error
            return None
        now = time.monotonic()
        self.first = now if self.first is None else self.first
        self.failures += 1
        if self.failures >= UNREACHABLE_ATTEMPTS or now - self.first >= UNREACHABLE_SECONDS:
            why = exc.message.removeprefix(f"Could not reach Stripe at {self.target}: ")
            self.error = APIConnectionError(
                f"stopped the batch: none of its first {self.failures} attempts reached "
                f"{self.target} ({why}); items not yet sent were not sent",
                idempotency_key=exc.idempotency_key,
            )
            self.error.reached = False
            return self.error
        return None


def mark_batch_key(error: BaseException, batch_key: str) -> None:
    """Put ``batch_key`` on an error that ends a batch, and say it in its traceback."""
    if getattr(error, "batch_key", None) == batch_key:
        return
    with contextlib.suppress(AttributeError, TypeError):  # an exception with __slots__
        error.batch_key = batch_key  # type: ignore[attr-defined]
        note = (
            f"stripe_sessions: run the batch again with batch_key={batch_key!r} "
            "to create nothing twice"
        )
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(note)
        else:  # 3.10: the list add_note keeps, read alike (3.10's tracebacks omit it)
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]


def retry_after_of(exc: StripeError) -> float | None:
    """The ``Retry-After`` seconds of an error's answer, if it has a usable one."""
    return parse_retry_after(exc.headers.get("Retry-After"))
