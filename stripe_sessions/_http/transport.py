"""The transport: Stripe's headers, one attempt and its answer, retries by Stripe's rules."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Final, NamedTuple

import aiohttp

from .._config import Config
from .._error_answer import error_from_response
from .._errors import APIConnectionError, APIError, StripeError
from .._limits.local import RateLimiter
from .._safe_text import request_id_of, safe_headers, safe_repr
from .body import MAX_RESPONSE_BYTES, decode, encoded, read_capped
from .failures import redirect_error, refused_request, timeout_error, why_unreachable
from .headers import client_headers
from .options import RequestOptions
from .owner import asked_owner, key_mode, plainly_ours, stranger
from .pool import ConnectionPool, verified_context
from .retry import retry_after

__all__ = ["Answer", "Transport"]

logger: Final = logging.getLogger("stripe_sessions")


class Answer(NamedTuple):
    """A successful answer: decoded JSON and the headers worth keeping.

    A NamedTuple: the cheapest frozen record (one is built per answer).
    """

    data: dict[str, Any]
    request_id: str | None
    replayed: bool
    #: The call's options, as sent (``options.idempotency_key`` is the key that was sent).
    options: RequestOptions

    def __repr__(self) -> str:
        # Not the data: it holds the client secret.
        return f"Answer(request_id={self.request_id!r}, replayed={self.replayed!r})"


class Transport:
    """Sends one logical POST with Stripe's headers, idempotency and retry rules."""

    def __init__(
        self, config: Config, session: ConnectionPool, limiter: RateLimiter | None = None
    ) -> None:
        self.config = config
        self.session = session
        #: Takes a slot before every attempt (``rate_limiter=``), or None.
        self.limiter = limiter
        self._headers: Final = client_headers(config, session.default_headers)
        self._timeout: Final = aiohttp.ClientTimeout(
            total=config.timeout, connect=config.connect_timeout
        )
        self._ssl: bool | ssl.SSLContext = True if config.ssl is None else config.ssl
        #: What a lent session would otherwise decide for the SDK (see ConnectionPool.lent).
        self._lent: Final = session.per_request()
        #: The API key's mode (None: its prefix does not say), for the answer checks.
        self._live: Final = key_mode(config.api_key)
        if session.lent and config.ssl is None:
            # Verify as the SDK's own session does, whatever the lent connector says
            # (``TCPConnector(ssl=False)`` would otherwise turn verification off).
            self._ssl = verified_context()

    async def post(self, path: str, body: str, options: RequestOptions) -> Answer:
        """POST ``body`` to ``path`` with ``options``, retrying as Stripe's rules allow.

        Every attempt sends the same ``Idempotency-Key`` (``options.idempotency_key``).
        """
        headers = self._headers.copy()
        headers["Idempotency-Key"] = options.idempotency_key
        if options.stripe_account is not None:
            headers["Stripe-Account"] = options.stripe_account
        if options.stripe_version is not None:
            headers["Stripe-Version"] = options.stripe_version
        timeout = options.timeout
        client_timeout = (
            self._timeout
            if timeout is None
            else aiohttp.ClientTimeout(
                total=timeout, connect=min(timeout, self.config.connect_timeout)
            )
        )
        url, data, asked = self.config.base_url + path, body.encode(), asked_owner(body)
        attempt = None
        if self.limiter is not None:
            attempt = partial(
                _paced,
                self.limiter,
                partial(self._attempt, url, data, headers, client_timeout, options, asked),
                options.batch,
                client_timeout.total or 0.0,
            )
        try:
            if attempt is None:  # the first attempt made directly: no partial unless retried
                return await self._attempt(url, data, headers, client_timeout, options, asked)
            return await attempt()
        except StripeError as e:
            # _attempt raises outside any ``except``, but a task implemented in Python
            # (asyncio's _PyTask; pytest-asyncio's on 3.10) resumes a step inside one
            # when a future fails, and each raise in that step chains its exception
            # (aiohttp's frames hold the headers): nothing a caller gets is chained.
            e.__context__ = None
            policy = self.config.retry
            if options.max_retries is not None:
                policy = policy.with_retries(options.max_retries)
            if not policy.retries(e):
                raise
            failure = e
        if attempt is None:
            attempt = partial(self._attempt, url, data, headers, client_timeout, options, asked)
        try:
            return await policy.retry(failure, attempt)
        except StripeError as e:
            e.__context__ = None  # as above: tenacity raised it again in that step
            raise

    async def _attempt(
        self,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        options: RequestOptions,
        asked: tuple[str | None, str | None],
    ) -> Answer:
        """Send one request and read its answer: a Answer, or a StripeError raised."""
        # Failure paths build their error, drop the body, and raise outside any
        # ``except``: no chained aiohttp error (its request holds the headers) and no
        # local holding what the server sent (a body with a client secret; headers and
        # a reason phrase that may echo the API key or a proxy's credentials) for a
        # traceback with locals to show: ``resp``, ``resp_headers`` and ``raw`` are
        # unbound below before anything is raised or returned.
        session = self.session.get()
        key = options.idempotency_key
        outcome: Answer | StripeError
        resp: aiohttp.ClientResponse | None = None
        resp_headers: Mapping[str, str] | None = None
        raw: bytes | None = None
        answered = False  # whether an HTTP answer (status line and headers) came
        cancelled: tuple[Any, ...] | None = None
        try:
            async with session.post(
                url,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,  # Stripe never redirects; the key must not follow one
                auto_decompress=False,  # also for a session lent by the caller
                raise_for_status=False,  # a lent session's own setting must not apply
                proxy=self.config.proxy,
                ssl=self._ssl,
                **self._lent,
            ) as resp:
                answered = True
                status, resp_headers = resp.status, resp.headers
                if not encoded(resp_headers):
                    length = resp.content_length
                    raw = (
                        await resp.read()  # the common case: aiohttp reads exactly that much
                        if length is not None and length <= MAX_RESPONSE_BYTES
                        else await read_capped(resp)
                    )
                if raw is None:
                    resp.close()  # not read in full, so the connection cannot be reused
                outcome = self._answer(url, status, resp_headers, raw, options)
                raw = None
                refusal = (
                    None
                    if isinstance(outcome, Answer)
                    and plainly_ours(
                        outcome.data, resp_headers.get("Idempotency-Key"), key, asked, self._live
                    )
                    else stranger(
                        outcome.data if isinstance(outcome, Answer) else None,
                        status,
                        resp_headers,
                        key,
                        asked,
                        self.config,
                    )
                )
                if refusal is not None:
                    # Whatever this connection carries next is out of step: never reuse
                    # it. Once the body is read aiohttp has put it back in the pool, and
                    # only the response's protocol (private) still names it; the pool
                    # drops a closed one.
                    resp.close()
                    protocol = getattr(resp, "_protocol", None)
                    if protocol is not None:
                        protocol.close()
                    outcome = refusal
        except asyncio.CancelledError as e:
            # The caller cancelled (its own timeout, say). aiohttp's frames on this
            # exception's traceback hold what was read of the body in their locals: it is
            # raised afresh below, with none of them.
            cancelled = e.args
        except asyncio.TimeoutError as e:
            outcome = timeout_error(e, timeout, key)
            outcome.reached = answered
        except aiohttp.ClientError as e:
            outcome = APIConnectionError(
                f"Could not reach Stripe at {self.config.base_url}: "
                f"{why_unreachable(e, self.config)}",
                idempotency_key=key,
            )
            # "Reached" means an HTTP answer came: a peer that accepted the connection
            # but never answered HTTP (another service, TLS on the port) reached nothing.
            outcome.reached = answered
        except ValueError as e:  # aiohttp refused to build the request: nothing was sent
            outcome = refused_request(e, self.config)
        # Whatever happened above (an error read, a timeout or a cancel mid-body), no
        # local of this frame may keep the server's answer: see the comment at the top.
        resp = resp_headers = raw = None
        if cancelled is not None:
            raise asyncio.CancelledError(*cancelled)
        if isinstance(outcome, Answer):
            return outcome
        raise outcome

    def _answer(
        self,
        url: str,
        status: int,
        headers: Mapping[str, str],
        raw: bytes | None,
        options: RequestOptions,
    ) -> Answer | StripeError:
        """What an answer means: the decoded session, or the error to raise."""
        key = options.idempotency_key
        request_id = request_id_of(headers, self.config.secrets)  # any bytes: made safe
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("POST %s -> %d request_id=%s", url, status, request_id)
        unread: str | None = None
        if raw is None:
            unread = (
                f"a {safe_repr(headers.get('Content-Encoding'))}-encoded body although only "
                "identity encoding was asked for"
                if encoded(headers)
                else f"a body larger than {MAX_RESPONSE_BYTES} bytes"
            )
        if 300 <= status < 400:
            return redirect_error(status, headers, key, self.config.secrets)
        if not 200 <= status < 300:
            return error_from_response(
                status,
                headers,
                b"" if raw is None else raw,
                idempotency_key=key,
                secrets=self.config.secrets,
                unread=unread,
            )
        if raw is None:
            return APIError(
                f"Stripe answered HTTP {status} with {unread}; it was not read",
                http_status=status,
                request_id=request_id,
                idempotency_key=key,
                headers=safe_headers(headers, self.config.secrets),
            )
        payload = decode(raw)
        if isinstance(payload, dict):
            replayed = headers.get("Idempotent-Replayed") == "true"
            return Answer(payload, request_id, replayed, options)
        # The body is not kept: a damaged session body may hold a client secret.
        return APIError(
            f"Stripe answered HTTP {status} with a body that is not a JSON object ({payload})",
            http_status=status,
            request_id=request_id,
            idempotency_key=key,
            headers=safe_headers(headers, self.config.secrets),
        )


async def _paced(
    limiter: RateLimiter, attempt: Callable[[], Awaitable[Answer]], batch: bool, wait: float
) -> Answer:
    """One attempt, after the shared rate limiter gives it a slot."""
    await limiter.acquire(batch=batch, timeout=wait)
    try:
        return await attempt()
    except StripeError as e:
        if e.code == "rate_limit":  # every process sharing the limiter slows down
            await limiter.rate_limited(retry_after(e))
        raise
