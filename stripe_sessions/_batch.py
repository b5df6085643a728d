"""Batch creation: bounded concurrency, a shared adaptive pace, one result per input.

Each item gets the idempotency key ``f"{batch_key}-{index}"``, so a batch run again
with the same ``batch_key`` within Stripe's 24 hours creates nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, Awaitable, Callable, Iterable
from typing import Any, Final

import attrs
from tenacity import RetryCallState

from . import _retry
from ._config import check_retries
from ._errors import (
    APIConnectionError,
    APIError,
    StripeError,
    ValidationError,
    parse_retry_after,
    redact,
    safe_repr,
)
from ._models import CustomerSession
from ._reader import END, ThreadedReader

__all__ = ["BatchProgress", "BatchResult", "RateLimiter", "stream"]

#: Pace used when the caller gives none: safely below Stripe's 25 requests/s in test mode.
DEFAULT_RATE_LIMIT: Final = 20.0
DEFAULT_CONCURRENCY: Final = 16
#: Retries per item (5xx, connection errors, 409, lock_timeout and rate_limit 429s).
DEFAULT_BATCH_RETRIES: Final = 5
#: Pause after a rate_limit 429 that carries no Retry-After.
DEFAULT_RATE_LIMIT_PAUSE: Final = 1.0
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


class RateLimiter:
    """Paces request starts across a batch: an even spacing of ``1/rate`` seconds.

    A ``rate_limit`` 429 pauses every start for ``Retry-After`` (starts already
    booked but not yet made wait too) and halves the pace; each success wins back
    a twentieth of the target, so the pace recovers gradually. ``rate=None`` never
    paces but still pauses after a 429.
    """

    def __init__(self, rate: float | None) -> None:
        self.target = rate
        self.rate = rate
        self._next = 0.0
        self._pauses = 0  # bumped by each 429: a slot booked before it is void
        self._pause_end = 0.0

    async def acquire(self) -> None:
        """Wait for this start's slot."""
        while True:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + (1.0 / self.rate if self.rate else 0.0)
            if slot <= now:
                return
            pauses = self._pauses
            await asyncio.sleep(slot - now)
            if pauses == self._pauses:
                return
            # A 429 came while this start waited: book again, after the pause.

    def rate_limited(self, retry_after: float | None) -> None:
        """Stripe said ``rate_limit``: pause everything and slow down."""
        pause = DEFAULT_RATE_LIMIT_PAUSE if retry_after is None else retry_after
        pause = min(pause, _retry.MAX_RETRY_AFTER)
        self._pauses += 1
        # Slots booked before now are void (their holders book again): start after the pause.
        self._pause_end = max(self._pause_end, time.monotonic() + pause)
        self._next = self._pause_end
        if self.rate is not None:
            self.rate = max(self.rate / 2, 0.5)

    def succeeded(self) -> None:
        """One more success: move the pace back toward the target."""
        if self.rate is not None and self.target is not None and self.rate < self.target:
            self.rate = min(self.target, self.rate + self.target / 20)


def _is_rate_limit(exc: BaseException) -> bool:
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

    Until one has, each connection failure that reached nothing (refused, DNS, TLS,
    proxy, connect timeout) counts; at :data:`UNREACHABLE_ATTEMPTS` of them, or
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


Send = Callable[[Any, str], Awaitable[CustomerSession]]
Prepare = Callable[[Any], Any]


