# GENERATED FILE: do not edit. Written by `python -m stripe_sessions._sync.codegen` from
# _resource.py and _client.py; change those and run the generator again (CI runs it with --check).
"""The synchronous client: the async client's API, blocking, on a private event loop."""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Generator, Iterable, Mapping, Sequence
from ssl import SSLContext
from typing import Any, overload

from .._batch.options import DEFAULT_BATCH_RETRIES, DEFAULT_CONCURRENCY, DEFAULT_RATE_LIMIT
from .._batch.results import BatchProgress, BatchResult
from .._client import AsyncClient
from .._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    Config,
    NotGiven,
)
from .._errors import StripeError
from .._limits.local import RateLimiter
from .._observe.events import EventHook
from .._resource import AsyncCustomerSessions
from .._wire.create_params import CreateParams
from .._wire.dicts import ComponentsDict, CreateParamsDict
from .._wire.models import CustomerSession
from .._wire.params import Components
from .base import SyncClientBase
from .portal import Portal

__all__ = ["Client", "CustomerSessions"]


class CustomerSessions:
    """``client.customer_sessions``: create Customer Sessions."""

    def __init__(self, resource: AsyncCustomerSessions, portal: Portal) -> None:
        self._async = resource
        self._portal = portal

    def create(
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

            session = stripe.customer_sessions.create(
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
        return self._portal.call(
            self._async.create,
            components=components,
            customer=customer,
            customer_account=customer_account,
            expand=expand,
            extra_params=extra_params,
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            max_retries=max_retries,
        )

    @overload
    def create_many(
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
    ) -> list[BatchResult]:
        return self._portal.call(
            self._async.create_many,
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

    @overload
    def create_many(
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
    ) -> list[BatchResult]:
        return self._portal.call(
            self._async.create_many,
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

    def create_many(
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

            results = stripe.customer_sessions.create_many(
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
        return self._portal.call(
            self._async.create_many,
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
    ) -> Generator[BatchResult, None, None]:
        return self._portal.iterate(
            self._async.stream_many(
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
        )

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
    ) -> Generator[BatchResult, None, None]:
        return self._portal.iterate(
            self._async.stream_many(
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
        )

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
    ) -> Generator[BatchResult, None, None]:
        """Like :meth:`create_many`, but yield results as they finish, with flat memory.

        ::

            for r in stripe.customer_sessions.stream_many(params, concurrency=32):
                out.write(f"{r.index} {r.session.client_secret if r.ok else r.error}\n")

        The input (any iterable or async iterable, however long) is read only as
        fast as items are sent; results carry their ``index`` since they come in
        completion order. Closing the stream cancels what is in flight: wrap it in
        ``contextlib.closing`` to do that as soon as you break out of the loop
        (otherwise it happens when the generator is garbage-collected).
        """
        return self._portal.iterate(
            self._async.stream_many(
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
        )


class Client(SyncClientBase):
    """The blocking client for Stripe's Customer Sessions API, on a private loop.

    ::

        with stripe_sessions.Client() as stripe:   # key from $STRIPE_API_KEY
            session = stripe.customer_sessions.create(
                customer="cus_123", components={"pricing_table": {"enabled": True}}
            )

    All settings are keyword-only. The client creates its connection pool on
    first use, so it may be built at import time; one client serves many
    concurrent calls and should be reused.

    ``proxy`` sends every request through an HTTP(S) proxy
    (``"http://user:pass@proxy:3128"``; the credentials never appear in a repr or a
    message); ``trust_env=True`` honours ``HTTPS_PROXY``, ``NO_PROXY`` and ``~/.netrc``
    as aiohttp does (off by default); ``ssl`` is the ``ssl.SSLContext`` that verifies
    the server, for a corporate CA. ``with_options`` copies keep all three.

    ``rate_limiter`` paces every request against one budget, shared by every process
    that uses the same one (:class:`RedisRateLimiter`): single creates first, batches
    held to their share, and one process's ``rate_limit`` 429 slows them all.

    ``event_hooks`` (``{"request": [...], "response": [...], "retry": [...]}``) are
    called with each HTTP attempt's start and end and each retry decision, as
    immutable events (:class:`RequestEvent`, :class:`ResponseEvent`, :class:`RetryEvent`)
    that never hold the key, a client secret or a body; an ``async def`` hook is awaited
    (a sync ``Client`` runs its hooks on its private event-loop thread). A hook that
    raises is logged and the call goes on. With ``opentelemetry-api`` installed (the
    ``otel`` extra) calls are traced through the global providers; ``tracing=False``
    (or ``STRIPE_SESSIONS_OTEL_ENABLED=false``) turns that off.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        stripe_version: str | None = None,
        stripe_account: str | None = None,
        stripe_context: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        default_headers: Mapping[str, str] | None = None,
        proxy: str | None = None,
        trust_env: bool = False,
        ssl: SSLContext | None = None,
        rate_limiter: RateLimiter | None = None,
        event_hooks: Mapping[str, EventHook | Sequence[EventHook]] | None = None,
        tracing: bool | None = None,
    ) -> None:
        failure: StripeError
        try:
            client = AsyncClient(
                api_key=api_key,
                base_url=base_url,
                stripe_version=stripe_version,
                stripe_account=stripe_account,
                stripe_context=stripe_context,
                timeout=timeout,
                connect_timeout=connect_timeout,
                max_retries=max_retries,
                max_connections=max_connections,
                default_headers=default_headers,
                proxy=proxy,
                trust_env=trust_env,
                ssl=ssl,
                rate_limiter=rate_limiter,
                event_hooks=event_hooks,
                tracing=tracing,
            )
        except StripeError as e:
            failure = e
        else:
            super().__init__(client)
            return
        del api_key, proxy, default_headers
        raise failure.with_traceback(None)

    def _bind(self) -> None:
        self.customer_sessions = CustomerSessions(self._async.customer_sessions, self._portal)

    @property
    def config(self) -> Config:
        """The client's frozen settings (the API key is left out of its repr)."""
        return self._async.config

    def with_options(
        self,
        *,
        api_key: str | NotGiven = NOT_GIVEN,
        stripe_version: str | NotGiven = NOT_GIVEN,
        stripe_account: str | NotGiven | None = NOT_GIVEN,
        stripe_context: str | NotGiven | None = NOT_GIVEN,
        timeout: float | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
    ) -> Client:
        """Return a copy with some settings changed that shares this client's connection pool.

        ::

            connect = stripe.with_options(stripe_account="acct_123", max_retries=5)

        Closing the copy leaves the pool open; closing the original closes it.
        """
        return self._derive(
            self._async.with_options(
                api_key=api_key,
                stripe_version=stripe_version,
                stripe_account=stripe_account,
                stripe_context=stripe_context,
                timeout=timeout,
                max_retries=max_retries,
            )
        )
