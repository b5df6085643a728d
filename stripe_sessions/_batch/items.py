"""A batch item: what it may hold, read and checked into the form body of one create;
its state on the way, and its result."""

from __future__ import annotations

import time
from typing import Any, Final

import attrs

from .._errors import APIError, StripeError, ValidationError
from .._http.options import RequestOptions
from .._safe_text import redact
from .._wire.encode import encode_create, params_of
from .._wire.models import CustomerSession
from .results import BatchResult

__all__ = ["Item", "encode_item", "unforeseen", "unreadable_item"]

#: What a batch item may hold: ``create``'s parameters.
_CREATE_KEYS: Final = frozenset(
    ("components", "customer", "customer_account", "expand", "extra_params")
)


def encode_item(item: Any, stripe_version: str | None = None) -> str:
    """Check one batch item (a dict of ``create``'s parameters or a CreateParams) and
    return its form body; a bad item raises :class:`ValidationError` naming the path.
    ``stripe_version`` is the one its request carries (a preview component needs one)."""
    kwargs = params_of(item)
    unknown = kwargs.keys() - _CREATE_KEYS
    if unknown:
        name = sorted(map(str, unknown))[0]
        raise ValidationError(
            f"{name}: unknown parameter (a batch item takes {', '.join(sorted(_CREATE_KEYS))})",
            param=name,
        )
    if "components" not in kwargs:
        raise ValidationError(
            "components: is required: enable at least one component", param="components"
        )
    return encode_create(**kwargs, stripe_version=stripe_version)


def unreadable_item(e: Exception) -> ValidationError:
    """The error of an item that raised while being read (not a ValidationError)."""
    return ValidationError(
        f"params: this item could not be read: {type(e).__name__}: {redact(str(e))[:200]}",
        param="params",
    )


def unforeseen(e: Exception, key: str) -> APIError:
    """The error of an item whose sending failed unforeseen (a bug, an odd answer)."""
    return APIError(
        f"sending this item failed: {type(e).__name__}: {redact(str(e))[:200]}",
        idempotency_key=key,
    )


@attrs.define
class Item:
    """One item on its way: its body and options, and how its attempts went so far."""

    index: int
    body: str
    request: RequestOptions
    attempts: int = 0
    #: ``time.monotonic()`` when its first attempt started.
    started: float = 0.0
    #: The pacer's epoch when the last attempt started (a 429 halves the pace once per epoch).
    epoch: int = 0

    def result(
        self,
        batch_key: str,
        session: CustomerSession | None = None,
        error: StripeError | None = None,
    ) -> BatchResult:
        """How the item ended: its session or its error, with its attempts and time."""
        elapsed = time.monotonic() - self.started if self.attempts else 0.0
        return BatchResult(
            self.index,
            self.request.idempotency_key,
            session=session,
            error=error,
            attempts=self.attempts,
            elapsed=elapsed,
            batch_key=batch_key,
        )
