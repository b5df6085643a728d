"""The batch key: checked or made, one idempotency key per item, and put on what ends a batch.

Each item is sent with the idempotency key ``f"{batch_key}-{index}"``, so a batch run
again with the same ``batch_key`` within Stripe's 24 hours creates nothing twice.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any, Final

from .._errors import ValidationError
from .._lifecycle import ClientClosedError

__all__ = ["MAX_BATCH_KEY", "closed_during", "item_key", "make_batch_key", "mark_batch_key"]

MAX_BATCH_KEY: Final = 200


def make_batch_key(batch_key: Any) -> str:
    """Check the caller's batch key, or make a random one (``None``)."""
    if batch_key is None:
        return uuid.uuid4().hex
    if not isinstance(batch_key, str) or not batch_key or len(batch_key) > MAX_BATCH_KEY:
        raise ValidationError(
            f"batch_key must be a non-empty string of at most {MAX_BATCH_KEY} characters",
            param="batch_key",
        )
    if not batch_key.isascii() or not batch_key.isprintable():
        raise ValidationError("batch_key must be printable ASCII", param="batch_key")
    if batch_key[0] == " " or batch_key[-1] == " ":  # HTTP drops it: another key arrives
        raise ValidationError("batch_key must not start or end with a space", param="batch_key")
    return batch_key


def item_key(batch_key: str, index: int) -> str:
    """The idempotency key of item ``index`` of the batch ``batch_key``."""
    return f"{batch_key}-{index}"


def mark_batch_key(error: BaseException, batch_key: str) -> None:
    """Put ``batch_key`` on an error that ends a batch, and say it in its traceback."""
    if getattr(error, "batch_key", None) == batch_key:
        return
    with contextlib.suppress(AttributeError, TypeError):  # an exception with __slots__
        error.batch_key = batch_key  # type: ignore[attr-defined]
        note = (
            f"stripe_sessions: run the batch again with batch_key={batch_key!r} "
            "to create nothing twice"
        )
        if hasattr(error, "add_note"):  # Python 3.11+
            error.add_note(note)
        else:  # 3.10: the list add_note keeps, read alike (3.10's tracebacks omit it)
            error.__notes__ = [*getattr(error, "__notes__", ()), note]  # type: ignore[attr-defined]


def closed_during(done: int, batch_key: str) -> ClientClosedError:
    """What ends a batch whose client was closed, after ``done`` items, with its key."""
    error = ClientClosedError(
        f"the client was closed during the batch, after {done} items; nothing more "
        "was sent: run it again with the same batch_key on an open client to create "
        "nothing twice",
        should_retry=False,
    )
    error.batch_key = batch_key
    return error
