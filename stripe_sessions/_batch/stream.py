"""BatchStream: what ``stream_many`` returns, the results of one batch as they finish."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Coroutine
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import StripeError
from .keys import mark_batch_key
from .results import BatchResult

if TYPE_CHECKING:
    from .engine import Batch

__all__ = ["BatchStream"]


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

    __slots__ = ("__weakref__", "_batch", "_results", "batch_key")

    def __init__(self, batch: Batch) -> None:
        #: The batch's key: run it again with ``batch_key=`` this to create nothing twice.
        self.batch_key = batch.batch_key
        self._batch = batch
        self._results = batch.results()

    async def __anext__(self) -> BatchResult:
        """The next result; a :class:`StripeError` naming ``batch_key`` once the stream
        ended early (closed, by ``aclose()`` or its loop's end, or ended by an error):
        a closed async generator would just stop, and look like a short batch done."""
        try:
            return await self._results.__anext__()
        except StopAsyncIteration:
            if self._batch.completed:
                raise
        error = StripeError(
            f"this stream_many stream ended early after {self._batch.counts.done} items "
            f"(closed, or ended by an error) and has no more results; run the batch again "
            f"with batch_key={self.batch_key!r} to create nothing twice"
        )
        mark_batch_key(error, self.batch_key)
        raise error

    async def collect(self) -> list[BatchResult]:
        """Run the batch to its end and return every result, in completion order, none
        of them yielded on the way (what ``create_many`` does before sorting them).

        On a stream not iterated yet (``RuntimeError`` otherwise: a batch runs once).
        What ends the batch early is raised, as by iterating; to stop it, cancel the
        task that collects.
        """
        kept = self._batch.keep_results()
        async with aclosing(self._results) as run:
            async for _ in run:  # a collecting run yields nothing
                pass
        return kept

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
        """Stop the batch: what is in flight is cancelled, nothing more is sent.

        From the task that iterates (or collects) the stream; while another task runs
        it, cancel that task instead (an async generator cannot be closed meanwhile).
        """
        return self._results.aclose()

    def __repr__(self) -> str:
        return f"<BatchStream batch_key={self.batch_key!r}>"
