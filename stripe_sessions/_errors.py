"""The exception hierarchy: every error the SDK raises, and what each one carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from multidict import CIMultiDict

from ._safe_text import MAX_FIELD, server_text

__all__ = [
    "MAX_MESSAGE",
    "RATE_LIMITED_REASONS",
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
    "parse_retry_after",
    "rate_limited_reason_of",
    "retry_after_of",
]

#: The longest error message kept (Stripe's are a sentence or two): a server's 1 MB
#: message must not become a 1 MB log line.
MAX_MESSAGE: Final = 1000


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
        parts += self._details()
        if self.param:
            parts.append(f"param={self.param[:MAX_FIELD]}")
        if self.request_id:
            parts.append(f"request_id={self.request_id[:MAX_FIELD]}")
        suffix = f" ({', '.join(parts)})" if parts else ""
        return f"{self.message}{suffix}"

    def __repr__(self) -> str:
        extra = "".join(f", {d}" for d in self._details(quoted=True))
        return (
            f"{type(self).__name__}(message={self.message!r}, http_status={self.http_status!r}, "
            f"code={self.code!r}{extra}, request_id={self.request_id!r})"
        )

    def _details(self, *, quoted: bool = False) -> list[str]:
        """What a subclass adds to ``str`` (``name=value``) and ``repr`` (value quoted)."""
        return []

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
    """Too many requests (429, or a 400 with code ``rate_limit``).

    ``rate_limited_reason`` says which of Stripe's limiters refused the request, when
    the answer said (see :data:`RATE_LIMITED_REASONS`); ``retry_after`` how long it
    asked to wait.
    """

    @property
    def retry_after(self) -> float | None:
        """Seconds the ``Retry-After`` header asks to wait, if it gave a number."""
        return retry_after_of(self)

    @property
    def rate_limited_reason(self) -> str | None:
        """Stripe's ``Stripe-Rate-Limited-Reason`` header: one of
        :data:`RATE_LIMITED_REASONS` (``"global-concurrency"``...), another value as
        the server sent it (bounded and escaped), or None when the answer had none."""
        return rate_limited_reason_of(self.headers)

    def _details(self, *, quoted: bool = False) -> list[str]:
        reason = self.rate_limited_reason
        if reason is None:
            return []
        return [f"rate_limited_reason={reason!r}" if quoted else f"reason={reason}"]


#: ``Retry-After`` in seconds: ASCII digits, perhaps a fraction (``float`` alone would
#: also take ``inf``, ``nan``, ``1e999``, ``1_0`` and non-ASCII digits).
_SECONDS: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?").fullmatch


#: The values of Stripe's ``Stripe-Rate-Limited-Reason`` header on a 429: which limit
#: was hit (all requests, this endpoint's, or requests at once; or one object's).
RATE_LIMITED_REASONS: Final = frozenset(
    {
        "global-rate",
        "endpoint-rate",
        "global-concurrency",
        "endpoint-concurrency",
        "resource-specific",
    }
)
#: The longest unknown reason kept: Stripe's own are under 25 characters.
_MAX_REASON: Final = 100


def rate_limited_reason_of(headers: Mapping[str, str]) -> str | None:
    """An answer's ``Stripe-Rate-Limited-Reason``: a known reason in lower case; another
    value (a server wrote it: perhaps not UTF-8, perhaps 8 KB) as printable text of at
    most 100 characters with any key masked; None when absent or blank."""
    value = headers.get("Stripe-Rate-Limited-Reason")
    if value is None:
        return None
    value = value.strip(" \t")
    if value.isascii() and value.lower() in RATE_LIMITED_REASONS:
        return value.lower()
    return server_text(value, _MAX_REASON) or None  # masked too: a server wrote it


def parse_retry_after(value: str | None) -> float | None:
    """Read a ``Retry-After`` header given in seconds: a finite number, or ``None``.

    ``None`` when absent or anything but plain seconds (an HTTP date, ``inf``, a
    negative number, garbage): the caller then waits as it would with no header.
    """
    if not value or len(value) > 40:
        return None
    value = value.strip(" \t")
    return float(value) if _SECONDS(value) else None


def retry_after_of(exc: BaseException) -> float | None:
    """The seconds an error's ``Retry-After`` asks to wait, if its answer gave a number.

    The one reader of a failure's wait: :attr:`RateLimitError.retry_after`, the retry
    waits, a batch's pause and the shared rate limiter all read it here (any
    :class:`StripeError`: a proxy may send it with a 503 too).
    """
    if not isinstance(exc, StripeError):
        return None
    return parse_retry_after(exc.headers.get("Retry-After"))
