"""The exception hierarchy, and the mapping from a Stripe response to an exception."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from multidict import CIMultiDict

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "CardError",
    "IdempotencyError",
    "InvalidRequestError",
    "PermissionDeniedError",
    "RateLimitError",
    "StripeError",
    "ValidationError",
    "error_from_response",
    "printable",
    "redact",
    "request_id_of",
    "safe_headers",
    "safe_repr",
    "server_text",
]

#: The most of an error body kept on an exception (Stripe's error bodies are under 1 KiB).
MAX_ERROR_BODY: Final = 64 * 1024
#: The most of a server's text quoted in an error message.
MAX_QUOTE: Final = 200
#: The longest error message kept (Stripe's are a sentence or two): a server's 1 MB
#: message must not become a 1 MB log line.
MAX_MESSAGE: Final = 1000
#: The longest server value kept in a short field: a request id, code, param, type.
MAX_FIELD: Final = 200
#: The longest header value kept on an error (aiohttp itself stops at 8190 bytes).
MAX_HEADER: Final = 1024

# API keys (secret ``sk_``, restricted ``rk_``; a key already masked as ``sk_test_****1234``
# does not match) and Customer Session client secrets. No word boundary before a key
# and none after it: a server may glue one to anything (``token_sk_live_...``,
# ``sk_live_..._suffix``); masking a little too much is the safe mistake.
_KEY: Final = re.compile(r"((?:sk|rk)_(?:(?:test|live)_)?)(?!(?:test|live)_)[A-Za-z0-9]{3,}")
_CLIENT_SECRET: Final = re.compile(r"cuss_secret_[A-Za-z0-9_]*")
# A JSON escape (``\u005f``) or any other backslash pair, so that ``\\u005f`` is read
# as an escaped backslash followed by text, as JSON reads it.
_ESCAPE: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|.)", re.DOTALL)


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(1)
    if code is not None:
        point = int(code, 16)
        # Written as itself, the text is the same JSON: every character but a quote, a
        # backslash, a control character and a lone surrogate may stand unescaped.
        if point >= 0x20 and point not in (0x22, 0x5C) and not 0xD800 <= point <= 0xDFFF:
            return chr(point)
    return match.group(0)


def unescape_json(text: str) -> str:
    """``text`` with each ``\\uXXXX`` escape that JSON does not need written as itself.

    Valid JSON stays valid and decodes to the same value; the point is that a key a
    server JSON-escaped (``sk\\u005ftest\\u005f...``) becomes visible to :func:`redact`
    before the text is kept or decoded.
    """
    return _ESCAPE.sub(_unescaped, text) if "\\u" in text else text


def redact(text: str, *secrets: str) -> str:
    """``text`` with every API key, client secret and each of ``secrets`` masked.

    Used on anything a server sent that an error quotes or keeps: a proxy's error
    page may echo the request, and a damaged answer may hold a client secret.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    if "_" not in text:  # nothing to find; the common case for Stripe's error bodies
        return text
    text = _CLIENT_SECRET.sub("<client secret>", text)
    return _KEY.sub(r"\1****", text)


def printable(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters (then ``...``), every unprintable one escaped.

    A server's text becomes something a log line can hold: no lone surrogate (aiohttp
    decodes non-UTF-8 header bytes into them; a UTF-8 log handler cannot write them), no
    terminal escape sequence, no newline that forges a log record, no megabyte.
    """
    cut = len(value) > limit
    if cut:
        value = value[:limit]
    if not value.isprintable():
        value = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value
        )
        if len(value) > limit:
            value, cut = value[:limit], True
    return value + "..." if cut else value


def server_text(value: Any, limit: int = MAX_FIELD, secrets: tuple[str, ...] = ()) -> str | None:
    """A value a server sent, as text safe to keep and print; None when it is not text.

    Masked (:func:`redact`, with ``secrets``), then made :func:`printable` within ``limit``.
    """
    if not isinstance(value, str):
        return None
    return printable(redact(value, *secrets), limit)


#: A request id as Stripe writes it: nothing in it to bound, escape or mask.
_STRIPE_REQUEST_ID: Final = re.compile(r"req_[A-Za-z0-9]{1,100}").fullmatch


def request_id_of(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> str | None:
    """The ``Request-Id`` header, as Stripe sends it or else made safe by :func:`server_text`."""
    value = headers.get("Request-Id")
    if value is None or _STRIPE_REQUEST_ID(value):  # Stripe's own, as it is (about 0.2 us)
        return value
    return server_text(value, MAX_FIELD, secrets)


def safe_headers(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> CIMultiDict[str]:
    """A copy of an answer's headers to keep on an error: each value masked and bounded."""
    items = headers.items()  # every value of a repeated header, in order
    return CIMultiDict(
        (printable(name, MAX_FIELD), printable(redact(value, *secrets), MAX_HEADER))
        for name, value in items
    )


