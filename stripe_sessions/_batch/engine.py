"""Batch: one running ``create_many``/``stream_many``, as an object whose state is in view.

Its parts: a :class:`Source` that hands out ``(index, item)`` in input order,
``concurrency`` workers that run one item at a time, the counts behind ``on_progress``,
and a queue to the consumer: each result (streamed: an item holds one of ``2 x
concurrency`` slots until consumed, so memory stays flat), or only what ends the batch
(collected: the workers keep the results).

One item, in :meth:`Batch._run`: encode it (``items.encode_item``), then for each
attempt wait for the pacer, send it (``Transport.post``) and read the answer into a
session (``session_of``); retry by the batch's ``RetryPolicy``; end as a ``BatchResult``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, Iterable
from typing import Any, Final

from .._errors import StripeError, ValidationError
from .._http.options import RequestOptions
from .._http.retry import retry_after
from .._http.transport import Transport
from .._lifecycle import ClientClosedError
from .._observe.batch import BatchTrace, observe_batch
from .._wire.create import PATH, session_of
from .._wire.models import CustomerSession
from .items import Item, encode_item, unforeseen, unreadable_item
from .keys import closed_during, item_key, mark_batch_key
from .options import BatchOptions
from .pacing import Pacer
from .reach import Reachability
from .reader import READ_AHEAD, Source
from .results import BatchResult, Counts

__all__ = ["WORKER_NAME", "YIELD_EVERY", "Batch"]

#: The name of every worker task (then the batch key): what is in flight can be seen.
WORKER_NAME = "stripe_sessions batch worker"

#: A collecting worker gives the loop a turn after this many results of the batch:
#: items that end before any await (invalid, or refused by a closing client) would
#: otherwise hold the loop for the whole input, and nothing could end the batch.
YIELD_EVERY: Final = 64

#: Why a batch refuses to run a second time (stream it or collect it, once).
RAN: Final = "this batch has run already: a batch runs once"

logger: Final = logging.getLogger("stripe_sessions")


class Batch:
    """One batch run; :meth:`results` yields one :class:`BatchResult` per item as it ends.

    Only cancellation, ``fail_fast``, the caller's own callbacks, the caller's input
    raising and a server no attempt can reach end it early; whatever it raises then
    carries ``batch_key``, and the early end is logged with the key.
    """

    def __init__(
        self,
        items: Iterable[Any] | AsyncIterable[Any],
        options: BatchOptions,
        transport: Transport,
        total: int | None,
    ) -> None:
        self.items = items
        self.options = options
        self.transport = transport
        self.batch_key = options.batch_key
        self.total = total
        #: The client's retry rules with the batch's budget per item.
        self.retry = transport.config.retry.with_retries(options.max_retries)
        self.pacer = Pacer(
            options.rate_limit, pause=self.retry.pause, max_pause=self.retry.max_pause
        )
        self.reach = Reachability(transport.config.base_url)
        self.counts = Counts()
        # Unbounded, but bounded by the slots (streamed) or by the workers (collected).
        self.finished: asyncio.Queue[BatchResult | BaseException | None] = asyncio.Queue()
        self.slots = asyncio.Semaphore(2 * options.concurrency)
        #: Set when the run ends: a worker takes no further item.
        self.ending = False
        #: The batch's span and its items' scopes, when something observes (else None).
        self.trace: BatchTrace | None = None
        #: Set when every item has its result (the run was not ended early).
        self.completed = False
        #: Set when the run starts: a batch runs once.
        self.started = False
        #: A collecting run's results (``keep_results``): each worker records and keeps its own.
        self.kept: list[BatchResult] | None = None

    def keep_results(self) -> list[BatchResult]:
        """Collect, not stream (``create_many``): each worker records its own results and
        keeps them in the list returned, so no consumer task wakes per item and no slot
        bounds the reading (measured, ``benchmarks/run.py --scenario batch-paired``:
        about 4% of a batch's CPU). Before the run; the run then yields nothing."""
        if self.started or self.kept is not None:
            raise RuntimeError(RAN)
        self.kept = list[BatchResult]()
        return self.kept

    async def results(self) -> AsyncGenerator[BatchResult, None]:
        """Run the batch, yielding each result as it finishes (completion order)."""
        if self.started:
            raise RuntimeError(RAN)
        self.started = True
        self.transport.pool.check_loop()  # under trio: EventLoopError, before any task
        trace = self.trace = observe_batch(self.transport.observer, self.batch_key)
        source = Source(self.items, max(READ_AHEAD, 2 * self.options.concurrency))
        workers = [
            asyncio.create_task(self._worker(source), name=f"{WORKER_NAME} {self.batch_key}")
            for _ in range(self.options.concurrency)
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
                self._record(got)
                yield got
            ended = self.completed = True
            if trace is not None:
                trace.end(None)
        except BaseException as e:
            mark_batch_key(e, self.batch_key)
            if trace is not None:
                trace.end(e)
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
            # Also a flag: on 3.10 aiohttp's own timeout can swallow a cancel that lands
            # with it (no Task.uncancel), and a worker would wait for a slot forever.
            self.ending = True
            source.stop()  # at once: a second cancel may cut what follows
            for task in workers:
                task.cancel()
            try:
                await asyncio.gather(*workers, return_exceptions=True)
            finally:
                await source.aclose()

    def _record(self, result: BatchResult) -> None:
        """Count a finished item, tell ``on_progress``; raise its error under ``fail_fast``."""
        self.counts.add(result)
        if self.trace is not None:
            self.trace.add(result)
        if self.options.on_progress is not None:
            self.options.on_progress(self.counts.progress(self.total))
        if self.options.fail_fast and result.error is not None:
            raise result.error

    async def _worker(self, source: Source) -> None:
        kept = self.kept
        try:
            while not self.ending:
                if kept is None:  # streamed: an item holds a slot until it is consumed
                    await self.slots.acquire()
                got = await source.next()
                if got is None:
                    if kept is None:
                        self.slots.release()
                    return
                result = await self._run(*got)
                if kept is None:
                    self.finished.put_nowait(result)
                elif not self.ending:  # collected: recorded here, never after the end
                    self._record(result)
                    kept.append(result)
                    if len(kept) % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
        except asyncio.CancelledError as e:
            if not self.ending:  # not the batch's own cancel: it ends the batch, raised
                self._end(e)
            raise
        except BaseException as e:  # the input, or a hook, raised: end the stream with it
            # Any BaseException, not only Exception: one a worker dropped would end the
            # batch short, its item neither a result nor an error.
            self._end(e)
        finally:
            self.finished.put_nowait(None)

    def _end(self, error: BaseException) -> None:
        """End the batch with ``error``: no worker takes another item, the run raises it."""
        self.ending = True
        self.finished.put_nowait(error)

    async def _run(self, index: int, raw: Any) -> BatchResult:
        """One item: read and encode it, then send it (paced, retried) and read its answer."""
        key = item_key(self.batch_key, index)
        try:
            body = encode_item(
                raw, self.options.stripe_version or self.transport.config.stripe_version
            )
        except Exception as e:  # any bad item is that item's failure, never the batch's
            error = e if isinstance(e, ValidationError) else unreadable_item(e)
            error.idempotency_key, error.batch_key = key, self.batch_key
            return BatchResult(index, key, error=error, batch_key=self.batch_key)
        o = self.options
        # No retries inside the transport: the batch retries, pacing each attempt.
        request = RequestOptions(
            idempotency_key=key,
            stripe_account=o.stripe_account,
            stripe_version=o.stripe_version,
            timeout=o.timeout,
            max_retries=0,
            batch=True,
        )
        item = Item(index, body, request)
        failure: StripeError
        try:
            if self.trace is None:
                session = await self._send(item)
            else:  # the item's span and events
                async with self.trace.item(request, index):
                    session = await self._send(item)
        except StripeError as e:
            failure = e
        except Exception as e:  # a bug or an unforeseen answer: still only this item's
            failure = unforeseen(e, key)
        else:
            self.pacer.succeeded(item.epoch)
            return item.result(self.batch_key, session=session)
        # Raised again in a step a Python-implemented task may run inside an ``except``
        # (see Transport.post): a result's error is chained to nothing.
        failure.__context__ = None
        failure.batch_key = self.batch_key
        return item.result(self.batch_key, error=failure)

    async def _send(self, item: Item) -> CustomerSession:
        """Every attempt of one item, as one call in flight of the client.

        The item's waits (the pacer's turn, its pause after a 429, the waits between
        attempts) belong to the call: closing the client cuts them as it cuts a request
        (the transport's posts inside are the same call), and an item the closing
        client refuses ends the batch. The first attempt is awaited here (tenacity is
        built only for an item that failed); a ``rate_limit`` 429 is retried too: the
        pacer, told of it, pauses the whole batch, halves its pace, and holds this
        item's next start.
        """
        try:
            call = self.transport.pool.calls.track(item.request.idempotency_key)
        except ClientClosedError:
            self._end(closed_during(self.counts.done, self.batch_key))
            raise
        with call:
            try:
                return await self._attempt(item)
            except StripeError as e:
                failure = e
            if not self.retry.retries(failure, paced=True):
                raise failure

            def rate_limited(error: StripeError) -> None:  # the explicit 429 hook
                self.pacer.rate_limited(retry_after(error), item.epoch)

            return await self.retry.retry(
                failure, lambda: self._attempt(item), on_rate_limited=rate_limited
            )

    async def _attempt(self, item: Item) -> CustomerSession:
        """One attempt: the pacer's turn, the request, and its answer read as a session."""
        if not self.pacer.take_now():
            await self.pacer.acquire()
        item.epoch = self.pacer.epoch
        if self.reach.error is not None:  # the batch is stopping: send nothing more
            raise self.reach.stopped(item.request.idempotency_key)
        item.attempts += 1
        if item.attempts == 1:
            item.started = time.monotonic()
        try:
            answer = await self.transport.post(PATH, item.body, item.request)
        except Exception as e:
            stop = self.reach.failed(e)
            if stop is not None:  # nothing reaches the server: end the whole batch
                self._end(stop)
            elif isinstance(e, ClientClosedError) and not e.in_flight:
                # The client is closed: every item left would be refused the same way
                # (an endless input, for ever), so the batch ends, with its key.
                self._end(closed_during(self.counts.done, self.batch_key))
            raise
        self.reach.answered()
        return session_of(answer)
