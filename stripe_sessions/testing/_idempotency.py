"""The fake's idempotency: Stripe's rules on a key, and each key's answer, kept within bounds."""

from __future__ import annotations

import collections
import hashlib
import json
import time
from collections.abc import ValuesView
from typing import Any

import attrs
from aiohttp import web

from ._answers import error_answer, fault_answer, json_answer
from ._faults import Fault

__all__ = [
    "IDEMPOTENCY_TTL",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_IDEMPOTENCY_KEYS",
    "IdempotencyStore",
    "StoredAnswer",
    "fingerprint",
    "key_refusal",
]

#: Idempotency keys the fake remembers by default; the oldest is dropped first.
MAX_IDEMPOTENCY_KEYS = 10_000
#: Seconds an idempotency key is remembered by default: Stripe keeps keys for 24 hours.
IDEMPOTENCY_TTL = 24 * 60 * 60
#: Stripe's bounds on an ``Idempotency-Key``, in characters.
MAX_IDEMPOTENCY_KEY = 255


@attrs.define
class StoredAnswer:
    """The answer first sent for a key, and the digest of the form it answered."""

    fingerprint: str
    body: bytes
    request_id: str
    at: float = attrs.field(factory=time.monotonic)


def fingerprint(form: dict[str, Any]) -> str:
    """A digest of ``form``: a valid form can be a megabyte (1000 ``expand`` ids of 5000 chars)."""
    return hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()


def key_refusal(idem: str, echo: str | None) -> str | None:
    """None for a key Stripe takes, else the 400's message (``echo`` is None for non-UTF-8)."""
    if echo is None:
        return "Invalid Idempotency-Key: it must be valid UTF-8 text."
    if not 1 <= len(idem) <= MAX_IDEMPOTENCY_KEY:
        return (
            f"Idempotent key length is {len(idem)}, which is outside accepted lengths. "
            f"Idempotent Keys must be 1-{MAX_IDEMPOTENCY_KEY} characters long. If you're "
            "looking for a decent generator, try using a UUID defined by IETF RFC 4122."
        )
    return None


def _size(idem: str, stored: StoredAnswer) -> int:
    return len(idem) + len(stored.body) + len(stored.fingerprint)


class IdempotencyStore:
    """The answers remembered per key, oldest first, and the keys whose request is in flight."""

    def __init__(self) -> None:
        #: Keys whose first request is being answered: another use is a 409.
        self.in_flight: set[str] = set()
        self._answers: collections.OrderedDict[str, StoredAnswer] = collections.OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._answers)

    def values(self) -> ValuesView[StoredAnswer]:
        """The answers remembered, oldest first."""
        return self._answers.values()

    def replay(self, idem: str, digest: str, request_id: str, ttl: float) -> web.Response | None:
        """The answer to a key already used (None for a new one): a 409 while its first
        request is in flight, else the first answer replayed, or an ``idempotency_error``
        when ``digest`` (see :func:`fingerprint`) is not that of its first form."""
        if idem in self.in_flight:
            return fault_answer(Fault("status", 409), request_id, None)
        stored = self.get(idem, ttl)
        if stored is None:
            return None
        if stored.fingerprint != digest:
            return error_answer(
                400,
                request_id,
                "Keys for idempotent requests can only be used with the same parameters "
                f"they were first used with. Try using a key other than '{idem}' if you "
                "meant to execute a different request.",
                "idempotency_error",
            )
        return json_answer(
            200,
            stored.body,
            request_id,
            {"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
        )

    def get(self, idem: str, ttl: float) -> StoredAnswer | None:
        """The answer stored for ``idem``, unless it is older than ``ttl`` seconds."""
        stored = self._answers.get(idem)
        if stored is not None and time.monotonic() - stored.at >= ttl:
            del self._answers[idem]
            self._bytes -= _size(idem, stored)
            return None
        return stored

    def put(
        self, idem: str, stored: StoredAnswer, *, most: int, most_bytes: int, ttl: float
    ) -> None:
        """Remember an answer; forget the oldest beyond the count, size and age bounds."""
        old = self._answers.pop(idem, None)
        if old is not None:
            self._bytes -= _size(idem, old)
        self._answers[idem] = stored
        self._bytes += _size(idem, stored)
        while self._answers and (
            len(self._answers) > most
            or self._bytes > most_bytes
            # Oldest first: stop at the first key still young enough.
            or stored.at - next(iter(self._answers.values())).at >= ttl
        ):
            key, dropped = self._answers.popitem(last=False)
            self._bytes -= _size(key, dropped)

    def clear(self) -> None:
        """Forget every answer (keys in flight stay: their requests are still answered)."""
        self._answers.clear()
        self._bytes = 0