async def stream(
    items: Iterable[Any] | AsyncIterable[Any],
    *,
    prepare: Prepare,
    send: Send,
    concurrency: int,
    rate_limit: float | None,
    on_progress: Callable[[BatchProgress], object] | None,
    fail_fast: bool,
    batch_key: str,
    max_retries: int,
    total: int | None,
    target: str,
) -> AsyncGenerator[BatchResult, None]:
    """Yield one BatchResult per item as items finish; see ``create_many`` for the rules.

    ``prepare(item)`` checks an item and returns what ``send(prepared, key)`` sends.
    At most ``concurrency`` items are in flight and at most ``concurrency`` finished
    results wait to be consumed, so memory stays flat for any input size. Only
    cancellation, ``fail_fast``, the caller's own callbacks, the caller's input raising
    and a server that no attempt can reach (``target``, see :class:`Reachability`) end
    it early; whatever it raises then carries ``batch_key``, and the early end is
    logged with the key.
    """
    limiter = RateLimiter(rate_limit)
    reach = Reachability(target)
    # Unbounded queue, bounded by slots: an item holds a slot from being read until its
    # result is consumed, so at most `concurrency` are in flight and a few more buffered.
    results: asyncio.Queue[BatchResult | BaseException | None] = asyncio.Queue()
    slots = asyncio.Semaphore(2 * concurrency)
    counter = itertools.count()
    lock = asyncio.Lock()
    is_async = isinstance(items, AsyncIterable)
    reader: ThreadedReader | None = None
    source: Any
    if isinstance(items, AsyncIterable):
        source = items.__aiter__()
    elif isinstance(items, (list, tuple, range)):
        source = iter(items)  # in memory: next() cannot block
    else:  # a generator may wait on a cursor or stdin: read it off the loop
        source = reader = ThreadedReader(items, max(READ_AHEAD, 2 * concurrency))
    stats = {"done": 0, "succeeded": 0, "failed": 0, "retried": 0}

    async def next_item() -> tuple[int, Any] | None:
        if reader is not None:
            item = await reader.get()
            return None if item is END else (next(counter), item)
        if not is_async:  # next() cannot be interleaved: no lock needed
            try:
                return next(counter), next(source)
            except StopIteration:
                return None
        async with lock:  # one reader at a time, and indexes in input order
            try:
                item = await source.__anext__()
            except StopAsyncIteration:
                return None
            return next(counter), item

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, StripeError) and _is_rate_limit(exc):
            # The limiter holds every start, this one included: no wait of its own.
            limiter.rate_limited(_retry_after(exc))
            return 0.0
        return _retry.wait(state)

    def retryable(exc: BaseException) -> bool:
        return _retry.should_retry(exc) or _is_rate_limit(exc)

    async def run(index: int, item: Any) -> BatchResult:
        key = f"{batch_key}-{index}"
        try:
            prepared = prepare(item)
        except Exception as e:  # any bad item is that item's failure, never the batch's
            error = e if isinstance(e, ValidationError) else _unreadable_item(e)
            error.idempotency_key, error.batch_key = key, batch_key
            return BatchResult(index, key, error=error, batch_key=batch_key)
        attempts = 0
        started = 0.0

        async def attempt() -> CustomerSession:
            nonlocal attempts, started
            await limiter.acquire()
            attempts += 1
            if attempts == 1:
                started = time.monotonic()
            try:
                session = await send(prepared, key)
            except Exception as e:
                stop = reach.failed(e)
                if stop is not None:  # nothing reaches the server: end the whole batch
                    results.put_nowait(stop)
                raise
            reach.answered()
            return session

        failure: StripeError
        try:
            session = await _retry.call_with_retries(attempt, max_retries, retryable, wait)
        except StripeError as e:
            failure = e
        except Exception as e:  # a bug or an unforeseen answer: still only this item's
            failure = APIError(
                f"sending this item failed: {type(e).__name__}: {redact(str(e))[:200]}",
                idempotency_key=key,
            )
        else:
            limiter.succeeded()
            elapsed = time.monotonic() - started
            return BatchResult(
                index, key, session=session, attempts=attempts, elapsed=elapsed, batch_key=batch_key
            )
        failure.batch_key = batch_key
        elapsed = time.monotonic() - started if attempts else 0.0
        return BatchResult(
            index, key, error=failure, attempts=attempts, elapsed=elapsed, batch_key=batch_key
        )

    async def worker() -> None:
        try:
            while True:
                await slots.acquire()
                got = await next_item()
                if got is None:
                    slots.release()
                    return
                results.put_nowait(await run(*got))
        except Exception as e:  # the caller's input raised: end the stream with it
            results.put_nowait(e)
        finally:
            results.put_nowait(None)

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    running = len(workers)
    finished = False
    try:
        while running:
            got = await results.get()
            if got is None:
                running -= 1
                continue
            if isinstance(got, BaseException):
                raise got
            slots.release()
            stats["done"] += 1
            stats["succeeded" if got.ok else "failed"] += 1
            stats["retried"] += max(0, got.attempts - 1)
            if on_progress is not None:
                on_progress(BatchProgress(total=total, **stats))
            if fail_fast and got.error is not None:
                raise got.error
            yield got
        finished = True
    except BaseException as e:
        mark_batch_key(e, batch_key)
        raise
    finally:
        if not finished:
            logger.warning(
                "batch %s ended early after %d of %s items; run it again with "
                "batch_key=%r to create nothing twice",
                batch_key,
                stats["done"],
                "?" if total is None else total,
                batch_key,
            )
        if reader is not None:
            reader.close()
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        if is_async and hasattr(source, "aclose"):
            with contextlib.suppress(Exception):
                await source.aclose()


def mark_batch_key(error: BaseException, batch_key: str) -> None:
    """Put ``batch_key`` on an error that ends a batch, and say it in its traceback."""
    if getattr(error, "batch_key", None) == batch_key:
        return
    with contextlib.suppress(AttributeError, TypeError):  # an exception with __slots__
        error.batch_key = batch_key  # type: ignore[attr-defined]
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(
                f"stripe_sessions: run the batch again with batch_key={batch_key!r} "
                "to create nothing twice"
            )


def _unreadable_item(e: Exception) -> ValidationError:
    return ValidationError(
        f"params: this item could not be read: {type(e).__name__}: {redact(str(e))[:200]}",
        param="params",
    )


def _retry_after(exc: StripeError) -> float | None:
    return parse_retry_after(exc.headers.get("Retry-After"))
