"""Fault injection: the seeded random FaultMix and the queue of faults a test asks for."""

from __future__ import annotations

import collections
import random
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

__all__ = ["Fault", "FaultMix", "FaultQueue"]


@attrs.frozen
class FaultMix:
    """Probabilities of seeded random faults, each between 0 and 1, drawn once per request.

    ``server_error``: a 500/502/503 before anything is created; ``reset_before``: the
    connection drops before anything is created; ``reset_after``: the session is
    created but the connection drops before the answer (only the idempotency key
    saves the client from a duplicate); ``conflict``: 409; ``lock_timeout`` and
    ``rate_limit``: 429 with that code; ``malformed``: a 200 whose body is not JSON;
    ``slow``: the answer is delayed by ``slow_seconds``.
    """

    server_error: float = 0.0
    reset_before: float = 0.0
    reset_after: float = 0.0
    conflict: float = 0.0
    lock_timeout: float = 0.0
    rate_limit: float = 0.0
    malformed: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.2

    def draw(self, rng: random.Random) -> str | None:
        """Pick at most one fault kind for a request."""
        roll = rng.random()
        for kind in (
            "server_error", "reset_before", "reset_after", "conflict",
            "lock_timeout", "rate_limit", "malformed", "slow",
        ):  # fmt: skip
            p: float = getattr(self, kind)
            if roll < p:
                return kind
            roll -= p
        return None


@attrs.define
class Fault:
    """One fault to inject into an answer."""

    kind: str  # "status", "reset_before", "reset_after", "malformed", "truncated", "slow"
    status: int = 500
    code: str | None = None
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    seconds: float = 0.0


class FaultQueue:
    """The faults asked for, served first, then faults drawn from a mix with a seeded rng."""

    def __init__(self, seed: int | None) -> None:
        self._queue: collections.deque[Fault] = collections.deque()
        self._rng = random.Random(seed)

    def extend(self, faults: Iterable[Fault]) -> None:
        """Queue ``faults`` for the next requests, in order."""
        self._queue.extend(faults)

    def clear(self) -> None:
        """Drop the queued faults."""
        self._queue.clear()

    def next(self, mix: FaultMix | None) -> Fault | None:
        """The next request's fault: a queued one, else one drawn from ``mix``, else None."""
        if self._queue:
            return self._queue.popleft()
        if mix is None:
            return None
        kind = mix.draw(self._rng)
        if kind is None:
            return None
        if kind == "server_error":
            return Fault("status", self._rng.choice((500, 502, 503)))
        if kind == "conflict":
            return Fault("status", 409)
        if kind in ("lock_timeout", "rate_limit"):
            return Fault("status", 429, kind)
        if kind == "slow":
            return Fault("slow", seconds=mix.slow_seconds)
        return Fault(kind)