def _masked_json(value: Any, secrets: tuple[str, ...]) -> Any:
    """Decoded JSON with every string (keys too) masked: the second pass, after decoding."""
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, list):
        return [_masked_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact(k, *secrets): _masked_json(v, secrets) for k, v in value.items()}
    return value


def safe_repr(value: Any, limit: int = 60) -> str:
    """A short ``repr`` for a message: never raises, never huge (a 5,000-digit int, say)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a caller's object whose __repr__ fails must not hide the real error
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StripeError(Exception):
    """Root of every error the SDK raises.

    Errors from Stripe's answers carry what Stripe said, errors before or
    around the request carry what is known::

        try:
            await stripe.customer_sessions.create(customer="cus_123", components=...)
        except ss.StripeError as e:
            log.warning("stripe failed: %s", e)  # safe: no key, no client secret
            e.http_status, e.code, e.param, e.request_id
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        doc_url: str | None = None,
        decline_code: str | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        json_body: Mapping[str, Any] | None = None,
        should_retry: bool | None = None,
        batch_key: str | None = None,
    ) -> None:
        if len(message) > MAX_MESSAGE:  # whatever built it, a message stays a log line
            message = message[:MAX_MESSAGE] + "..."
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.type = type
        self.code = code
        self.param = param
        self.doc_url = doc_url
        self.decline_code = decline_code
        self.request_id = request_id
        self.idempotency_key = idempotency_key
        # A plain, case-insensitive copy: aiohttp's read-only proxy neither pickles nor
        # deep-copies, and errors travel through multiprocessing and task queues.
        self.headers: Mapping[str, str] = CIMultiDict(headers or ())
        self.body = body
        self.json_body = json_body
        self.should_retry = should_retry
        #: Set on errors a batch raises or returns: run the batch again with it.
        self.batch_key = batch_key

    def __str__(self) -> str:
        parts = []
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        if self.code:
            parts.append(f"code={self.code[:MAX_FIELD]}")
        if self.param:
            parts.append(f"param={self.param[:MAX_FIELD]}")
        if self.request_id:
            parts.append(f"request_id={self.request_id[:MAX_FIELD]}")
        suffix = f" ({', '.join(parts)})" if parts else ""
        return f"{self.message}{suffix}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, http_status={self.http_status!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> Any:
        # Keep every attribute across pickling (multiprocessing, Celery results).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[StripeError], message: str, state: dict[str, Any]) -> StripeError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class ValidationError(StripeError, ValueError):
    """Parameters that Stripe would reject, caught before anything is sent.

    ``param`` names the offending field as a dotted path, for example
    ``components.payment_element.features.payment_method_save``.
    """


class APIConnectionError(StripeError):
    """Stripe could not be reached, or the connection broke before an answer came."""

    #: True when an HTTP answer (status line and headers) came and then broke or timed
    #: out; False when none came (refused, DNS, TLS, a connect timeout, the proxy, or a
    #: peer that accepted the connection but never answered HTTP); None when not known.
    reached: bool | None = None


class APITimeoutError(APIConnectionError):
    """The request took longer than the timeout allowed."""


class APIError(StripeError):
    """Stripe answered with a server error (5xx), a 409, or something unexpected."""


class InvalidRequestError(StripeError):
    """Stripe rejected the request's parameters (400/404); see ``param`` and ``code``."""


class AuthenticationError(StripeError):
    """The API key is missing, malformed or not valid (401)."""


class PermissionDeniedError(StripeError):
    """The key is valid but may not do this (403), e.g. a restricted key."""


