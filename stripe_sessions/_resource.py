"""AsyncCustomerSessions: ``client.customer_sessions``, the API's one resource.

``create`` makes one session; ``create_many`` and ``stream_many`` run a batch
(``_batch.engine``). Part of the hand-written API the sync client is generated from
(see ``_client.py``).
"""

from __future__ import annotations

import operator
from collections.abc import AsyncIterable, Callable, Iterable, Mapping, Sequence, Sized
from typing import TYPE_CHECKING, Any, overload

from ._batch.options import (
    DEFAULT_BATCH_RETRIES,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_LIMIT,
    BatchOptions,
)
from ._batch.results import BatchProgress, BatchResult
from ._http.options import RequestOptions
from ._http.transport import Transport
from ._wire.create import PATH, session_of
from ._wire.create_params import CreateParams
from ._wire.dicts import ComponentsDict, CreateParamsDict
from ._wire.encode import encode_create
from ._wire.models import CustomerSession
from ._wire.params import Components

if TYPE_CHECKING:
    from ._batch.stream import BatchStream

__all__ = ["AsyncCustomerSessions"]

_by_index = operator.attrgetter("index")


class AsyncCustomerSessions:
    """``client.customer_sessions``: create Customer Sessions."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport

    async def create(
        self,
        *,
        components: Components | ComponentsDict,
        customer: str | None = None,
        customer_account: str | None = None,
        expand: Sequence[str] | None = None,
        extra_params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> CustomerSession:
        """Create a Customer Session and return it with its single-use ``client_secret``.

        ::

            session = await stripe.customer_sessions.create(
                customer="cus_123",
                components={"pricing_table": {"enabled": True}},
            )

        ``components`` is a dict (typed as :class:`ComponentsDict`: a type checker
        catches a misspelt key or enum value) or :class:`Components`; at least one
        component must be enabled; ``tax_id_element`` (a preview) needs a ``.preview``
        ``stripe_version`` on the client or the call. Give ``customer`` (``cus_...``)
        or ``customer_account`` (``acct_...``). ``expand=["customer"]`` returns the
        whole Customer. ``extra_params`` is sent as given, for fields this SDK does not
        know yet.
        Parameters are checked before sending: a bad one raises
        :class:`ValidationError` (a ``ValueError``) naming its path, and nothing is sent.

        Per call: ``idempotency_key`` (else one is generated, and kept across
        retries), ``stripe_account``, ``stripe_version``, ``timeout`` (seconds)
        and ``max_retries`` override the client's settings.
        """
        options = RequestOptions.checked(
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            max_retries=max_retries,
        )
        version = options.stripe_version or self._transport.config.stripe_version
        body = encode_create(components, customer, customer_account, expand, extra_params, version)
        observer = self._transport.observer
        if observer is not None and observer.active():  # the call's span and events
            async with observer.create(options):
                return session_of(await self._transport.post(PATH, body, options))
        return session_of(await self._transport.post(PATH, body, options))

    # An overload per kind of iterable: pyright checks a generator of dict literals against
    # one expected iterable type, not against a union of two (it reports correct dicts).
    @overload
    async def create_many(
        self,
        params: Iterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> list[BatchResult]: ...

    @overload
    async def create_many(
        self,
        params: AsyncIterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> list[BatchResult]: ...

    async def create_many(
        self,
        params: Iterable[CreateParams | CreateParamsDict]
        | AsyncIterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> list[BatchResult]:
        """Create many sessions concurrently; return one result per input, in input order.

        ::

            results = await stripe.customer_sessions.create_many(
                ({"customer": c, "components": {"pricing_table": {"enabled": True}}}
                 for c in customer_ids),
                concurrency=16, rate_limit=20.0, on_progress=print,
            )
            for r in results:
                print(r.index, r.session.client_secret if r.ok else r.error)

        The rules:

        - Each item is a dict of ``create``'s parameters (:class:`CreateParamsDict`) or a
          :class:`CreateParams`.
        - Never all-or-nothing: each item ends as a session or an error; a bad item
          becomes a :class:`ValidationError` without being sent.
        - ``fail_fast=True`` raises the first error instead, cancelling the rest.
        - At most ``concurrency`` requests are in flight; starts are paced at
          ``rate_limit`` per second (None: no pacing).
        - A ``rate_limit`` 429 pauses the whole batch (honouring ``Retry-After``),
          halves the pace and retries the item; the pace then recovers gradually.
        - Item ``i`` is sent with the idempotency key ``f"{batch_key}-{i}"``
          (``batch_key`` is random unless given): run a failed batch again with the
          same ``batch_key`` within 24 hours and nothing is created twice.
        - ``max_retries`` is the retry budget of each item.
        - If no attempt can reach the server (10 connection failures, or 10 s of
          them, before any answer), the batch stops with one ``APIConnectionError``.
        - Whatever ends a batch early carries ``batch_key``.
        """
        batch = self.stream_many(
            params,
            concurrency=concurrency,
            rate_limit=rate_limit,
            on_progress=on_progress,
            fail_fast=fail_fast,
            batch_key=batch_key,
            max_retries=max_retries,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
        )
        results = await batch.collect()
        results.sort(key=_by_index)
        return results

    @overload
    def stream_many(
        self,
        params: Iterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> BatchStream: ...

    @overload
    def stream_many(
        self,
        params: AsyncIterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> BatchStream: ...

    def stream_many(
        self,
        params: Iterable[CreateParams | CreateParamsDict]
        | AsyncIterable[CreateParams | CreateParamsDict],
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        rate_limit: float | None = DEFAULT_RATE_LIMIT,
        on_progress: Callable[[BatchProgress], object] | None = None,
        fail_fast: bool = False,
        batch_key: str | None = None,
        max_retries: int = DEFAULT_BATCH_RETRIES,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
    ) -> BatchStream:
        """Like :meth:`create_many`, but yield results as they finish, with flat memory.

        ::

            async for r in stripe.customer_sessions.stream_many(params, concurrency=32):
                out.write(f"{r.index} {r.session.client_secret if r.ok else r.error}\\n")

        The input (any iterable or async iterable, however long) is read only as
        fast as items are sent; results carry their ``index`` since they come in
        completion order. Closing the stream cancels what is in flight: wrap it in
        ``contextlib.aclosing`` to do that as soon as you break out of the loop
        (otherwise it happens when the generator is garbage-collected).
        """
        # One async generator, not a generator around another: asyncio closes every
        # open async generator at once when a loop shuts down (``shutdown_asyncgens``),
        # and a wrapper's own close of the inner one then races asyncio's ("aclose():
        # asynchronous generator is already running"). The options are checked here,
        # at the call, before anything runs.
        options = BatchOptions(
            concurrency=concurrency,
            rate_limit=rate_limit,
            on_progress=on_progress,
            fail_fast=fail_fast,
            batch_key=batch_key,
            max_retries=max_retries,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
        )
        total = len(params) if isinstance(params, Sized) else None
        from ._batch.engine import Batch  # noqa: PLC0415 - only batches need it (import time)
        from ._batch.stream import BatchStream  # noqa: PLC0415 - as above

        return BatchStream(Batch(params, options, self._transport, total))
