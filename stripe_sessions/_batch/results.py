"""What a batch gives back: one :class:`BatchResult` per item, and its progress counts."""

from __future__ import annotations

import attrs

from .._errors import StripeError
from .._wire.models import CustomerSession

__all__ = ["BatchProgress", "BatchResult", "Counts"]


@attrs.frozen
class BatchResult:
    """The outcome of one batch item: ``session`` or ``error``, never neither.

    ::

        for r in results:
            print(r.index, r.session.client_secret if r.ok else r.error)
    """

    index: int
    idempotency_key: str
    session: CustomerSession | None = None
    error: StripeError | None = None
    attempts: int = 0
    #: Seconds from the item's first request to its result (retries included).
    elapsed: float = 0.0
    #: The batch's key: run the batch again with ``batch_key=`` this to create nothing twice.
    batch_key: str = ""

    @property
    def ok(self) -> bool:
        """True when the item produced a session."""
        return self.session is not None

    @property
    def request_id(self) -> str | None:
        """Stripe's ``Request-Id`` of the last answer for this item, if one came."""
        if self.session is not None:
            return self.session.request_id
        return self.error.request_id if self.error is not None else None


@attrs.frozen
class BatchProgress:
    """Counts passed to ``on_progress`` each time an item finishes.

    ``total`` is None when the input has no length. ``retried`` counts extra attempts.
    """

    done: int
    total: int | None
    succeeded: int
    failed: int
    retried: int


@attrs.define
class Counts:
    """What a batch has counted so far: the numbers behind ``on_progress``."""

    done: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0

    def add(self, result: BatchResult) -> None:
        """Count one finished item."""
        self.done += 1
        if result.ok:
            self.succeeded += 1
        else:
            self.failed += 1
        self.retried += max(0, result.attempts - 1)

    def progress(self, total: int | None) -> BatchProgress:
        """The counts as a :class:`BatchProgress`."""
        return BatchProgress(self.done, total, self.succeeded, self.failed, self.retried)
