"""The reachability guard: a batch none of whose attempts reaches the server stops early."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from .._errors import APIConnectionError, StripeError

__all__ = ["UNREACHABLE_ATTEMPTS", "UNREACHABLE_SECONDS", "Reachability"]

#: A batch none of whose attempts has reached the server stops after this many
#: connection failures, or after this many seconds of them: a wrong ``base_url`` or no
#: network would otherwise retry every item, at the batch's pace, for many minutes.
UNREACHABLE_ATTEMPTS: Final = 10
UNREACHABLE_SECONDS: Final = 10.0


class Reachability:
    """Watches whether any attempt of a batch has reached the server at ``target``.

    "Reached" means an HTTP answer (a status line and headers) came back, not that a
    TCP connection was made. Until one has, each connection failure with no HTTP answer
    counts (``APIConnectionError.reached is False``): refused, DNS, TLS, proxy, connect
    timeout, and a peer that accepts the connection but never answers HTTP (another
    service on the port, ``http://`` to an HTTPS port, a server that closes or stays
    silent until the timeout). At :data:`UNREACHABLE_ATTEMPTS` of them, or
    :data:`UNREACHABLE_SECONDS` after the first (by ``clock``), :attr:`error` says why
    the batch stops. Once any attempt gets an answer (any status), the batch never
    stops for this.
    """

    def __init__(self, target: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.target = target
        self.reached = False
        self.failures = 0
        self.first: float | None = None
        self.error: APIConnectionError | None = None
        self._clock = clock

    def answered(self) -> None:
        """An attempt got an HTTP answer: the server is there."""
        self.reached = True

    def failed(self, exc: BaseException) -> APIConnectionError | None:
        """Count a failed attempt; the error to stop the batch with, once, when it must."""
        if self.reached or self.error is not None:
            return None
        if not isinstance(exc, APIConnectionError) or exc.reached is not False:
            self.reached = isinstance(exc, StripeError)  # an answer came, even an error
            return None
        now = self._clock()
        self.first = now if self.first is None else self.first
        self.failures += 1
        if self.failures >= UNREACHABLE_ATTEMPTS or now - self.first >= UNREACHABLE_SECONDS:
            why = exc.message.removeprefix(f"Could not reach Stripe at {self.target}: ")
            self.error = APIConnectionError(
                f"stopped the batch: none of its first {self.failures} attempts reached "
                f"{self.target} ({why}); items not yet sent were not sent",
                idempotency_key=exc.idempotency_key,
            )
            self.error.reached = False
            return self.error
        return None

    def stopped(self, key: str) -> APIConnectionError:
        """The error of an attempt not made because the batch is stopping (``error`` set)."""
        assert self.error is not None
        stopped = APIConnectionError(self.error.message, idempotency_key=key)
        stopped.reached = False
        return stopped
