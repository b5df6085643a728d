"""Reading a request's body within the fake's caps: its form, or why it is refused."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from ._parse import FormError, FormLimits, parse_form
from ._recording import RECORDED_BODY_CHARS, RecordedRequest, keep_form

__all__ = ["LateBody", "read_form"]


class LateBody(Exception):
    """A request's body did not arrive within ``body_timeout``."""


def _shown(text: str) -> str:
    """A caller's text for a message: a hostile one can be kilobytes long."""
    return repr(text if len(text) <= 100 else text[:100] + "...")


async def read_form(
    request: web.Request, rec: RecordedRequest, limits: FormLimits, body_timeout: float
) -> tuple[Any, str | None]:
    """The request's form (None when not a POST or not readable) and why it is refused.

    Fills in ``rec``'s body, size and form; raises :class:`LateBody` when the body takes
    longer than ``body_timeout`` seconds.
    """
    try:
        # A body that trickles in (or stops) holds a connection: bounded here, as
        # aiohttp bounds only the wait for a request's head (keepalive_timeout).
        raw = await asyncio.wait_for(request.read(), body_timeout)
    except asyncio.TimeoutError:
        raise LateBody from None
    except web.HTTPRequestEntityTooLarge:
        limit = limits.max_body_bytes
        return None, f"Invalid request body: it is larger than {limit} bytes."
    except ConnectionError:  # the client went away mid-body: nobody reads the answer
        return None, "Invalid request body: the connection was lost before it arrived."
    except (web.RequestPayloadError, HttpProcessingError) as e:  # bad chunking, cut short
        cause = e.__cause__ if isinstance(e, web.RequestPayloadError) else e
        reason = cause.message if isinstance(cause, HttpProcessingError) else str(cause)
        return None, f"Invalid request body: it could not be read ({reason or 'malformed'})."
    rec.size = len(raw)
    rec.body = raw[:RECORDED_BODY_CHARS].decode("utf-8", "replace")[:RECORDED_BODY_CHARS]
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Stripe takes plain form bodies. The fake does not inflate them either: a
        # 200 KB gzip body can inflate to 200 MB, seconds of work on the event loop.
        return None, (
            f"Invalid request body: Content-Encoding {_shown(encoding)} is not supported; "
            "send the form body uncompressed."
        )
    if request.method != "POST":
        return None, None
    try:
        form = parse_form(raw, limits)
    except FormError as e:
        return None, str(e)
    keep_form(rec, raw, form)
    return form, None
