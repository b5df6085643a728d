"""Stripe's retry rules and waits as one value, :class:`RetryPolicy`, and its tenacity loop.

Which failures are retried (what Stripe's own libraries do):

- a ``Stripe-Should-Retry`` header, when present, decides;
- otherwise connection errors and timeouts, 409, 5xx, and a 429 whose code is
  ``lock_timeout``. A ``rate_limit`` 429 is retried only where something paces the
  retry (a batch, through ``on_rate_limited``); a single create raises it.

Waits are ``min(initial_wait * 2**(n-1), max_wait)`` seconds jittered into ``[half,
whole]``, at least ``initial_wait``, or what ``Retry-After`` asks for when that is
longer, but never more than ``max_wait``: Stripe sends no ``Retry-After``, and a
proxy's must not hold a request for a page render for a minute. (A batch's *pause*
after a ``rate_limit`` 429 is another thing: ``pause``, its ``Retry-After`` honoured up
to ``max_pause``; the constants live with the limiters, in ``_limits/local.py``.)

So one call takes at most ``(max_retries + 1) * timeout + max_retries * max_wait``
seconds: with the defaults (80 s, 2 retries, 5 s), 250 s.

The first attempt of every call is made by the caller in plain code, and tenacity is
imported and built only when it failed (then :meth:`RetryPolicy.retry`): a ``create``
whose every attempt went through ``AsyncRetrying`` cost 1002 K instructions against
837 K (``benchmarks/instructions.py sdk``, callgrind), a fifth more for nothing.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final, TypeGuard, TypeVar

import attrs

from .._errors import APIConnectionError, RateLimitError, StripeError
from .._errors import retry_after_of as retry_after  # the one reader, for the transport and batch
from .._limits.pause import DEFAULT_PAUSE, MAX_PAUSE, PAUSE, clamp_pause
from .._observe.observer import retried as observe_retry
from .._validate import checked, seconds, whole

if TYPE_CHECKING:  # tenacity is imported on the first retry: most calls never retry
    from tenacity import AsyncRetrying, RetryCallState

__all__ = [
    "DEFAULT_POLICY",
    "RateLimited",
    "RetryPolicy",
    "is_rate_limit",
    "retry_after",
    "should_retry",
]

T = TypeVar("T")

logger: Final = logging.getLogger("stripe_sessions")

#: ``on_rate_limited(error)``: told of every ``rate_limit`` 429 before its retry.
RateLimited = Callable[[StripeError], object]


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


def is_rate_limit(exc: BaseException) -> TypeGuard[StripeError]:
    """Whether Stripe said ``rate_limit`` (a batch pauses for it and retries)."""
    return isinstance(exc, StripeError) and exc.code == "rate_limit"


# RetryPolicy's checks (see _validate). The count's upper bound is checked where a
# count is given (Config, create, a batch's options): _config imports this module.
_RETRIES: Final = whole("max_retries", 0)
_INITIAL_WAIT: Final = seconds("initial_wait")
_MAX_WAIT: Final = seconds("max_wait")
_MAX_PAUSE: Final = seconds("max_pause", MAX_PAUSE, zero=True)


@attrs.frozen
class RetryPolicy:
    """How a call is retried: how often, how long between attempts, and after what.

    Every field is checked (``ValidationError``). A client's is ``config.retry``
    (``max_retries`` from the client's setting); a call or a batch with its own
    ``max_retries`` uses ``policy.with_retries(n)``.
    """

    #: Retries after the first attempt.
    max_retries: int = checked(_RETRIES, 2)
    #: The first wait, in seconds; each later one doubles, up to ``max_wait``.
    initial_wait: float = checked(_INITIAL_WAIT, 0.5)
    #: The longest wait between two attempts, ``Retry-After`` included, in seconds.
    max_wait: float = checked(_MAX_WAIT, 5.0)
    #: A batch's pause after a ``rate_limit`` 429 without ``Retry-After``, in seconds.
    pause: float = checked(PAUSE, DEFAULT_PAUSE)
    #: The longest pause a ``rate_limit`` 429's ``Retry-After`` can cause, in seconds.
    max_pause: float = checked(_MAX_PAUSE, MAX_PAUSE)
    #: Which failures are retried: Stripe's rules.
    retryable: Callable[[BaseException], bool] = should_retry

    def with_retries(self, max_retries: int) -> RetryPolicy:
        """The same policy with another number of retries."""
        return attrs.evolve(self, max_retries=max_retries)

    def retries(self, failure: BaseException, *, paced: bool = False) -> bool:
        """Whether a first attempt that failed with ``failure`` is retried at all.

        ``paced``: something reacts to a ``rate_limit`` 429 (``on_rate_limited``), so
        it is retried too.
        """
        return self.max_retries > 0 and self._retryable(failure, paced)

    def _retryable(self, exc: BaseException, paced: bool) -> bool:
        return self.retryable(exc) or (paced and is_rate_limit(exc))

    def backoff(self, attempt: int) -> float:
        """The jittered wait after attempt number ``attempt`` (1: the first) failed."""
        whole = min(self.initial_wait * 2 ** (attempt - 1), self.max_wait)
        return max(self.initial_wait, random.uniform(whole / 2, whole))

    def wait(self, failure: BaseException, attempt: int, *, paced: bool = False) -> float:
        """Seconds to wait after attempt ``attempt`` failed with ``failure``.

        The backoff, or a longer ``Retry-After``, at most ``max_wait``. ``paced``: a
        ``rate_limit`` 429 waits nothing here (the pacer told of it holds the next start).
        """
        if paced and is_rate_limit(failure):
            return 0.0
        delay = self.backoff(attempt)
        asked = retry_after(failure)
        if asked is not None:
            delay = max(delay, min(asked, self.max_wait))
        return delay

    def pause_for(self, asked: float | None) -> float:
        """A batch's pause after a ``rate_limit`` 429 whose ``Retry-After`` is ``asked``."""
        return clamp_pause(asked, self.pause, self.max_pause)

    async def retry(
        self,
        failure: StripeError,
        attempt: Callable[[], Awaitable[T]],
        *,
        on_rate_limited: RateLimited | None = None,
    ) -> T:
        """Retry ``attempt`` after the caller's first attempt failed with ``failure``.

        Call it only when :meth:`retries` says so. The wait after the first attempt is
        made here, in plain code, by the same functions tenacity calls for the later
        ones (:meth:`wait`, then ``on_rate_limited`` and the log line); tenacity makes
        the remaining ``max_retries`` attempts. Returns what an attempt returned, or
        raises the last failure.
        """
        paced = on_rate_limited is not None
        delay = self.wait(failure, 1, paced=paced)
        _before_sleep(failure, 1, delay, on_rate_limited)
        del failure  # not kept for the retries' traceback locals
        await asyncio.sleep(delay)
        async for trying in self.retrying(on_rate_limited=on_rate_limited, attempts_made=1):
            with trying:
                return await attempt()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def retrying(
        self, *, on_rate_limited: RateLimited | None = None, attempts_made: int = 0
    ) -> AsyncRetrying:
        """The tenacity controller for the attempts of one call after ``attempts_made``.

        Retries what :attr:`retryable` accepts (and, with ``on_rate_limited``, a
        ``rate_limit`` 429, told to it before each wait), waits :meth:`wait`, logs each
        retry, stops after ``max_retries + 1`` attempts in all, and re-raises the last
        failure as it is.
        """
        from tenacity import (  # noqa: PLC0415 - only a retry needs it (import time)
            AsyncRetrying,
            retry_if_exception,
            stop_after_attempt,
        )

        paced = on_rate_limited is not None

        def number(state: RetryCallState) -> int:  # the attempt's number within the call
            return state.attempt_number + attempts_made

        def wait(state: RetryCallState) -> float:
            return self.wait(_failure(state), number(state), paced=paced)

        def before_sleep(state: RetryCallState) -> None:
            sleep = state.next_action.sleep if state.next_action else 0.0
            _before_sleep(_failure(state), number(state), sleep, on_rate_limited)

        return AsyncRetrying(
            retry=retry_if_exception(lambda exc: self._retryable(exc, paced)),
            wait=wait,
            stop=stop_after_attempt(self.max_retries + 1 - attempts_made),
            before_sleep=before_sleep,
            reraise=True,
        )


#: What a Config's policy starts from (its ``max_retries`` is the client's). The test
#: suite installs a fast one here (tests/conftest.py).
DEFAULT_POLICY: RetryPolicy = RetryPolicy()


def _failure(state: RetryCallState) -> BaseException:
    exc = state.outcome.exception() if state.outcome else None
    assert exc is not None, "tenacity waits only after a failure"
    return exc


def _before_sleep(
    failure: BaseException, attempt: int, sleep: float, on_rate_limited: RateLimited | None
) -> None:
    """Before the wait after attempt ``attempt``: tell the pacer of a 429, log the retry."""
    if on_rate_limited is not None and is_rate_limit(failure):
        on_rate_limited(failure)
    observe_retry(failure, attempt, sleep)  # the call's retry event, if it is observed
    if logger.isEnabledFor(logging.INFO):
        _log_retry(failure, attempt, sleep)


def _log_retry(failure: BaseException, attempt: int, sleep: float) -> None:
    if isinstance(failure, StripeError):
        reason = (
            f"{type(failure).__name__} HTTP {failure.http_status}"
            if failure.http_status
            else type(failure).__name__
        )
        if failure.code:
            reason += f" code={failure.code}"
        if isinstance(failure, RateLimitError) and failure.rate_limited_reason:
            reason += f" reason={failure.rate_limited_reason}"
        request_id = failure.request_id
        key = failure.idempotency_key
    else:  # a policy whose `retryable` retries other exceptions too
        reason, request_id, key = type(failure).__name__, None, None
    logger.info(
        "retrying customer session request in %.2fs (attempt %d failed: %s, "
        "request_id=%s, idempotency_key=%s)",
        sleep,
        attempt,
        reason,
        request_id,
        key,
    )
