"""The transport: one call's POST to Stripe, each attempt's answer read and checked, retried.

One call (:meth:`Transport.post`): build the request, then attempt it; an attempt
takes a rate slot, sends, reads the answer, checks it is ours; a failed first attempt
is retried by the client's :class:`RetryPolicy`, every attempt the same request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from ssl import SSLContext
from typing import Any, Final, NamedTuple

import aiohttp

from .._config import Config
from .._errors import APIConnectionError, APIError, StripeError
from .._limits.local import RateLimiter
from .._observe.observer import CALL, observer_for
from .._safe_text import redact, request_id_of, safe_headers
from .body import decode, read_body, why_unread
from .error_answer import error_from_response
from .failures import redirect_error, refused_request, timeout_error, why_unreachable
from .headers import client_headers
from .lent import verified_context
from .options import RequestOptions
from .owner import Owner, asked_owner, not_ours
from .pool import ConnectionPool, drop_connection
from .retry import retry_after

__all__ = ["Answer", "Request", "Transport"]

logger: Final = logging.getLogger("stripe_sessions")


class Answer(NamedTuple):
    """A successful answer: decoded JSON and the headers worth keeping."""

    data: dict[str, Any]
    request_id: str | None
    replayed: bool
    #: The call's options, as sent (``options.idempotency_key`` is the key that was sent).
    options: RequestOptions
    #: The HTTP status (a 2xx).
    status: int = 200

    def __repr__(self) -> str:
        # Not the data: it holds the client secret.
        return f"Answer(request_id={self.request_id!r}, replayed={self.replayed!r})"


class Request(NamedTuple):
    """One call's request, built once: every attempt sends it as it is."""

    url: str
    data: bytes
    #: The client's headers, the call's ``Idempotency-Key`` and overrides.
    headers: dict[str, str]
    timeout: aiohttp.ClientTimeout
    options: RequestOptions
    #: The owner the body asks a session for: the answer must name the same.
    asked: Owner


