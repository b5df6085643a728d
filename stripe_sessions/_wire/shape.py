"""What a customer_session's JSON must be before one is built: the one table of its fields'
JSON types, and the checks no type can express. Messages name types, never values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from .._safe_text import server_text

__all__ = ["check_shape", "json_type"]


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


#: The fields of a customer_session whose JSON type is checked before anything is built,
#: with what each may be (Stripe's documented types; ``None`` means null or absent).
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
        # The server's text: masked (a key or a client secret in it is not shown), bounded.
        shown = repr(server_text(kind, 40)) if isinstance(kind, str) else json_type(kind)
        return f"object: expected 'customer_session', got {shown}"
    for name, kinds, words in _SHAPE:
        value = data.get(name)
        if type(value) not in kinds:
            return f"{name}: expected {words}, got {json_type(value)}"
    return _impossible(data["client_secret"], data["created"], data["expires_at"])


def _impossible(client_secret: str, created: int, expires_at: int) -> str | None:
    """Why a session of the right types still cannot be, or None.

    A session with no client secret is of no use to a front end, one whose client
    secret is not one (an ``sk_`` key the SDK would hand to a browser, a value with a
    space or a newline) is not Stripe's answer, and one that expires before it was
    created was never valid: all are refused (the message names the fields and the
    timestamps, never the secret).
    """
    if not client_secret:
        return "client_secret: expected a non-empty string, got an empty string"
    if not _plausible_secret(client_secret):
        # Never the value: it may be an API key a confused server put there.
        return (
            "client_secret: expected a client secret (Stripe's prefix, then printable "
            f"ASCII without spaces), got a string of {len(client_secret)} characters that "
            "is not one"
        )
    # A timestamp no datetime can hold is left to the converter, which says so.
    if expires_at < created and _FIRST <= created <= _LAST and _FIRST <= expires_at <= _LAST:
        return f"expires_at ({expires_at}) is earlier than created ({created})"
    return None


#: A client secret as Stripe makes them: ``cuss_secret_`` and printable, non-space ASCII
#: (Stripe's are ``cuss_secret_`` and 46 letters and digits; the length and alphabet
#: after the prefix are not documented, so only what could never be one is refused).
_SECRET: Final = re.compile("cuss_secret_[!-~]+")


def _plausible_secret(value: str) -> bool:
    """Whether ``value`` could be a customer session's client secret."""
    return _SECRET.fullmatch(value) is not None


#: The Unix timestamps of 0001-01-01 and 9999-12-31 (UTC), the range of a datetime.
_FIRST: Final = -62_135_596_800
_LAST: Final = 253_402_300_799
