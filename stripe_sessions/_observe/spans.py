"""An attempt's ``CLIENT`` span and duration measurement, and what its end says."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Final

from .._safe_text import redact, server_text
from .otel import Telemetry, error_type

__all__ = ["end_attempt", "outcome_of", "start_attempt"]

_REASON: Final = "Stripe-Rate-Limited-Reason"
#: An attempt's end on its span: attribute, and the outcome's key (when not None).
_SAID: Final = (
    ("stripe.request_id", "request_id"),
    ("stripe.error_code", "error_code"),
    ("stripe.rate_limit_reason", "rate_limit_reason"),
)


def outcome_of(
    answer: Any, failure: BaseException | None, secrets: tuple[str, ...]
) -> dict[str, Any]:
    """What an attempt's end says: status, request id, replayed, the error's type and code."""
    if failure is None:
        return {
            "status": answer.status,
            "request_id": answer.request_id,
            "idempotent_replayed": answer.replayed,
            "error_type": None,
            "error_code": None,
            "rate_limit_reason": None,
        }
    status = getattr(failure, "http_status", None)
    headers = getattr(failure, "headers", None)
    reason = headers.get(_REASON) if status == 429 and headers is not None else None
    return {
        "status": status,
        "request_id": getattr(failure, "request_id", None),
        "idempotent_replayed": False,
        "error_type": type(failure).__name__,
        "error_code": getattr(failure, "code", None),
        "rate_limit_reason": server_text(reason, 100, secrets),
    }


@lru_cache(maxsize=32)
def _url_full(url: str) -> str:
    # A base URL's path may hold a key (a gateway's ``https://gw/sk_live_.../``): errors
    # mask it, and so must a span. One URL per client, so a cache lookup per attempt.
    return redact(url)


def start_attempt(telemetry: Telemetry, request: Any, described: dict[str, Any]) -> Any:
    """An attempt's ``CLIENT`` span, made current with HTTP instrumentations suppressed."""
    api = telemetry.api
    path = described["path"]
    attributes = {
        **telemetry.server,
        "url.full": _url_full(request.url),  # base URL (no credentials, keys masked) + path
        "url.template": path,
        "stripe.idempotency_key": described["idempotency_key"],
        "stripe.api_version": described["api_version"],
    }
    if described["attempt"] > 1:
        attributes["http.request.resend_count"] = described["attempt"] - 1
    if described["stripe_account"] is not None:
        attributes["stripe.account"] = described["stripe_account"]
    span = telemetry.tracer.start_span(f"POST {path}", kind=api.CLIENT, attributes=attributes)
    context = api.context.set_value(api.SUPPRESS_HTTP, True, api.trace.set_span_in_context(span))
    return span, api.context.attach(context)


def end_attempt(
    telemetry: Telemetry,
    span: Any,
    token: Any,
    described: dict[str, Any],
    outcome: dict[str, Any],
    failure: BaseException | None,
    elapsed: float,
) -> None:
    """End an attempt's span with its outcome, and measure its duration."""
    api = telemetry.api
    api.context.detach(token)
    status = outcome["status"]
    measured = {**telemetry.server, "url.template": described["path"]}
    said: dict[str, Any] = {"stripe.idempotent_replayed": outcome["idempotent_replayed"]}
    if status is not None:
        measured["http.response.status_code"] = said["http.response.status_code"] = status
    if failure is not None:
        kind = str(status) if status is not None and status >= 400 else error_type(failure)
        measured["error.type"] = said["error.type"] = kind
        span.set_status(api.ERROR, kind)
    for name, key in _SAID:
        if outcome[key] is not None:
            said[name] = outcome[key]
    span.set_attributes(said)  # one call: each takes the span's lock
    span.end()
    telemetry.duration.record(elapsed, measured)