class Transport:
    """Sends one logical POST with Stripe's headers, idempotency and retry rules.

    Each call is one of its pool's calls in flight (``pool.calls``): refused once the
    client is closing, cut when it closes.
    """

    def __init__(
        self, config: Config, pool: ConnectionPool, limiter: RateLimiter | None = None
    ) -> None:
        self.config = config
        self.pool = pool
        #: Takes a slot before every attempt (``rate_limiter=``), or None.
        self.limiter = limiter
        self._headers: Final = client_headers(config, pool.default_headers)
        # Event hooks and OpenTelemetry; None when nothing can observe this client.
        self.observer: Final = observer_for(
            config.event_hooks,
            config.tracing,
            base_url=config.base_url,
            secrets=config.secrets,
            stripe_account=config.stripe_account,
            stripe_version=config.stripe_version,
        )
        self._timeout: Final = aiohttp.ClientTimeout(
            total=config.timeout, connect=config.connect_timeout
        )
        ssl: bool | SSLContext = True if config.ssl is None else config.ssl
        if pool.lent and config.ssl is None:
            # Verify as the SDK's own session does, whatever the lent connector says
            # (``TCPConnector(ssl=False)`` would otherwise turn verification off).
            ssl = verified_context()
        #: What every request passes, whatever the session (a lent one's settings too).
        self._send_options: Final[dict[str, Any]] = {
            "allow_redirects": False,  # Stripe never redirects; the key must not follow one
            "auto_decompress": False,
            "raise_for_status": False,
            "proxy": config.proxy,
            "ssl": ssl,
            **pool.per_request(),
        }

    async def post(self, path: str, body: str, options: RequestOptions) -> Answer:
        """POST ``body`` to ``path`` with ``options``, retrying as the client's policy allows.

        Every attempt sends the same ``Idempotency-Key`` (``options.idempotency_key``).
        """
        request = self._request(path, body, options)
        with self.pool.calls.track(options.idempotency_key):
            # The first attempt outside tenacity: inside AsyncRetrying every create
            # cost 165 K instructions more (callgrind, 837 K -> 1002 K; see retry.py).
            observer = self.observer
            if observer is not None and CALL.get() is None:  # outside an observed call
                observer = None
            try:
                if observer is None:
                    return await self._attempt(request)
                return await observer.attempt(self._attempt, request)
            except StripeError as e:
                policy = self.config.retry
                if options.max_retries is not None:
                    policy = policy.with_retries(options.max_retries)
                if not policy.retries(e):
                    raise
                failure = e
            if observer is not None:  # every retry's attempt observed too
                return await policy.retry(failure, lambda: observer.attempt(self._attempt, request))
            return await policy.retry(failure, lambda: self._attempt(request))

    def _request(self, path: str, body: str, options: RequestOptions) -> Request:
        """The request every attempt of a call sends."""
        headers = self._headers.copy()
        headers["Idempotency-Key"] = options.idempotency_key
        if options.stripe_account is not None:
            headers["Stripe-Account"] = options.stripe_account
        if options.stripe_version is not None:
            headers["Stripe-Version"] = options.stripe_version
        timeout = self._timeout
        if options.timeout is not None:
            connect = min(options.timeout, self.config.connect_timeout)
            timeout = aiohttp.ClientTimeout(total=options.timeout, connect=connect)
        url = self.config.base_url + path
        return Request(url, body.encode(), headers, timeout, options, asked_owner(body))

    async def _attempt(self, request: Request) -> Answer:
        """One attempt: a rate slot, the request, its answer read and checked as ours.

        Returns the Answer, or raises the StripeError the answer (or its absence) means:
        afresh, outside any ``except`` (no chained aiohttp error: its request holds the
        headers), and with no local keeping what the server sent (a body with a client
        secret; headers or a reason phrase echoing the API key or a proxy's password)
        for a traceback with locals to show: ``resp`` and ``raw`` are unbound first.
        """
        if self.limiter is not None:
            await self.limiter.acquire(
                batch=request.options.batch, timeout=request.timeout.total or 0.0
            )
        key = request.options.idempotency_key
        outcome: Answer | StripeError
        resp: aiohttp.ClientResponse | None = None
        raw: bytes | None = None
        answered = False  # whether an HTTP answer (status line and headers) came
        cancelled: tuple[Any, ...] | None = None
        try:
            async with self.pool.get().post(
                request.url,
                data=request.data,
                headers=request.headers,
                timeout=request.timeout,
                **self._send_options,
            ) as resp:
                answered = True
                raw = await read_body(resp)
                outcome = self._answer(request, resp.status, resp.headers, raw)
                raw = None
                data = outcome.data if isinstance(outcome, Answer) else None
                refusal = not_ours(data, resp.status, resp.headers, key, request.asked, self.config)
                if refusal is not None:
                    drop_connection(resp)
                    outcome = refusal
        except asyncio.CancelledError as e:
            # The caller cancelled (its own timeout, say): raised afresh below, as
            # aiohttp's frames on this one's traceback hold what was read of the body.
            cancelled = e.args
        except asyncio.TimeoutError as e:
            outcome = timeout_error(e, request.timeout, key)
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
        resp = raw = data = None  # whatever happened above: see the docstring
        if cancelled is not None:
            raise asyncio.CancelledError(*cancelled)
        if isinstance(outcome, Answer):
            return outcome
        if self.limiter is not None and outcome.code == "rate_limit":
            await self.limiter.rate_limited(retry_after(outcome))  # all who share it slow down
        raise outcome

    def _answer(
        self, request: Request, status: int, headers: Mapping[str, str], raw: bytes | None
    ) -> Answer | StripeError:
        """What an answer means: the decoded session, or the error to raise."""
        options = request.options
        key = options.idempotency_key
        request_id = request_id_of(headers, self.config.secrets)  # any bytes: made safe
        if logger.isEnabledFor(logging.DEBUG):  # the URL masked: a key may sit in its path
            shown = redact(request.url, *self.config.secrets)
            logger.debug("POST %s -> %d request_id=%s", shown, status, request_id)
        unread = None if raw is not None else why_unread(headers, self.config.secrets)
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
            return Answer(payload, request_id, replayed, options, status)
        # The body is not kept: a damaged session body may hold a client secret.
        return APIError(
            f"Stripe answered HTTP {status} with a body that is not a JSON object ({payload})",
            http_status=status,
            request_id=request_id,
            idempotency_key=key,
            headers=safe_headers(headers, self.config.secrets),
        )