class CardError(StripeError):
    """A card was declined (402); ``decline_code`` says why."""


class IdempotencyError(StripeError):
    """The idempotency key was used before with other parameters."""


class RateLimitError(StripeError):
    """Too many requests (429, or a 400 with code ``rate_limit``)."""

    @property
    def retry_after(self) -> float | None:
        """Seconds the ``Retry-After`` header asks to wait, if it gave a number."""
        return parse_retry_after(self.headers.get("Retry-After"))


#: ``Retry-After`` in seconds: ASCII digits, perhaps a fraction (``float`` alone would
#: also take ``inf``, ``nan``, ``1e999``, ``1_0`` and non-ASCII digits).
_SECONDS: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?").fullmatch


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds: a finite number, or ``None``.

    ``None`` when absent or anything but plain seconds (an HTTP date, ``inf``, a
    negative number, garbage): the caller then waits as it would with no header.
    """
    if not value or len(value) > 40:
        return None
    value = value.strip(" \t")
    return float(value) if _SECONDS(value) else None


def _classify(status: int, err_type: str | None, code: str | None) -> type[StripeError]:
    if status == 429 or (status == 400 and code == "rate_limit"):
        return RateLimitError
    if status in (400, 404):
        return IdempotencyError if err_type == "idempotency_error" else InvalidRequestError
    return {
        401: AuthenticationError,
        402: CardError,
        403: PermissionDeniedError,
    }.get(status, APIError)


def _text_or_none(value: Any, limit: int = MAX_FIELD) -> str | None:
    return printable(value, limit) if isinstance(value, str) else None


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    idempotency_key: str | None,
    secrets: tuple[str, ...] = (),
    unread: str | None = None,
) -> StripeError:
    """Turn a non-2xx answer into the matching exception, whatever its body holds.

    The body is kept only up to :data:`MAX_ERROR_BODY` and with keys and client
    secrets (and each of ``secrets``) masked, both in the text and in the decoded
    JSON (a key the server JSON-escaped, ``sk\\u005ftest...``, is masked too); a
    body that cannot be parsed (too deep, say) is treated as one that is not a Stripe
    error. ``unread`` says why the body was not read at all (too large, compressed).
    Every field is bounded and printable, every header masked: see :func:`server_text`.
    """
    text = redact(unescape_json(body[:MAX_ERROR_BODY].decode("utf-8", "replace")), *secrets)
    request_id = request_id_of(headers, secrets)
    should_retry_header = headers.get("Stripe-Should-Retry")
    should_retry = None if should_retry_header is None else should_retry_header == "true"
    headers = safe_headers(headers, secrets)
    payload: Any = None
    try:
        payload = json.loads(text) if text and len(body) <= MAX_ERROR_BODY else None
        payload = _masked_json(payload, secrets)  # masked again, after decoding
    except (ValueError, RecursionError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        snippet = " ".join(text[: MAX_QUOTE * 4].split())[:MAX_QUOTE]
        kind = (
            printable(unread, MAX_QUOTE)
            if unread
            else ("an empty body" if not text.strip() else "a body that is not a Stripe error")
        )
        message = f"Stripe answered HTTP {status} with {kind}"
        if snippet:
            message += f": {snippet!r}"
        cls = _classify(status, None, None)
        return cls(
            message,
            http_status=status,
            request_id=request_id,
            idempotency_key=idempotency_key,
            headers=headers,
            body=text,
            json_body=payload if isinstance(payload, dict) else None,
            should_retry=should_retry,
        )
    err_type, code = _text_or_none(error.get("type")), _text_or_none(error.get("code"))
    cls = _classify(status, err_type, code)
    return cls(
        _text_or_none(error.get("message"), MAX_MESSAGE) or f"Stripe answered HTTP {status}",
        http_status=status,
        type=err_type,
        code=code,
        param=_text_or_none(error.get("param")),
        doc_url=_text_or_none(error.get("doc_url")),
        decline_code=_text_or_none(error.get("decline_code")),
        request_id=request_id,
        idempotency_key=idempotency_key,
        headers=headers,
        body=text,
        json_body=payload,
        should_retry=should_retry,
    )
