"""What the SDK reads in Stripe's JSON: the JSON types of a session's fields, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._errors import safe_repr

__all__ = ["Unreadable", "check_shape", "json_type"]


class Unreadable(ValueError):
    """A JSON value of the wrong type. Its message names the type, never the value
    (the value may be a client secret)."""


def json_type(value: Any) -> str:
    """What a JSON value is, in words: ``null``, ``a string``, ``an object``..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


#: The fields of a customer_session whose JSON type is checked before structuring,
#: with what each may be (Stripe's documented types; ``None`` means null or absent).
#: ``_converter._build_session`` tests the same types inline for the common answer:
#: change both (``tests/test_models.py`` checks they agree).
_SHAPE: Final = (
    ("client_secret", (str,), "a string"),
    ("created", (int,), "an integer"),
    ("expires_at", (int,), "an integer"),
    ("livemode", (bool,), "a boolean"),
    ("customer", (str, dict, type(None)), "a string, an object or null"),
    ("customer_account", (str, type(None)), "a string or null"),
    ("components", (dict, type(None)), "an object or null"),
)


def check_shape(data: Mapping[str, Any]) -> str | None:
    """Why ``data`` is not a customer_session this SDK can read, or None if it is.

    The answer names fields and JSON types, never values: a value may be a secret.
    """
    kind = data.get("object")
    if kind != "customer_session":
        shown = safe_repr(kind, 40) if isinstance(kind, str) else json_type(kind)
        return f"object: expected 'customer_session', got {shown}"
    for name, kinds, words in _SHAPE:
        value = data.get(name)
        if type(value) not in kinds:
            return f"{name}: expected {words}, got {json_type(value)}"
    return None
