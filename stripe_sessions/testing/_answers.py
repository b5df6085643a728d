"""The fake's answers as aiohttp responses: JSON with a Request-Id, Stripe's errors, faults."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._faults import Fault
from ._objects import error_body, session_object
from ._recording import RecordedRequest

__all__ = [
    "error_answer",
    "fault_answer",
    "json_answer",
    "late_body_answer",
    "truncated_answer",
]


def json_answer(
    status: int,
    body: Any,
    request_id: str,
    headers: Mapping[str, str] | None = None,
    content_type: str = "application/json",
) -> web.Response:
    """Answer ``body``: a JSON value, or str/bytes sent as they are."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    resp = web.Response(status=status, body=data, content_type=content_type)
    resp.headers["Request-Id"] = request_id
    resp.headers.update(headers or {})
    return resp


def error_answer(
    status: int,
    request_id: str,
    message: str,
    type: str = "invalid_request_error",
    **f: Any,
) -> web.Response:
    """Answer Stripe's error body: ``message``, ``type`` and fields such as ``code``."""
    return json_answer(status, error_body(message, type, **f), request_id)


def fault_answer(fault: Fault, request_id: str, retry_after: float | None) -> web.Response:
    """Answer a status fault: its own body, else Stripe's for that status and code.

    ``retry_after``: seconds sent as ``Retry-After`` on a rate_limit 429 (None: none);
    the fault's ``reason``, if any, is sent as ``Stripe-Rate-Limited-Reason``.
    """
    status, code, headers = fault.status, fault.code, dict(fault.headers)
    if fault.reason is not None:
        headers.setdefault("Stripe-Rate-Limited-Reason", fault.reason)
    if fault.body is not None:
        kind = "text/html" if isinstance(fault.body, str) else "application/json"
        return json_answer(status, fault.body, request_id, headers, kind)
    if status == 429 and code in (None, "rate_limit"):
        if retry_after is not None:  # Stripe never sends one; a proxy might
            headers.setdefault("Retry-After", f"{retry_after:g}")
        body = error_body(
            "Request rate limit exceeded. Learn more about rate limits here "
            "https://stripe.com/docs/rate-limits.",
            code="rate_limit",
        )
    elif code == "lock_timeout":
        body = error_body(
            "This object cannot be accessed right now because another API request or "
            "Stripe process is currently accessing it.",
            code="lock_timeout",
        )
    elif status == 409:
        body = error_body(
            "There is currently another in-progress request using this Stripe token "
            "(probably the same idempotency key).",
            "idempotency_error",
            code="idempotency_key_in_use",
        )
    elif status >= 500:
        body = error_body("An unknown error occurred", "api_error")
    else:
        body = error_body(f"Simulated HTTP {status}", code=code)
    return json_answer(status, body, request_id, headers)


async def truncated_answer(
    request: web.Request, request_id: str, echo: str | None
) -> web.StreamResponse:
    """Answer a 200 cut short mid-stream: a third of its body, then the connection dropped."""
    data = json.dumps(session_object({"customer": "cus_truncated"})).encode()
    resp = web.StreamResponse(status=200, headers={"Request-Id": request_id})
    if echo is not None:
        resp.headers["Idempotency-Key"] = echo
    resp.content_type = "application/json"
    resp.content_length = len(data)
    await resp.prepare(request)
    await resp.write(data[: len(data) // 3])
    if request.transport is not None:
        request.transport.abort()
    return resp


async def late_body_answer(
    request: web.Request, rec: RecordedRequest, body_timeout: float
) -> web.StreamResponse:
    """Answer a body that did not arrive within ``body_timeout`` seconds, then close."""
    resp = error_answer(
        400,
        rec.request_id,
        f"Invalid request body: it did not arrive within {body_timeout:g} seconds.",
    )
    resp.force_close()
    rec.status, rec.answered_at = resp.status, time.monotonic()
    await resp.prepare(request)
    await resp.write_eof()
    # Closed now, not after aiohttp's lingering read of the rest (up to 10 s more).
    if request.transport is not None:
        request.transport.close()
    return resp
