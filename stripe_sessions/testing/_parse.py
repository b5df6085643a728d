"""The fake's form parser: linear time, with caps on body size, field count and bracket depth.

Hand-written rather than a general form decoder (the SDK's ``_wire.form`` only encodes)
because the fake reads bodies from anyone: it must refuse a hostile body
(``components[a][a]...`` nested 300,000 levels, a million fields, a key of a million
digits) with a 400 in time proportional to its size, where a general decoder may
recurse, re-copy the rest of a key once per bracket, or convert huge digit strings to
integers.

Costs: ``parse_qsl`` (one pass, percent-decoding), then each key is scanned once
(``str.find`` from an index, never re-slicing the rest), so a body costs O(its size);
the tree it builds has at most ``max_fields * (max_depth + 1)`` nodes.
"""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import parse_qsl

import attrs

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "MAX_FIELDS", "FormError", "FormLimits", "parse_form"]

#: Largest body read, in bytes (aiohttp's own default). A real request is a few KB.
MAX_BODY_BYTES: Final = 1024 * 1024
#: Most ``key=value`` fields in a body. This endpoint has about 40 parameters in all.
MAX_FIELDS: Final = 1000
#: Most brackets in one key. This endpoint nests 4 deep; the SDK encodes at most 32.
MAX_DEPTH: Final = 32


class FormError(ValueError):
    """A body the fake refuses with a 400 ``invalid_request_error``; ``str()`` is the message."""


def _positive(_: Any, attribute: attrs.Attribute[int], value: int) -> None:
    if not 1 <= value <= attribute.metadata.get("most", 2**62):
        raise ValueError(f"{attribute.name}: must be between 1 and its bound, got {value!r}")


@attrs.frozen
class FormLimits:
    """The caps of the fake's parser; any body beyond one is answered 400."""

    #: Bytes of body (after any Content-Encoding) read at most.
    max_body_bytes: int = attrs.field(default=MAX_BODY_BYTES, validator=_positive)
    #: ``key=value`` fields at most.
    max_fields: int = attrs.field(default=MAX_FIELDS, validator=_positive)
    #: ``[`` in one key at most (the decoded tree recurses this deep, so it stays small).
    max_depth: int = attrs.field(default=MAX_DEPTH, validator=_positive, metadata={"most": 100})


def _named(key: str) -> str:
    """A parameter name for a message: a hostile one can be a megabyte long."""
    return key if len(key) <= 200 else key[:200] + "..."


def _split_key(key: str, max_depth: int) -> list[str]:
    """``a[b][0]`` -> ``["a", "b", "0"]``, one pass over ``key``."""
    first = key.find("[")
    if first < 0:
        return [key]
    if key.count("[") > max_depth:
        raise FormError(
            f"Invalid request body: a parameter name is nested more than {max_depth} "
            f"levels deep: {_named(key[:first])}[...]"
        )
    parts = [key[:first]]
    i, end = first, len(key)
    while i < end and key[i] == "[":
        close = key.find("]", i + 1)
        if close < 0:  # an unclosed bracket: the rest is the name, as it came
            parts.append(key[i + 1 :])
            return parts
        parts.append(key[i + 1 : close])
        i = close + 1
    if i < end:  # text after a closing bracket that opens no new one: keep it literally
        parts[-1] += "]" + key[i:]
    return parts


def _listify(node: Any) -> Any:
    """Dicts whose keys are exactly ``"0"``..``"n-1"`` become lists (depth <= max_depth)."""
    if not isinstance(node, dict):
        return node
    for key, sub in node.items():
        node[key] = _listify(sub)
    n = len(node)
    width = len(str(n))
    # Canonical indexes only ("0", "1"; not "00"), never int() of a huge digit string.
    if node and all(
        len(k) <= width and k.isascii() and k.isdigit() and (k == "0" or k[0] != "0")
        and int(k) < n
        for k in node
    ):  # fmt: skip
        return [node[str(i)] for i in range(n)]
    return node


def parse_form(raw: bytes, limits: FormLimits) -> dict[str, Any]:
    """Decode a form body into nested dicts and lists of strings, or raise :class:`FormError`.

    ``a[b]=1`` becomes ``{"a": {"b": "1"}}``; ``a[0]=x&a[1]=y`` and ``a[]=x&a[]=y``
    become lists. Bytes that are not UTF-8, raw or percent-escaped, become U+FFFD.
    """
    if len(raw) > limits.max_body_bytes:
        raise FormError(f"Invalid request body: it is larger than {limits.max_body_bytes} bytes.")
    text = raw.decode("utf-8", "replace")
    if text.count("&") >= limits.max_fields:
        raise FormError(f"Invalid request body: it has more than {limits.max_fields} parameters.")
    root: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        parts = _split_key(key, limits.max_depth)
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            elif not isinstance(child, dict):
                raise FormError(
                    f"Invalid request body: {_named(key)} is given both as a value and a hash"
                )
            node = child
        last = parts[-1]
        if last == "":
            last = str(len(node))
        if isinstance(node.get(last), dict):
            raise FormError(
                f"Invalid request body: {_named(key)} is given both as a value and a hash"
            )
        node[last] = value
    return {key: _listify(sub) for key, sub in root.items()}
