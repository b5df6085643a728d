"""The transport: Stripe's headers, one attempt and its answer, retries by Stripe's rules."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any, Final, NamedTuple
from urllib.parse import unquote_plus

import aiohttp

from .._config import Config
from .._error_answer import error_from_response
from .._errors import APIConnectionError, APIError, StripeError, ValidationError
from .._limits.local import RateLimiter
from .._safe_text import redact, request_id_of, safe_headers, safe_repr, server_text
from .failures import redirect_error, timeout_error, why_unreachable
from .options import RequestOptions
from .pool import SDK_HEADERS, ConnectionPool, verified_context
from .retry import retry_after

__all__ = ["Answer", "Transport"]

logger: Final = logging.getLogger("stripe_sessions")

#: The largest answer read, in bytes. Stripe's answers for this endpoint are a few KB,
#: an expanded Customer a few more: anything near this size is not Stripe talking.
MAX_RESPONSE_BYTES: Final = 1024 * 1024


class Masked(str):
    """A header value whose ``repr`` hides it: error trackers render locals with ``repr``."""

    masked: str

    def __repr__(self) -> str:
        return repr(self.masked)


def masked(value: str, shown: str) -> Masked:
    """``value`` as a :class:`Masked` string whose ``repr`` is that of ``shown``."""
    secret = Masked(value)
    secret.masked = shown
    return secret


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
        headers: dict[str, str] = {
            "Authorization": masked(f"Bearer {config.api_key}", f"Bearer {config.masked_key}"),
            "Stripe-Version": config.stripe_version,
            **SDK_HEADERS,
        }
        if config.stripe_account:
            headers["Stripe-Account"] = config.stripe_account
        if config.stripe_context:
            headers["Stripe-Context"] = config.stripe_context
        headers.update(config.default_headers)
        sent = session.default_headers  # what the session sends anyway
        self._headers: Final = {k: v for k, v in headers.items() if sent.get(k) != v}
        self._timeout: Final = aiohttp.ClientTimeout(
            total=config.timeout, connect=config.connect_timeout
        )
        self._ssl: bool | ssl.SSLContext = True if config.ssl is None else config.ssl
        #: What a lent session would otherwise decide for the SDK (see ConnectionPool.lent).
        self._lent: Final = session.per_request()
        #: The API key's mode (None: its prefix does not say), for the answer checks.
        self._live: Final = _live(config.api_key)
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
        url, data, asked = self.config.base_url + path, body.encode(), _asked(body)
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
                if not _encoded(resp_headers):
                    length = resp.content_length
                    raw = (
                        await resp.read()  # the common case: aiohttp reads exactly that much
                        if length is not None and length <= MAX_RESPONSE_BYTES
                        else await _read_capped(resp)
                    )
                if raw is None:
                    resp.close()  # not read in full, so the connection cannot be reused
                outcome = self._answer(url, status, resp_headers, raw, options)
                raw = None
                stranger = (
                    None
                    if isinstance(outcome, Answer)
                    and _plainly_ours(
                        outcome.data, resp_headers.get("Idempotency-Key"), key, asked, self._live
                    )
                    else _stranger(outcome, status, resp_headers, key, asked, self.config)
                )
                if stranger is not None:
                    # Whatever this connection carries next is out of step: never reuse
                    # it. Once the body is read aiohttp has put it back in the pool, and
                    # only the response's protocol (private) still names it; the pool
                    # drops a closed one.
                    resp.close()
                    protocol = getattr(resp, "_protocol", None)
                    if protocol is not None:
                        protocol.close()
                    outcome = stranger
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
            outcome = _refused_request(e, self.config)
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
                if _encoded(headers)
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
        payload = _decode(raw)
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


def _encoded(headers: Mapping[str, str]) -> bool:
    encoding = headers.get("Content-Encoding")  # Stripe sends none
    return encoding is not None and encoding.strip().lower() not in ("", "identity")


async def _read_capped(resp: aiohttp.ClientResponse) -> bytes | None:
    """The whole body of an answer of unknown length, or None when it is over the cap."""
    if resp.content_length is None:
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                break
            chunks.append(chunk)
        else:
            return b"".join(chunks)
    return None


def _decode(raw: bytes) -> Any:
    """The JSON object in ``raw``, or a short description of why there is none."""
    try:
        payload = json.loads(raw)
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError as e:  # UnicodeDecodeError and too-long integers included
        return f"not valid JSON: {type(e).__name__}, {len(raw)} bytes"
    if isinstance(payload, dict):
        return payload
    return f"a JSON {type(payload).__name__}, {len(raw)} bytes"


def _asked(body: str) -> tuple[str | None, str | None]:
    """Which owner the form ``body`` asks a session for: ``(customer, customer_account)``.

    Read from the body as sent (``extra_params`` may have replaced an argument):
    ``customer=`` and ``customer_account=`` at the top level of the form, None where
    the body names none.
    """
    return _field(body, "customer=", "&customer="), _field(
        body, "customer_account=", "&customer_account="
    )


def _field(body: str, prefix: str, inner: str) -> str | None:
    """The first top-level value of a form field (its ``prefix`` and ``&prefix`` given)."""
    if body.startswith(prefix):
        start = len(prefix)
    else:
        at = body.find(inner)
        if at < 0:
            return None
        start = at + len(inner)
    end = body.find("&", start)
    value = body[start:] if end < 0 else body[start:end]
    return unquote_plus(value) if "%" in value or "+" in value else value


def _plainly_ours(
    data: Mapping[str, Any],
    echoed: str | None,
    key: str,
    asked: tuple[str | None, str | None],
    live: bool | None,
) -> bool:
    """Whether an answer plainly is this request's: the fast path before ``_stranger``.

    Buys skipping ``_stranger``'s general walk for the common answer (the echo absent
    or ours, the owner exactly the one asked for, the key's mode); anything else,
    including what only looks odd, goes through ``_stranger``.
    """
    return (
        (echoed is None or echoed == key)
        and data.get("customer") == asked[0]
        and data.get("customer_account") == asked[1]
        and (live is None or data.get("livemode") is live)
    )


def _stranger(
    outcome: Answer | StripeError,
    status: int,
    headers: Mapping[str, str],
    key: str,
    asked: tuple[str | None, str | None],
    config: Config,
) -> APIError | None:
    """The error refusing an answer that belongs to another request, or None.

    Stripe echoes the ``Idempotency-Key`` it answers; a session names its owner and
    whether it is live. An answer that echoes another key, whose ``customer`` or
    ``customer_account`` is not what was asked for (null where one was asked for,
    one where none was; the id of an expanded Customer included), or whose
    ``livemode`` is not the API key's mode (``sk_test_``/``rk_test_``: false;
    ``sk_live_``/``rk_live_``: true) was read from a connection that is out of step
    (a stray response on a kept-alive connection, a confused proxy): it is refused,
    retryable, and its connection is closed.

    An answer without the echo is accepted when all else matches: proxies may strip
    headers, so a missing echo is no sign of another request. A value of the wrong
    type is left to the converter to report.
    """
    found: list[str] = []
    echoed = headers.get("Idempotency-Key")
    if echoed is not None and echoed != key:
        found.append(f"the idempotency key {_quoted(echoed, config)} where {key!r} was sent")
    if isinstance(outcome, Answer):
        data = outcome.data
        wanted = {"customer": asked[0], "customer_account": asked[1]}
        for field in ("customer", "customer_account"):
            got = data.get(field)
            if field == "customer" and isinstance(got, dict):  # expanded: a Customer
                got = got.get("id")
                if not isinstance(got, str):
                    continue  # no id, or not a string: the converter refuses it
            value = wanted.get(field)
            if (got is None or isinstance(got, str)) and got != value:
                found.append(
                    f"{field} {_owner(got, config)} where "
                    f"{'none' if value is None else repr(value)} was asked for"
                )
        livemode, live = data.get("livemode"), _live(config.api_key)
        if isinstance(livemode, bool) and live is not None and livemode != live:
            found.append(
                f"livemode {'true' if livemode else 'false'} where a "
                f"{'live' if live else 'test'} mode key was sent"
            )
    if not found:
        return None
    return APIError(
        f"Refused an answer to another request: it carries {' and '.join(found)}; "
        "its connection was closed (the call may be retried on a new one with the same key)",
        http_status=status,
        request_id=request_id_of(headers, config.secrets),
        idempotency_key=key,
        headers=safe_headers(headers, config.secrets),
        should_retry=True,
    )


def _owner(value: str | None, config: Config) -> str:
    """An answer's customer or customer_account for a message (null: ``null``)."""
    return "null" if value is None else _quoted(value, config)


def _live(api_key: str) -> bool | None:
    """Whether ``api_key`` is a live mode key; None when its prefix does not say."""
    if api_key.startswith(("sk_test_", "rk_test_")):
        return False
    if api_key.startswith(("sk_live_", "rk_live_")):
        return True
    return None


def _quoted(value: str, config: Config) -> str:
    """A server's value for a message: masked, bounded, printable, quoted."""
    return repr(server_text(value, 80, config.secrets))


def _refused_request(e: ValueError, config: Config) -> ValidationError:
    """aiohttp refused to build the request (nothing was sent), as a ValidationError.

    It does so when credentials it would add itself meet the SDK's ``Authorization``
    header: a ``~/.netrc`` entry for the host (with ``trust_env``), say.
    """
    return ValidationError(
        "aiohttp refused to build the request, so nothing was sent: "
        f"{type(e).__name__}: {redact(str(e), *config.secrets)[:200]} "
        "(a ~/.netrc entry for the API host, read with trust_env=True, or credentials "
        "in a URL would replace the API key's Authorization header)",
        param="session",
    )
