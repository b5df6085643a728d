"""Fault injection: the seeded random FaultMix and the queue of faults a test asks for."""

from __future__ import annotations

import collections
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

__all__ = ["MIX_KINDS", "RATE_LIMITED_REASONS", "Fault", "FaultMix", "FaultQueue"]

#: The kinds a :class:`FaultMix` draws from, in the order it draws them.
MIX_KINDS = (
    "server_error", "reset_before", "reset_after", "conflict",
    "lock_timeout", "rate_limit", "malformed", "slow", "truncated",
)  # fmt: skip
#: The values of Stripe's ``Stripe-Rate-Limited-Reason`` header on a 429.
RATE_LIMITED_REASONS = (
    "global-rate",
    "endpoint-rate",
    "global-concurrency",
    "endpoint-concurrency",
    "resource-specific",
)


def _probability(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{attribute.name}: must be a probability from 0 to 1, got {value!r}")


def _seconds(_: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not (math.isfinite(value) and value >= 0)
    ):
        raise ValueError(
            f"{attribute.name}: must be a finite number of seconds >= 0, got {value!r}"
        )


def check_reason(reason: str | None) -> None:
    """Raise ValueError unless ``reason`` is None or one of :data:`RATE_LIMITED_REASONS`."""
    if reason is not None and reason not in RATE_LIMITED_REASONS:
        raise ValueError(
            f"reason: must be one of {', '.join(RATE_LIMITED_REASONS)}, got {reason!r}"
        )


_P = attrs.field(default=0.0, validator=_probability)


@attrs.frozen
class FaultMix:
    """Probabilities of seeded random faults, each from 0 to 1 (1 in all at most), drawn
    once per request; a value out of range is a ``ValueError``.

    ``server_error``: a 500/502/503 before anything is created; ``reset_before``: the
    connection drops before anything is created; ``reset_after``: the session is
    created but the connection drops before the answer (only the idempotency key
    saves the client from a duplicate); ``conflict``: 409; ``lock_timeout`` and
    ``rate_limit``: 429 with that code (no ``Stripe-Rate-Limited-Reason``);
    ``malformed``: a 200 whose body is not JSON; ``slow``: the request is handled
    ``slow_seconds`` late; ``truncated``: a 200 whose body is cut short mid-stream.
    """

    server_error: float = _P
    reset_before: float = _P
    reset_after: float = _P
    conflict: float = _P
    lock_timeout: float = _P
    rate_limit: float = _P
    malformed: float = _P
    slow: float = _P
    slow_seconds: float = attrs.field(default=0.2, validator=_seconds)
    truncated: float = _P

    def __attrs_post_init__(self) -> None:
        total = sum(getattr(self, kind) for kind in MIX_KINDS)
        if total > 1 + 1e-9:
            raise ValueError(f"the probabilities add up to {total:g}: at most 1 in all")

    @classmethod
    def spread(cls, rate: float, kinds: Sequence[str], slow_seconds: float = 0.2) -> FaultMix:
        """A fault on ``rate`` of the requests, its kind drawn evenly from ``kinds``
        (names from :data:`MIX_KINDS`), e.g. ``FaultMix.spread(0.1, ["server_error",
        "reset_before"])``: 5% of each."""
        unknown = [k for k in kinds if k not in MIX_KINDS]
        if unknown or not kinds:
            raise ValueError(
                f"fault kinds: each one of {', '.join(MIX_KINDS)}, got {list(kinds)!r}"
            )
        _probability(None, attrs.fields(cls).server_error, rate)
        share = rate / len(set(kinds))
        return cls(**dict.fromkeys(kinds, share), slow_seconds=slow_seconds)

    def draw(self, rng: random.Random) -> str | None:
        """Pick at most one fault kind for a request."""
        roll = rng.random()
        for kind in MIX_KINDS:
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
    #: ``Stripe-Rate-Limited-Reason`` of a rate_limit 429 (None: no such header).
    reason: str | None = None


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

    def __len__(self) -> int:
        return len(self._queue)

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
