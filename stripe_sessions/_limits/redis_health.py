"""A Redis limiter's outages and repaired state: when to pace in-process, what to log."""

from __future__ import annotations

import logging
import time
from typing import Final

from .guard import Guard
from .redis_scripts import KEY_NAMES
from .redis_url import RedisURL

__all__ = ["REPAIR_LOG_EVERY", "RETRY_REDIS_AFTER", "RedisHealth"]

logger: Final = logging.getLogger("stripe_sessions")

#: After a Redis failure, how long the in-process fallback is used before trying again.
RETRY_REDIS_AFTER: Final = 5.0
#: At most one "implausible slot repaired" warning per limiter in this many seconds.
REPAIR_LOG_EVERY: Final = 60.0


class RedisHealth:
    """Whether a limiter asks Redis now, and its warnings about Redis.

    After a failure Redis is not asked for :data:`RETRY_REDIS_AFTER` seconds (the
    limiter paces in-process at ``fallback_rate``); one warning when it fails, one when
    it answers again. State Redis held further ahead than the settings explain is
    counted in :attr:`repairs` and logged at most once in :data:`REPAIR_LOG_EVERY`.
    Messages show the URL masked and redact its secrets from any error text. Calls of
    every event loop and thread share it: its flags flip under a lock (held for no
    I/O; each message is logged after it is released), so each warning is logged once.
    """

    def __init__(self, name: str, url: RedisURL, fallback_rate: float) -> None:
        self.name, self.url, self.fallback_rate = name, url, fallback_rate
        self.down_until = 0.0  # (monotonic) Redis is not asked before then
        self.warned = False  # a failure was logged, and no answer since
        #: How many implausible slots the limiter found in Redis and repaired.
        self.repairs = 0
        self._repair_logged = -1e18
        self._lock = Guard()

    def down(self) -> bool:
        """Whether Redis failed recently: pace in-process without asking it."""
        return time.monotonic() < self.down_until

    def failed(self, e: BaseException) -> None:
        """Redis failed with ``e``: pace in-process for a while; warn once."""
        with self._lock:
            self.down_until = time.monotonic() + RETRY_REDIS_AFTER
            first, self.warned = not self.warned, True
        if first:
            logger.warning(
                "rate limiter %r: Redis at %s failed (%s); pacing in this process at "
                "%.3g requests/s until it is back",
                self.name,
                self.url.masked,
                self.url.redact(f"{type(e).__name__}: {e}")[:200],
                self.fallback_rate,
            )

    def answered(self, keys: int, worst_ms: float) -> None:
        """Redis answered, having repaired ``keys`` (SCRIPT's bits) up to ``worst_ms`` ahead."""
        with self._lock:
            back, self.warned = self.warned, False
        if back:
            logger.warning("rate limiter %r: Redis is back; pacing is shared again", self.name)
        if keys:
            self._repaired(keys, worst_ms)

    def _repaired(self, keys: int, worst_ms: float) -> None:
        now = time.monotonic()
        with self._lock:
            self.repairs += 1
            if now - self._repair_logged < REPAIR_LOG_EVERY:
                return
            self._repair_logged = now
        which = [k for bit, k in enumerate(KEY_NAMES) if keys >> bit & 1]
        logger.warning(
            "rate limiter %r: Redis held %s state %.0f s ahead, further than these settings "
            "explain (a clock that went back on a failover, a stale or foreign key); "
            "repaired, not obeyed",
            self.name,
            "/".join(which),
            worst_ms / 1000.0,
        )
