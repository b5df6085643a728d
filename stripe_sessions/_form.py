"""Stripe's form encoding of nested parameters, and its inverse (used by the fake server).

Encoding follows what Stripe's libraries send (deepObject, exploded)::

    >>> encode({"components": {"pricing_table": {"enabled": True}}, "expand": ["customer"]})
    'components[pricing_table][enabled]=true&expand[0]=customer'

``None`` leaves the key out; an empty string, list or mapping is sent as ``key=``,
which is how Stripe clears a field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, quote_plus

__all__ = ["decode", "encode", "flatten"]


def _scalar(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"cannot form-encode a value of type {type(value).__name__}")


def flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    """Append the ``(key, value)`` pairs of ``value`` under ``prefix`` to ``out``."""
    if value is None:
        return
    if isinstance(value, Mapping):
        if not value:
            out.append((prefix, ""))
        for key, sub in value.items():
            flatten(sub, f"{prefix}[{key}]" if prefix else str(key), out)
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append((prefix, ""))
        for i, sub in enumerate(value):
            flatten(sub, f"{prefix}[{i}]", out)
    else:
        out.append((prefix, _scalar(value)))


#: Text that ``quote_plus`` would return unchanged (keys may also keep their brackets).
_PLAIN_VALUE: Final = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_.~\[\]-]*").fullmatch


def join(pairs: Iterable[tuple[str, str]]) -> str:
    """Percent-encode pairs into a body; brackets in keys stay readable, as Stripe sends them."""
    # Most keys and values (ids, "true", enum strings) need no quoting: skip quote_plus.
    return "&".join(
        f"{k if _PLAIN_KEY(k) else quote_plus(k, safe='[]')}="
        f"{v if _PLAIN_VALUE(v) else quote_plus(v)}"
        for k, v in pairs
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
    if node and all(k.isdigit() for k in node):
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
