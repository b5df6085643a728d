"""Stripe's form encoding of nested parameters (the fake server reads it with ``testing._parse``).

Encoding follows what Stripe's libraries send (deepObject, exploded)::

    >>> encode({"components": {"pricing_table": {"enabled": True}}, "expand": ["customer"]})
    'components[pricing_table][enabled]=true&expand[0]=customer'

``None`` leaves the key out; an empty string, list or mapping is sent as ``key=``,
which is how Stripe clears a field.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import quote_plus

from .._safe_text import safe_repr

__all__ = [
    "MAX_DEPTH",
    "MAX_INT",
    "EncodeError",
    "encode",
    "flatten",
    "is_text",
    "join",
    "quote_value",
]

#: Deepest nesting encoded. Stripe's own parameters nest a few levels; deeper is a mistake
#: (or a mapping that contains itself).
MAX_DEPTH: Final = 32
#: Stripe's integers are 64-bit.
MAX_INT: Final = 2**63


class EncodeError(ValueError):
    """A value that cannot be form-encoded; ``path`` names it (``a.b[0]``)."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


def is_text(value: str) -> bool:
    """Whether ``value`` can be sent as UTF-8 (a lone surrogate cannot)."""
    if value.isascii():  # O(1) in CPython: the common case costs nothing
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _scalar(value: Any, path: str) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        if not is_text(value):
            raise EncodeError(path, "is not valid Unicode text (a lone surrogate?)")
        return value
    if isinstance(value, int):
        if not -MAX_INT <= value < MAX_INT:
            raise EncodeError(path, "is out of range for a 64-bit integer")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EncodeError(path, f"must be a finite number, got {value}")
        return str(value)
    raise EncodeError(path, f"cannot form-encode a value of type {type(value).__name__}")


def flatten(
    value: Any, prefix: str, out: list[tuple[str, str]], path: str = "", depth: int = 0
) -> None:
    """Append the ``(key, value)`` pairs of ``value`` under ``prefix`` to ``out``.

    Raises :class:`EncodeError` naming the path of a value that cannot be sent: a
    non-string key, a key with a bracket, text that is not valid Unicode, an integer
    beyond 64 bits, NaN or infinity, an unknown type, or nesting deeper than
    :data:`MAX_DEPTH`.
    """
    if value is None:
        return
    if depth > MAX_DEPTH:
        raise EncodeError(
            path, f"is nested more than {MAX_DEPTH} levels deep (does it contain itself?)"
        )
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, ""))
        for key, sub in value.items():
            if not isinstance(key, str) or not key or not is_text(key):
                raise EncodeError(  # the key by its repr: a lone surrogate shown escaped
                    path,
                    f"keys must be non-empty strings of valid Unicode text, got {safe_repr(key)}",
                )
            if "[" in key or "]" in key:  # Stripe would read them as nesting
                raise EncodeError(
                    f"{path}.{key}" if path else key,
                    "keys must not contain '[' or ']' (the server reads them as nesting)",
                )
            flatten(
                sub,
                f"{prefix}[{key}]" if prefix else key,
                out,
                f"{path}.{key}" if path else key,
                depth + 1,
            )
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append((prefix, ""))
        for i, sub in enumerate(value):
            flatten(sub, f"{prefix}[{i}]", out, f"{path}[{i}]", depth + 1)
    else:
        out.append((prefix, _scalar(value, path)))


#: Text that ``quote_plus`` would return unchanged (keys may also keep their brackets).
_PLAIN_VALUE: Final = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_.~\[\]-]*").fullmatch


def quote_value(value: str) -> str:
    """``value`` percent-encoded for a form body (itself when it needs no quoting)."""
    return value if _PLAIN_VALUE(value) else quote_plus(value)


def join(pairs: Iterable[tuple[str, str]]) -> str:
    """Percent-encode pairs into a body; brackets in keys stay readable, as Stripe sends them."""
    # Most keys and values (ids, "true", enum strings) need no quoting: skip quote_plus.
    return "&".join(
        f"{k if _PLAIN_KEY(k) else quote_plus(k, safe='[]')}={quote_value(v)}" for k, v in pairs
    )


def encode(params: Mapping[str, Any]) -> str:
    """Encode a nested mapping as a Stripe form body."""
    out: list[tuple[str, str]] = []
    flatten(params, "", out)
    return join(out)
