"""Stripe's form encoding of nested parameters, and its inverse (used by the fake server).

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
from urllib.parse import parse_qsl, quote_plus

__all__ = ["MAX_DEPTH", "EncodeError", "decode", "encode", "flatten", "is_text", "quote_value"]

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
                raise EncodeError(path, "keys must be non-empty strings of valid Unicode text")
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


def _split_key(key: str) -> list[str]:
    head, sep, rest = key.partition("[")
    if not sep:
        return [key]
    parts = [head]
    while rest:
        part, _, rest = rest.partition("]")
        parts.append(part)
        if rest.startswith("["):
            rest = rest[1:]
        elif rest:
            # Text after a closing bracket that opens no new one: keep it literally.
            parts[-1] += "]" + rest
            break
    return parts


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    for key, sub in node.items():
        node[key] = _listify(sub)
    # Only canonical indexes ("0", "1", ...; not "00" or other digits) make a list.
    if node and all(k.isascii() and k.isdigit() and str(int(k)) == k for k in node):
        indexes = sorted(int(k) for k in node)
        if indexes == list(range(len(indexes))):
            return [node[str(i)] for i in indexes]
    return node


def decode(body: str) -> dict[str, Any]:
    """Decode a form body back into nested dicts and lists of strings.

    ``a[b]=1`` becomes ``{"a": {"b": "1"}}``; ``a[0]=x&a[1]=y`` and ``a[]=x&a[]=y``
    become lists. Raises ``ValueError`` for a key that is both a value and a container.
    """
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = _split_key(key)
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise ValueError(f"{key}: given both as a value and a hash")
            node = child
        last = parts[-1]
        if last == "":
            last = str(len(node))
        if isinstance(node.get(last), dict):
            raise ValueError(f"{key}: given both as a value and a hash")
        node[last] = value
    return {key: _listify(sub) for key, sub in root.items()}
