"""A batch item: what it may hold, read and checked into the form body of one create."""

from __future__ import annotations

from typing import Any, Final

from .._errors import ValidationError
from .._safe_text import redact
from .._wire.encode import encode_create, params_of

__all__ = ["encode_item", "unreadable_item"]

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
