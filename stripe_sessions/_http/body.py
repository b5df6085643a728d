"""Reading an answer's body: identity-encoded only, at most MAX_RESPONSE_BYTES, a JSON object."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from .._safe_text import server_text

__all__ = ["MAX_RESPONSE_BYTES", "decode", "encoded", "read_body", "why_unread"]

#: The largest answer read, in bytes. Stripe's answers for this endpoint are a few KB,
#: an expanded Customer a few more: anything near this size is not Stripe talking.
MAX_RESPONSE_BYTES: Final = 1024 * 1024


def encoded(headers: Mapping[str, str]) -> bool:
    """Whether the body is compressed or otherwise encoded (the SDK asks for identity)."""
    encoding = headers.get("Content-Encoding")  # Stripe sends none
    return encoding is not None and encoding.strip().lower() not in ("", "identity")


async def read_body(resp: aiohttp.ClientResponse) -> bytes | None:
    """The whole body of an answer, or None when it is not read: encoded, or over the cap.

    A body left unread closes its connection (it cannot be reused).
    """
    length = resp.content_length
    if encoded(resp.headers) or (length is not None and length > MAX_RESPONSE_BYTES):
        resp.close()
        return None
    if length is not None:
        return await resp.read()  # aiohttp reads exactly that much
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            resp.close()
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def why_unread(headers: Mapping[str, str], secrets: tuple[str, ...] = ()) -> str:
    """What a body that :func:`read_body` did not read was, for a message.

    The encoding is the server's text: masked (a proxy may echo the key), bounded, escaped.
    """
    if encoded(headers):
        encoding = server_text(headers.get("Content-Encoding"), 60, secrets)
        return f"a {encoding!r}-encoded body although only identity encoding was asked for"
    return f"a body larger than {MAX_RESPONSE_BYTES} bytes"


def decode(raw: bytes) -> Any:
    """The JSON object in ``raw``, or a short description of why there is none."""
    try:
        payload = json.loads(raw)
    except RecursionError:
        return "JSON nested too deeply"
    except ValueError as e:  # UnicodeDecodeError and too-long integers included
        return f"not valid JSON: {type(e).__name__}, {len(raw)} bytes"
    if isinstance(payload, dict):
        return payload
    return f"a JSON {type(payload).__name__}, {len(raw)} bytes"
