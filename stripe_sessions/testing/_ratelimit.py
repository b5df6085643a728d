"""The fake's rate limit: a token bucket of ``rate_limit=`` requests per second."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens a second, at most ``max(1, rate)`` saved up; a request takes one.

    The bucket holds at least one token whatever the rate: at ``rate=0.5`` one request
    is let through every two seconds (a bucket capped at ``rate`` could never hold the
    whole token a request takes, and refused every request). ``clock`` is for tests.
    """

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self._clock = clock
        self.last = clock()

    def take(self) -> bool:
        """Take a token: False when there is none (the request is rate-limited)."""
        now = self._clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        # A hair under one counts as one: float sums of ``elapsed * rate`` fall short
        # of the whole token a request paced at exactly ``1 / rate`` has earned.
        if self.tokens >= 1 - 1e-9:
            self.tokens -= 1
            return True
        return False
