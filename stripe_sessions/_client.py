"""AsyncClient and its customer_sessions resource: the hand-written API.

The sync client in ``_sync_client.py`` is generated from this module by
``python -m stripe_sessions._codegen``; change this file, then regenerate.
"""

from __future__ import annotations

import operator
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
    Sized,
)
from contextlib import aclosing
from ssl import SSLContext
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs

from ._batch.results import (
    DEFAULT_BATCH_RETRIES,
    DEFAULT_CONCURRENCY,
    DEFAULT_RATE_LIMIT,
    BatchProgress,
    BatchResult,
    check_batch_options,
    make_batch_key,
)
from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    Config,
    NotGiven,
    mask_url,
)
from ._errors import APIError, StripeError, ValidationError
from ._http.options import RequestOptions
from ._http.pool import ConnectionPool
from ._http.transport import Answer, Transport
from ._lifecycle import CLOSE_GRACE
from ._limits.local import RateLimiter
from ._wire.converter import structure_session
from ._wire.encode import encode_create, params_of
from ._wire.models import CustomerSession
from ._wire.params import Components, CreateParams

if TYPE_CHECKING:
    from ._batch.engine import BatchStream

__all__ = ["AsyncClient", "AsyncCustomerSessions"]


class AsyncCustomerSessions:
    """``client.customer_sessions``: create Customer Sessions."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._config = transport.config

    async def create(
        self,
        *,
        components: Components | Mapping[str, Any],
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

        ``components`` is a dict or :class:`Components`; at least one component
        must be enabled. Give ``customer`` (``cus_...``) or ``customer_account``
        (``acct_...``). ``expand=["customer"]`` returns the whole Customer.
        ``extra_params`` is sent as given, for fields this SDK does not know yet.
        Parameters are checked before sending: a bad one raises
        :class:`ValidationError` (a ``ValueError``) naming its path, and nothing is sent.

        Per call: ``idempotency_key`` (else one is generated, and kept across
        retries), ``stripe_account``, ``stripe_version``, ``timeout`` (seconds)
        and ``max_retries`` override the client's settings.
        """
        body = encode_create(components, customer, customer_account, expand, extra_params)
        options = RequestOptions.checked(
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            max_retries=max_retries,
        )
        return _session_of(await self._transport.post(PATH, body, options))

    async def create_many(
        self,
        params: Iterable[CreateParams | Mapping[str, Any]]
        | AsyncIterable[CreateParams | Mapping[str, Any]],
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

        - Each item is a dict of ``create``'s parameters or a :class:`CreateParams`.
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
        batch = self._stream(
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
        async with aclosing(batch):
            results = [r async for r in batch]
        results.sort(key=_by_index)
        return results

    def stream_many(
        self,
        params: Iterable[CreateParams | Mapping[str, Any]]
        | AsyncIterable[CreateParams | Mapping[str, Any]],
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
        # asynchronous generator is already running"). Options are checked here, at the
        # call, before anything runs.
        return self._stream(
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

    def _stream(
        self,
        params: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int,
        rate_limit: float | None,
        on_progress: Callable[[BatchProgress], object] | None,
        fail_fast: bool,
        batch_key: str | None,
        max_retries: int,
        stripe_account: str | None,
        stripe_version: str | None,
        timeout: float | None,
    ) -> BatchStream:
        """Check the batch options and start the shared batch machinery (``_batch.stream``)."""
        check_batch_options(concurrency, rate_limit, max_retries)
        key = make_batch_key(batch_key)
        # One options value for the whole batch; each item gets its own key. The batch
        # retries (pacing each attempt), so a single send never does.
        options = RequestOptions.checked(
            idempotency_key=f"{key}-0",
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            max_retries=0,
            batch=True,
        )
        total = len(params) if isinstance(params, Sized) else None

        def send(body: str, idempotency_key: str) -> Awaitable[Answer]:
            return self._transport.post(PATH, body, options.for_key(idempotency_key))

        from ._batch.engine import Batch, BatchStream  # noqa: PLC0415 - only batches need it (import time)

        return BatchStream(
            Batch(
                params,
                prepare=_prepare,
                send=send,
                read=_session_of,
                concurrency=concurrency,
                rate_limit=rate_limit,
                on_progress=on_progress,
                fail_fast=fail_fast,
                batch_key=key,
                max_retries=max_retries,
                total=total,
                target=self._config.base_url,
            )
        )


#: Where sessions are created.
PATH = "/v1/customer_sessions"


class _ClosingTransport(Transport):
    """A client's transport: each call is one of its pool's calls in flight (see aclose)."""

    def post(self, path: str, body: str, options: RequestOptions) -> Coroutine[Any, Any, Answer]:
        """``Transport.post``, refused once the client is closing, cut when it closes."""
        return self.session.calls.run(super().post, path, body, options)


def _session_of(response: Answer) -> CustomerSession:
    """The session in a successful answer, or the APIError saying why it cannot be read."""
    try:
        return structure_session(response.data, response.request_id, response.replayed)
    except APIError as e:
        failure = e
    # Raised afresh, with no frame that holds the answer (it has the client secret).
    failure.idempotency_key = response.options.idempotency_key
    del response
    raise failure.with_traceback(None)


_by_index = operator.attrgetter("index")
_CREATE_KEYS = frozenset(("components", "customer", "customer_account", "expand", "extra_params"))


def _prepare(item: Any) -> str:
    """Check one batch item and return its form body."""
    kwargs = params_of(item)
    unknown = kwargs.keys() - _CREATE_KEYS
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise ValidationError(
            f"{name}: unknown parameter (a batch item takes {', '.join(sorted(_CREATE_KEYS))})",
            param=name,
        )
    if "components" not in kwargs:
        raise ValidationError(
            "components: is required: enable at least one component", param="components"
        )
    return encode_create(**kwargs)


class AsyncClient:
    """The asyncio client for Stripe's Customer Sessions API.

    ::

        async with stripe_sessions.AsyncClient() as stripe:   # key from $STRIPE_API_KEY
            session = await stripe.customer_sessions.create(
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

    ``session`` lends the client your own ``aiohttp.ClientSession``, which it
    then never closes. The client's own session is created on the running loop
    and stays bound to that loop.
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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        failure: StripeError
        try:
            if rate_limiter is not None and not isinstance(rate_limiter, RateLimiter):
                raise ValidationError(
                    "rate_limiter: must be a RateLimiter (e.g. stripe_sessions.RedisRateLimiter), "
                    f"got {type(rate_limiter).__name__}",
                    param="rate_limiter",
                )
            if session is not None and trust_env:
                raise ValidationError(
                    "trust_env: applies to the client's own session; create the session you "
                    "lend with aiohttp.ClientSession(trust_env=True) instead",
                    param="trust_env",
                )
            config = Config.from_arguments(
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
            )
            lazy = ConnectionPool(config.max_connections, session, trust_env)
        except StripeError as e:
            failure = e
        else:
            self._setup(config, lazy, rate_limiter, owns_session=True)
            return
        # A bad setting: raised afresh, outside the ``except``, from a frame that no
        # longer holds the key or the proxy's credentials (an error tracker renders the
        # locals of every frame on the traceback, down to Config's generated __init__).
        del api_key, proxy, default_headers
        raise failure.with_traceback(None)

    def _setup(
        self,
        config: Config,
        session: ConnectionPool,
        limiter: RateLimiter | None,
        *,
        owns_session: bool,
    ) -> None:
        self._config = config
        self._session = session
        self._owns_session = owns_session
        self._limiter = limiter
        self._transport = _ClosingTransport(config, session, limiter)
        self.customer_sessions = AsyncCustomerSessions(self._transport)

    @property
    def config(self) -> Config:
        """The client's frozen settings (the API key is left out of its repr)."""
        return self._config

    def with_options(
        self,
        *,
        api_key: str | NotGiven = NOT_GIVEN,
        stripe_version: str | NotGiven = NOT_GIVEN,
        stripe_account: str | NotGiven | None = NOT_GIVEN,
        stripe_context: str | NotGiven | None = NOT_GIVEN,
        timeout: float | NotGiven = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
    ) -> AsyncClient:
        """Return a copy with some settings changed that shares this client's connection pool.

        ::

            connect = stripe.with_options(stripe_account="acct_123", max_retries=5)

        Closing the copy leaves the pool open; closing the original closes it.
        """
        changes: dict[str, Any] = {
            name: value
            for name, value in (
                ("api_key", api_key),
                ("stripe_version", stripe_version),
                ("stripe_account", stripe_account),
                ("stripe_context", stripe_context),
                ("timeout", timeout),
                ("max_retries", max_retries),
            )
            if value is not NOT_GIVEN
        }
        # The network settings (proxy, trust_env, ssl, connections) belong to the shared
        # pool, so a copy keeps them; the rest is checked again by Config's converters.
        failure: StripeError
        try:
            config = attrs.evolve(self._config, **changes)
        except StripeError as e:
            failure = e
        else:
            return self._copy(config)
        del api_key, changes  # raised from a frame without the key, as in __init__
        raise failure.with_traceback(None)

    def _copy(self, config: Config) -> AsyncClient:
        clone = object.__new__(type(self))
        clone._setup(config, self._session, self._limiter, owns_session=False)
        return clone

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called on the connection pool (copies share it)."""
        return self._session.closed

    async def aclose(self, *, grace: float = CLOSE_GRACE) -> None:
        """Close the connection pool (unless it is your own session, or this is a copy).

        Calls started from then on raise :class:`ClientClosedError` and send nothing.
        Calls in flight get ``grace`` seconds (5 by default) to finish; each one still
        running then ends with a :class:`ClientClosedError` carrying its
        ``idempotency_key`` (Stripe may have created that session: retrying with the
        key on an open client is safe). ``grace=0`` cuts them at once.

        A ``rate_limiter`` with an ``aclose()`` has it called too: its connections
        belong to this event loop (a shared limiter reconnects on its next use).
        """
        if self._owns_session:
            await self._session.aclose(grace)
            close = getattr(self._limiter, "aclose", None)
            if close is not None:
                await close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        # A half-built client (its constructor raised) is the ``self`` of a frame that
        # error trackers render with ``repr``: that must not raise.
        c: Config | None = getattr(self, "_config", None)
        if c is None:
            return f"<{type(self).__name__} (not set up)>"
        proxy = "" if c.proxy is None else f", proxy={mask_url(c.proxy)!r}"
        return (
            f"{type(self).__name__}(base_url={c.base_url!r}, "
            f"api_key={c.masked_key!r}, stripe_version={c.stripe_version!r}{proxy})"
        )
