"""AsyncClient and its customer_sessions resource: the hand-written API.

The sync client in ``_sync_client.py`` is generated from this module by
``python -m stripe_sessions._codegen``; change this file, then regenerate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import aiohttp

from ._config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    NOT_GIVEN,
    Config,
    NotGiven,
    _check_retries,
    _check_timeout,
    make_config,
)
from ._converter import structure_session
from ._errors import APIError
from ._models import CustomerSession
from ._params import Components, encode_create
from ._transport import Pool, Transport, check_idempotency_key

__all__ = ["AsyncClient", "AsyncCustomerSessions"]


class AsyncCustomerSessions:
    """``client.customer_sessions``: create Customer Sessions."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client

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
        if idempotency_key is not None:
            check_idempotency_key(idempotency_key)
        if timeout is not None:
            _check_timeout("timeout", timeout)
        if max_retries is not None:
            _check_retries(max_retries)
        response = await self._client._transport.post(
            "/v1/customer_sessions",
            body,
            idempotency_key=idempotency_key,
            stripe_account=stripe_account,
            stripe_version=stripe_version,
            timeout=timeout,
            max_retries=max_retries,
        )
        try:
            return structure_session(response.data, response.request_id, response.replayed)
        except Exception as e:  # cattrs raises several kinds; the caller needs one
            raise APIError(
                "Stripe answered with a customer_session this SDK could not read "
                f"({type(e).__name__}); is stripe_version newer than the models?",
                http_status=200,
                request_id=response.request_id,
                idempotency_key=idempotency_key,
            ) from e


class AsyncClient:
    """The asyncio client for Stripe's Customer Sessions API.

    ::

        async with stripe_sessions.AsyncClient() as stripe:   # key from $STRIPE_API_KEY
            session = await stripe.customer_sessions.create(
                customer="cus_123", components={"pricing_table": {"enabled": True}}
            )

    All settings are keyword-only. ``session`` lends the client your own
    ``aiohttp.ClientSession``, which it then never closes. Without one, the
    client creates its own on first use, on the running loop, so a client may
    be built at import time; it stays bound to that loop.
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
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        config = make_config(
            api_key=api_key,
            base_url=base_url,
            stripe_version=stripe_version,
            stripe_account=stripe_account,
            stripe_context=stripe_context,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            max_connections=max_connections,
            default_headers=dict(default_headers or {}),
        )
        self._setup(config, Pool(max_connections, session), owns_pool=True)

    def _setup(self, config: Config, pool: Pool, *, owns_pool: bool) -> None:
        self._config = config
        self._pool = pool
        self._owns_pool = owns_pool
        self._transport = Transport(config, pool)
        self.customer_sessions = AsyncCustomerSessions(self)

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
        c = self._config
        config = make_config(
            api_key=changes.get("api_key", c.api_key),
            base_url=c.base_url,
            stripe_version=changes.get("stripe_version", c.stripe_version),
            stripe_account=changes.get("stripe_account", c.stripe_account),
            stripe_context=changes.get("stripe_context", c.stripe_context),
            timeout=changes.get("timeout", c.timeout),
            connect_timeout=c.connect_timeout,
            max_retries=changes.get("max_retries", c.max_retries),
            max_connections=c.max_connections,
            default_headers=dict(c.default_headers),
        )
        clone = object.__new__(type(self))
        clone._setup(config, self._pool, owns_pool=False)
        return clone

    async def aclose(self) -> None:
        """Close the connection pool (unless it is your own session, or this is a copy)."""
        if self._owns_pool:
            await self._pool.aclose()

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
        return (
            f"{type(self).__name__}(base_url={self._config.base_url!r}, "
            f"api_key={self._config.masked_key!r}, stripe_version={self._config.stripe_version!r})"
        )
