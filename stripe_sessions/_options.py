"""RequestOptions: one call's own settings, checked once, carried from ``create`` to the wire.

``create`` builds one (a batch builds one for all its items, then one per item with the
item's key); the transport sends with it; the response gives it back, so whatever is
raised after a request carries the idempotency key that was actually sent.
"""

from __future__ import annotations

import os
from typing import Any, Final

import attrs

from ._config import check_header_value, check_retries, check_timeout
from ._errors import ValidationError

__all__ = ["MAX_IDEMPOTENCY_KEY", "RequestOptions", "check_idempotency_key", "new_idempotency_key"]

MAX_IDEMPOTENCY_KEY: Final = 255


def check_idempotency_key(key: Any) -> str:
    """Return ``key`` if Stripe accepts it as an ``Idempotency-Key``, else raise ValidationError."""
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters, got {key!r}"[:400],
            param="idempotency_key",
        )
    if not key.isprintable() or not key.isascii():
        raise ValidationError(
            "idempotency_key must be printable ASCII (it is sent as a header)",
            param="idempotency_key",
        )
    return key


def new_idempotency_key() -> str:
    """A fresh random key: 128 bits from the OS (safe after ``fork()``, unlike ``random``)."""
    return os.urandom(16).hex()


def _key(value: Any) -> str:
    return new_idempotency_key() if value is None else check_idempotency_key(value)


def _account(value: Any) -> str | None:
    return None if value is None else check_header_value("stripe_account", value)


def _version(value: Any) -> str | None:
    return None if value is None else check_header_value("stripe_version", value)


def _timeout(value: Any) -> float | None:
    return None if value is None else check_timeout("timeout", value)


def _retries(value: Any) -> int | None:
    return None if value is None else check_retries(value)


@attrs.frozen(slots=True)
class RequestOptions:
    """Per-call settings that override the client's; None means "the client's".

    Built from a call's arguments, each checked (a bad one raises ValidationError and
    nothing is sent). ``idempotency_key`` is always set: the caller's, or a fresh one,
    kept across the call's retries.
    """

    idempotency_key: str = attrs.field(default=None, converter=_key)
    stripe_account: str | None = attrs.field(default=None, converter=_account)
    stripe_version: str | None = attrs.field(default=None, converter=_version)
    timeout: float | None = attrs.field(default=None, converter=_timeout)
    max_retries: int | None = attrs.field(default=None, converter=_retries)
    #: A batch item: a shared ``rate_limiter`` holds it to the batch's share.
    batch: bool = False

    def for_key(self, idempotency_key: str) -> RequestOptions:
        """The same options with another idempotency key (a batch item's)."""
        return attrs.evolve(self, idempotency_key=idempotency_key)
