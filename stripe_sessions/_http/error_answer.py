"""A non-2xx answer read into the matching StripeError: status -> class, headers, body."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from .._errors import (
    MAX_MESSAGE,
    APIError,
    AuthenticationError,
    CardError,
    IdempotencyError,
    InvalidRequestError,
    PermissionDeniedError,
    RateLimitError,
    StripeError,
)
from .._safe_text import (
    MAX_FIELD,
    MAX_QUOTE,
    masked_json,
    printable,
    redact,
    request_id_of,
    safe_headers,
    unescape_json,
)

__all__ = ["MAX_ERROR_BODY", "error_from_response"]

#: The most of an error body kept on an exception (Stripe's error bodies are under 1 KiB).
MAX_ERROR_BODY: Final = 64 * 1024


def _classify(status: int, err_type: str | None, code: str | None) -> type[StripeError]:
    if status == 429 or (status == 400 and code == "rate_limit"):
        return RateLimitError
    if status in (400, 404):
        return IdempotencyError if err_type == "idempotency_error" else InvalidRequestError
    return {
        401: AuthenticationError,
        402: CardError,
        403: PermissionDeniedError,
    }.get(status, APIError)


def _text_or_none(value: Any, limit: int = MAX_FIELD) -> str | None:
    return printable(value, limit) if isinstance(value, str) else None


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    idempotency_key: str | None,
    secrets: tuple[str, ...] = (),
    unread: str | None = None,
) -> StripeError:
    """Turn a non-2xx answer into the matching exception, whatever its body holds.

    The body is kept only up to :data:`MAX_ERROR_BODY` and with keys and client
    secrets (and each of ``secrets``) masked, both in the text and in the decoded
    JSON (a key the server JSON-escaped, ``sk\\u005ftest...``, is masked too); a
    body that cannot be parsed (too deep, say) is treated as one that is not a Stripe
    error. ``unread`` says why the body was not read at all (too large, compressed).
    Every field is bounded and printable, every header masked: see :func:`server_text`.
    """
    text = redact(unescape_json(body[:MAX_ERROR_BODY].decode("utf-8", "replace")), *secrets)
    request_id = request_id_of(headers, secrets)
    should_retry_header = headers.get("Stripe-Should-Retry")
    should_retry = None if should_retry_header is None else should_retry_header == "true"
    headers = safe_headers(headers, secrets)
    payload: Any = None
    try:
        payload = json.loads(text) if text and len(body) <= MAX_ERROR_BODY else None
        payload = masked_json(payload, secrets)  # masked again, after decoding
    except (ValueError, RecursionError):
        payload = None
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        snippet = " ".join(text[: MAX_QUOTE * 4].split())[:MAX_QUOTE]
        kind = (
            printable(unread, MAX_QUOTE)
            if unread
            else ("an empty body" if not text.strip() else "a body that is not a Stripe error")
        )
        message = f"Stripe answered HTTP {status} with {kind}"
        if snippet:
            message += f": {snippet!r}"
        cls = _classify(status, None, None)
        return cls(
            message,
            http_status=status,
            request_id=request_id,
            idempotency_key=idempotency_key,
            headers=headers,
            body=text,
            json_body=payload if isinstance(payload, dict) else None,
            should_retry=should_retry,
        )
    err_type, code = _text_or_none(error.get("type")), _text_or_none(error.get("code"))
    cls = _classify(status, err_type, code)
    return cls(
        _text_or_none(error.get("message"), MAX_MESSAGE) or f"Stripe answered HTTP {status}",
        http_status=status,
        type=err_type,
        code=code,
        param=_text_or_none(error.get("param")),
        doc_url=_text_or_none(error.get("doc_url")),
        decline_code=_text_or_none(error.get("decline_code")),
        request_id=request_id,
        idempotency_key=idempotency_key,
        headers=headers,
        body=text,
        json_body=payload,
        should_retry=should_retry,
    )
