"""Batch: one running ``create_many``/``stream_many``, as an object whose state is in view.

Its parts: a :class:`Source` that hands out ``(index, item)`` in input order, ``2 x
concurrency`` slots (an item holds one from being read until its result is consumed,
so memory stays flat), ``concurrency`` workers that prepare, pace, send and retry one
item at a time, a queue of finished results, and the counts behind ``on_progress``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import APIConnectionError, APIError, StripeError, ValidationError
from .._http import retry as _retry
from .._lifecycle import ClientClosedError
from .._safe_text import redact
from .._wire.models import CustomerSession
from .reader import Source
from .results import (
    BatchProgress,
    BatchResult,
    Counts,
    Pacer,
    Reachability,
    is_rate_limit,
    logger,
    mark_batch_key,
    retry_after_of,
)

if TYPE_CHECKING:
    from tenacity import RetryCallState

__all__ = ["WORKER_NAME", "Batch", "BatchStream"]

#: The name of every worker task (then the batch key): what is in flight can be seen.
WORKER_NAME = "stripe_sessions batch worker"

#: ``send(prepared, key)``: the awaitable answer to one attempt (a plain function that
#: returns the transport's coroutine: no coroutine layer of its own between the worker
#: and the transport); ``read(answer)`` turns it into the session.
Send = Callable[[Any, str], Awaitable[Any]]
Read = Callable[[Any], CustomerSession]
Prepare = Callable[[Any], Any]


@attrs.define
class _Item:
    """One item on its way: what is sent, under which key, and how it went so far."""

    index: int
    key: str
    prepared: Any
    attempts: int = 0
    started: float = 0.0
    #: The pacer's epoch when the last attempt started (a 429 halves the pace once per epoch).
    epoch: int = 0


class Batch:
    """One batch run; :meth:`results` yields one :class:`BatchResult` per item as it ends.

    ``prepare(item)`` checks an item and returns what ``send(prepared, key)`` sends;
    ``read`` turns what that returns into the session.
    Only cancellation, ``fail_fast``, the caller's own callbacks, the caller's input
    raising and a server no attempt can reach (``target``) end it early; whatever it
    raises then carries ``batch_key``, and the early end is logged with the key.
    """

    def __init__(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        *,
        prepare: Prepare,
        send: Send,
        read: Read,
        concurrency: int,
        rate_limit: float | None,
        on_progress: Callable[[BatchProgress], object] | None,
        fail_fast: bool,
        batch_key: str,
        max_retries: int,
        total: int | None,
        target: str,
    ) -> None:
        self.prepare = prepare
        self.send = send
        self.read = read
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.fail_fast = fail_fast
        self.batch_key = batch_key
        self.max_retries = max_retries
        self.total = total
        self.limiter = Pacer(rate_limit)
        self.reach = Reachability(target)
        self.items = items
        self.counts = Counts()
        # Unbounded, but bounded by the slots: at most 2 x concurrency items are between
        # being read and their result being consumed.
        self.finished: asyncio.Queue[BatchResult | BaseException | None] = asyncio.Queue()
        self.slots = asyncio.Semaphore(2 * concurrency)
        #: Set when the run ends: a worker takes no further item.
        self.ending = False

    async def results(self) -> AsyncGenerator[BatchResult, None]:
        """Run the batch, yielding each result as it finishes (completion order)."""
        source = Source(self.items, self.concurrency)
        workers = [
            asyncio.create_task(self._worker(source), name=f"{WORKER_NAME} {self.batch_key}")
            for _ in range(self.concurrency)
        ]
        running = len(workers)
        ended = False
        try:
            while running:
                got = await self.finished.get()
                if got is None:
                    running -= 1
                    continue
                if isinstance(got, BaseException):
                    raise got
                self.slots.release()
                self.counts.add(got)
                if self.on_progress is not None:
                    self.on_progress(self.counts.progress(self.total))
                if self.fail_fast and got.error is not None:
                    raise got.error
                yield got
            ended = True
        except BaseException as e:
            mark_batch_key(e, self.batch_key)
            raise
        finally:
            if not ended:
                logger.warning(
                    "batch %s ended early after %d of %s items; run it again with "
                    "batch_key=%r to create nothing twice",
                    self.batch_key,
                    self.counts.done,
                    "?" if self.total is None else self.total,
                    self.batch_key,
                )
            # Also a flag: on Python 3.10 aiohttp's own timeout can swallow a cancel that
            # lands with it (no Task.uncancel), and the worker would wait for a slot forever.
            self.ending = True
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            await source.aclose()

    async def _worker(self, source: Source) -> None:
        try:
            while not self.ending:
                await self.slots.acquire()
                got = await source.next()
                if got is None:
                    self.slots.release()
                    return
                self.finished.put_nowait(await self._run(*got))
        except Exception as e:  # the caller's input raised: end the stream with it
            self.finished.put_nowait(e)
        finally:
            self.finished.put_nowait(None)

    async def _run(self, index: int, raw: Any) -> BatchResult:
        key = f"{self.batch_key}-{index}"
        try:
            item = _Item(index, key, self.prepare(raw))
        except Exception as e:  # any bad item is that item's failure, never the batch's
            error = e if isinstance(e, ValidationError) else _unreadable_item(e)
            error.idempotency_key, error.batch_key = key, self.batch_key
            return BatchResult(index, key, error=error, batch_key=self.batch_key)
        # The first attempt is awaited here (see _retry.retry_failed): one coroutine
        # less between the worker and the socket on every item.
        failure: StripeError
        retryable = False
        try:
            session = await self._attempt(item)
        except StripeError as e:
            failure, retryable = e, bool(self.max_retries) and _retryable(e)
        except Exception as e:  # a bug or an unforeseen answer: still only this item's
            failure = _unforeseen(e, key)
        else:
            return self._succeeded(item, session)
        if retryable:
            try:
                session = await _retry.retry_failed(
                    failure,
                    lambda: self._attempt(item),
                    self.max_retries,
                    _retryable,
                    lambda state: self._wait(state, item),
                )
            except StripeError as e:
                failure = e
            except Exception as e:
                failure = _unforeseen(e, key)
            else:
                return self._succeeded(item, session)
        # Re-raised by tenacity in a step a Python-implemented task may run inside an
        # ``except`` (see Transport.post): a result's error is chained to nothing.
        failure.__context__ = None
        failure.batch_key = self.batch_key
        return self._result(item, error=failure)

    def _succeeded(self, item: _Item, session: CustomerSession) -> BatchResult:
        self.limiter.succeeded(item.epoch)
        return self._result(item, session=session)

    def _result(
        self,
        item: _Item,
        session: CustomerSession | None = None,
        error: StripeError | None = None,
    ) -> BatchResult:
        elapsed = time.monotonic() - item.started if item.attempts else 0.0
        return BatchResult(
            item.index,
            item.key,
            session=session,
            error=error,
            attempts=item.attempts,
            elapsed=elapsed,
            batch_key=self.batch_key,
        )

    async def _attempt(self, item: _Item) -> CustomerSession:
        if not self.limiter.take_now():
            await self.limiter.acquire()
        item.epoch = self.limiter.epoch
        if self.reach.error is not None:  # the batch is stopping: send nothing more
            stopped = APIConnectionError(self.reach.error.message, idempotency_key=item.key)
            stopped.reached = False
            raise stopped
        item.attempts += 1
        if item.attempts == 1:
            item.started = time.monotonic()
        try:
            session = self.read(await self.send(item.prepared, item.key))
        except Exception as e:
            stop = self.reach.failed(e)
            if stop is not None:  # nothing reaches the server: end the whole batch
                self.finished.put_nowait(stop)
            elif isinstance(e, ClientClosedError) and not e.in_flight:
                # The client is closed: every item left would be refused the same way
                # (an endless input, for ever), so the batch ends, with its key.
                self.finished.put_nowait(self._closed())
            raise
        self.reach.answered()
        return session

    def _closed(self) -> ClientClosedError:
        error = ClientClosedError(
            f"the client was closed during the batch, after {self.counts.done} items; "
            "nothing more was sent: run it again with the same batch_key on an open "
            "client to create nothing twice",
            should_retry=False,
        )
        error.batch_key = self.batch_key
        return error

    def _wait(self, state: RetryCallState, item: _Item) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, StripeError) and is_rate_limit(exc):
            # The limiter holds every start, this one included: no wait of its own.
            self.limiter.rate_limited(retry_after_of(exc), item.epoch)
            return 0.0
        return _retry.wait(state)


class BatchStream(AsyncGenerator[BatchResult, None]):
    """The results of one batch as they finish, with its ``batch_key`` known before the first.

    ::

        stream = stripe.customer_sessions.stream_many(params)
        print("resume with batch_key", stream.batch_key)
        async with contextlib.aclosing(stream):
            async for r in stream: ...

    An object in front of one async generator (``Batch.results``), not a second
    generator: asyncio closes every open async generator at once when a loop shuts
    down, and a generator wrapping another would then close it twice at the same time.
    """

    __slots__ = ("__weakref__", "_results", "batch_key")

    def __init__(self, batch: Batch) -> None:
        #: The batch's key: run it again with ``batch_key=`` this to create nothing twice.
        self.batch_key = batch.batch_key
        self._results = batch.results()

    def __anext__(self) -> Coroutine[Any, Any, BatchResult]:
        return self._results.__anext__()

    def asend(self, value: None) -> Coroutine[Any, Any, BatchResult]:
        """Like the async generator's ``asend``."""
        return self._results.asend(value)

    def athrow(
        self,
        typ: type[BaseException] | BaseException,
        val: object = None,
        tb: TracebackType | None = None,
    ) -> Coroutine[Any, Any, BatchResult]:
        """Like the async generator's ``athrow``."""
        if val is None and tb is None:
            return self._results.athrow(typ)
        return self._results.athrow(typ, val, tb)  # type: ignore[arg-type]

    def aclose(self) -> Coroutine[Any, Any, None]:
        """Stop the batch: what is in flight is cancelled, nothing more is sent."""
        return self._results.aclose()

    def __repr__(self) -> str:
        return f"<BatchStream batch_key={self.batch_key!r}>"


def _retryable(exc: BaseException) -> bool:
    return _retry.should_retry(exc) or is_rate_limit(exc)


def _unforeseen(e: Exception, key: str) -> APIError:
    return APIError(
        f"sending this item failed: {type(e).__name__}: {redact(str(e))[:200]}",
        idempotency_key=key,
    )


def _unreadable_item(e: Exception) -> ValidationError:
    return ValidationError(
        f"params: this item could not be read: {type(e).__name__}: {redact(str(e))[:200]}",
        param="params",
    )
