"""Stripe's retry rules, as tenacity pieces.

Which failures are retried (what Stripe's own libraries do):

- a ``Stripe-Should-Retry`` header, when present, decides;
- otherwise connection errors and timeouts, 409, 5xx, and a 429 whose code is
  ``lock_timeout``. A ``rate_limit`` 429 is not retried by a single create.

Waits are ``min(0.5 * 2**(n-1), 5)`` seconds jittered into ``[half, whole]``, at
least 0.5 s, or what ``Retry-After`` asks for when that is longer, but never more
than :data:`MAX_DELAY` (5 s): Stripe sends no ``Retry-After``, and a proxy's must not
hold a request for a page render for a minute. (A batch's pause after a
``rate_limit`` 429 honours ``Retry-After`` up to :data:`MAX_RETRY_AFTER`.)

So one call takes at most ``(max_retries + 1) * timeout + max_retries * 5`` seconds:
with the defaults (80 s, 2 retries), 250 s.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeVar

from .._errors import APIConnectionError, StripeError, parse_retry_after

if TYPE_CHECKING:  # tenacity is imported on the first retry: most calls never retry
    from tenacity import AsyncRetrying, RetryCallState

__all__ = [
    "MAX_RETRY_AFTER",
    "backoff",
    "make_retrying",
    "retry_failed",
    "should_retry",
    "wait",
]

T = TypeVar("T")

logger: Final = logging.getLogger("stripe_sessions")

INITIAL_DELAY: Final = 0.5
#: Longest wait between two attempts of one call, ``Retry-After`` included, in seconds.
MAX_DELAY: Final = 5.0
#: Longest pause of a batch after a ``rate_limit`` 429 with ``Retry-After``, in seconds.
MAX_RETRY_AFTER: Final = 60.0


def should_retry(exc: BaseException) -> bool:
    """Whether Stripe's rules retry this failure (the request is idempotent)."""
    if isinstance(exc, APIConnectionError):
        return True
    if not isinstance(exc, StripeError) or exc.http_status is None:
        return False
    if exc.should_retry is not None:
        return exc.should_retry
    status = exc.http_status
    if status == 429:
        return exc.code == "lock_timeout"
    return status == 409 or status >= 500


def backoff(attempt: int) -> float:
    """The jittered wait before retry number ``attempt`` (1 for the first retry)."""
    whole = min(INITIAL_DELAY * 2 ** (attempt - 1), MAX_DELAY)
    return max(INITIAL_DELAY, random.uniform(whole / 2, whole))


def wait(state: RetryCallState) -> float:
    """Tenacity wait: exponential backoff, or a longer ``Retry-After``, at most MAX_DELAY."""
    delay = backoff(state.attempt_number)
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, StripeError):
        asked = parse_retry_after(exc.headers.get("Retry-After"))
        if asked is not None:
            delay = max(delay, min(asked, MAX_DELAY))
    return delay


def _log_retry(state: RetryCallState) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, StripeError):
        reason = (
            f"{type(exc).__name__} HTTP {exc.http_status}"
            if exc.http_status
            else type(exc).__name__
        )
        if exc.code:
            reason += f" code={exc.code}"
        request_id = exc.request_id
        key = exc.idempotency_key
    else:  # pragma: no cover - only StripeErrors are retried
        reason, request_id, key = type(exc).__name__, None, None
    sleep = state.next_action.sleep if state.next_action else 0.0
    logger.info(
        "retrying customer session request in %.2fs (attempt %d failed: %s, "
        "request_id=%s, idempotency_key=%s)",
        sleep,
        state.attempt_number,
        reason,
        request_id,
        key,
    )


def make_retrying(
    max_retries: int,
    retry: Callable[[BaseException], bool] = should_retry,
    wait: Callable[[RetryCallState], float] = wait,
) -> AsyncRetrying:
    """A tenacity controller for one logical call with ``max_retries`` retries."""
    from tenacity import (  # noqa: PLC0415 - only a retry needs it (import time)
        AsyncRetrying,
        retry_if_exception,
        stop_after_attempt,
    )

    return AsyncRetrying(
        stop=stop_after_attempt(max_retries + 1),
        retry=retry_if_exception(retry),
        wait=wait,
        before_sleep=_log_retry,
        reraise=True,
    )


async def retry_failed(
    failure: StripeError,
    fn: Callable[[], Awaitable[T]],
    max_retries: int,
    retry: Callable[[BaseException], bool] = should_retry,
    wait: Callable[[RetryCallState], float] = wait,
) -> T:
    """After a first attempt failed with ``failure`` (retryable): retry ``fn`` by the rules.

    Callers make the first attempt themselves (the transport and the batch: one
    coroutine less on every call) and come here only when it failed in a way ``retry``
    accepts. Only now is the tenacity controller built, and its first "attempt"
    re-raises that failure, so attempt counts, waits, stop and logging are exactly
    those of tenacity having made every call; a successful call never pays for it.
    """
    first: StripeError | None = failure
    del failure
    async for attempt in make_retrying(max_retries, retry, wait):
        with attempt:
            if first is not None:
                failure, first = first, None
                raise failure
            return await fn()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
