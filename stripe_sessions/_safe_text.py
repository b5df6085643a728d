"""Text from a server or a caller made safe to keep and print: secrets masked, bounded, escaped."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from multidict import CIMultiDict

__all__ = [
    "MAX_FIELD",
    "MAX_HEADER",
    "MAX_QUOTE",
    "masked_json",
    "printable",
    "redact",
    "request_id_of",
    "safe_headers",
    "safe_repr",
    "server_text",
    "unescape_json",
]

#: The most of a server's text quoted in an error message.
MAX_QUOTE: Final = 200
#: The longest server value kept in a short field: a request id, code, param, type.
MAX_FIELD: Final = 200
#: The longest header value kept on an error (aiohttp itself stops at 8190 bytes).
MAX_HEADER: Final = 1024

# API keys (secret ``sk_``, restricted ``rk_``; a key already masked as ``sk_test_****1234``
# does not match) and Customer Session client secrets. No word boundary before a key
# and none after it: a server may glue one to anything (``token_sk_live_...``,
# ``sk_live_..._suffix``); masking a little too much is the safe mistake.
_KEY: Final = re.compile(r"((?:sk|rk)_(?:(?:test|live)_)?)(?!(?:test|live)_)[A-Za-z0-9]{3,}")
_CLIENT_SECRET: Final = re.compile(r"cuss_secret_[A-Za-z0-9_]*")
# A JSON escape (``\u005f``) or any other backslash pair, so that ``\\u005f`` is read
# as an escaped backslash followed by text, as JSON reads it.
_ESCAPE: Final = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|.)", re.DOTALL)


def _unescaped(match: re.Match[str]) -> str:
    code = match.group(1)
    if code is not None:
        point = int(code, 16)
        # Written as itself, the text is the same JSON: every character but a quote, a
        # backslash, a control character and a lone surrogate may stand unescaped.
        if point >= 0x20 and point not in (0x22, 0x5C) and not 0xD800 <= point <= 0xDFFF:
            return chr(point)
    return match.group(0)


def unescape_json(text: str) -> str:
    """``text`` with each ``\\uXXXX`` escape that JSON does not need written as itself.

    Valid JSON stays valid and decodes to the same value; the point is that a key a
    server JSON-escaped (``sk\\u005ftest\\u005f...``) becomes visible to :func:`redact`
    before the text is kept or decoded.
    """
    return _ESCAPE.sub(_unescaped, text) if "\\u" in text else text


def redact(text: str, *secrets: str) -> str:
    """``text`` with every API key, client secret and each of ``secrets`` masked.

    Used on anything a server sent that an error quotes or keeps: a proxy's error
    page may echo the request, and a damaged answer may hold a client secret.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "****")
    if "_" not in text:  # nothing to find; the common case for Stripe's error bodies
        return text
    text = _CLIENT_SECRET.sub("<client secret>", text)
    return _KEY.sub(r"\1****", text)


def printable(value: str, limit: int) -> str:
    """``value`` cut to ``limit`` characters (then ``...``), every unprintable one escaped.

    A server's text becomes something a log line can hold: no lone surrogate (aiohttp
    decodes non-UTF-8 header bytes into them; a UTF-8 log handler cannot write them), no
    terminal escape sequence, no newline that forges a log record, no megabyte.
    """
    cut = len(value) > limit
    if cut:
        value = value[:limit]
    if not value.isprintable():
        value = "".join(
            c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in value
        )
        if len(value) > limit:
            value, cut = value[:limit], True
    return value + "..." if cut else value


def server_text(value: Any, limit: int = MAX_FIELD, secrets: tuple[str, ...] = ()) -> str | None:
    """A value a server sent, as text safe to keep and print; None when it is not text.

    Masked (:func:`redact`, with ``secrets``), then made :func:`printable` within ``limit``.
    """
    if not isinstance(value, str):
        return None
    return printable(redact(value, *secrets), limit)


#: A request id as Stripe writes it: nothing in it to bound, escape or mask.
_STRIPE_REQUEST_ID: Final = re.compile(r"req_[A-Za-z0-9]{1,100}").fullmatch


def request_id_of(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> str | None:
    """The ``Request-Id`` header, as Stripe sends it or else made safe by :func:`server_text`."""
    value = headers.get("Request-Id")
    if value is None or _STRIPE_REQUEST_ID(value):  # Stripe's own, as it is (about 0.2 us)
        return value
    return server_text(value, MAX_FIELD, secrets)


def safe_headers(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> CIMultiDict[str]:
    """A copy of an answer's headers to keep on an error: each value masked and bounded."""
    items = headers.items()  # every value of a repeated header, in order
    return CIMultiDict(
        (printable(name, MAX_FIELD), printable(redact(value, *secrets), MAX_HEADER))
        for name, value in items
    )


def masked_json(value: Any, secrets: tuple[str, ...]) -> Any:
    """Decoded JSON with every string (keys too) masked: the second pass, after decoding."""
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, list):
        return [masked_json(item, secrets) for item in value]
    if isinstance(value, dict):
        return {redact(k, *secrets): masked_json(v, secrets) for k, v in value.items()}
    return value


def safe_repr(value: Any, limit: int = 60) -> str:
    """A short ``repr`` for a message: never raises, never huge (a 5,000-digit int, say)."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except Exception:  # a caller's object whose __repr__ fails must not hide the real error
        return f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
