"""AsyncClient: the asyncio client, its settings, connection pool and lifecycle.

Its ``customer_sessions`` resource is ``_resource.AsyncCustomerSessions``. The sync
client in ``_sync/client.py`` is generated from these two modules by
``python -m stripe_sessions._sync.codegen``; change them, then regenerate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from ssl import SSLContext
from types import TracebackType
from typing import Any

import aiohttp
import attrs

from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    Config,
    NotGiven,
)
from ._errors import StripeError, ValidationError
from ._http import lent
from ._http.pool import ConnectionPool
from ._http.transport import Transport
from ._lifecycle import CLOSE_GRACE, GRACE
from ._limits.local import RateLimiter
from ._observe.events import EventHook
from ._resource import AsyncCustomerSessions
from ._urls import mask_url

__all__ = ["AsyncClient", "AsyncCustomerSessions"]


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

    ``event_hooks`` (``{"request": [...], "response": [...], "retry": [...]}``) are
    called with each HTTP attempt's start and end and each retry decision, as
    immutable events (:class:`RequestEvent`, :class:`ResponseEvent`, :class:`RetryEvent`)
    that never hold the key, a client secret or a body; an ``async def`` hook is awaited
    (a sync ``Client`` runs its hooks on its private event-loop thread). A hook that
    raises is logged and the call goes on. With ``opentelemetry-api`` installed (the
    ``otel`` extra) calls are traced through the global providers; ``tracing=False``
    (or ``STRIPE_SESSIONS_OTEL_ENABLED=false``) turns that off.

    It works from any asyncio event loop: it keeps one connection pool per loop it
    is used from (``asyncio.run`` twice, a loop per test, threads each running a
    loop), and a loop's pool closes when that loop ends. ``session`` lends the
    client your own ``aiohttp.ClientSession`` instead, which it then never closes;
    it stays on the loop it was made on (a call from another loop is an
    :class:`EventLoopError`). The client needs asyncio: under trio, call the sync
    ``Client`` through ``anyio.to_thread.run_sync`` (else :class:`EventLoopError`).
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
        event_hooks: Mapping[str, EventHook | Sequence[EventHook]] | None = None,
        tracing: bool | None = None,
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
            if session is not None:
                lent.SESSION(session)  # before anything reads it (check_lent) or is built
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
                event_hooks=event_hooks,
                tracing=tracing,
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
        self._transport = Transport(config, session, limiter)
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
        """Close the connection pools (unless it is your own session, or this is a copy).

        Calls started from then on, on any loop, raise :class:`ClientClosedError` and
        send nothing. Calls in flight get ``grace`` seconds (5 by default) to finish;
        each one still running then ends with a :class:`ClientClosedError` carrying its
        ``idempotency_key`` (Stripe may have created that session: retrying with the
        key on an open client is safe). ``grace=0`` cuts them at once.

        Each event loop's pool: this loop's is closed here; another running loop's (a
        thread's) is closed on that loop, waited for up to ``grace`` + 5 s; a closed
        loop's is dropped quietly; a loop neither running nor closed closes its pool
        when it ends. A lent ``session`` is left open.

        A ``rate_limiter`` with an ``aclose()`` has it called too: its Redis
        connections on every event loop are closed (a shared limiter reconnects on its
        next use).
        """
        grace = GRACE(grace)  # first: a bad grace closes nothing
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
        source = "" if c.base_url_from is None else f" (from ${c.base_url_from})"
        return (
            f"{type(self).__name__}(base_url={mask_url(c.base_url)!r}{source}, "
            f"api_key={c.masked_key!r}, stripe_version={c.stripe_version!r}{proxy})"
        )
