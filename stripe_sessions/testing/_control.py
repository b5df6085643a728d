"""The fake's control endpoint under ``/_fake/``: JSON, no key, for tests in other processes.

Only the fake has it (Stripe has no such path); requests to it are not recorded, not
rate-limited and never meet a fault. Every bad input is a 400 with a JSON error body.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from ._answers import json_answer
from ._customers import is_customer_id, new_customer_id
from ._faults import check_reason
from ._objects import error_body, new_request_id
from ._recording import RecordedRequest

__all__ = ["CONTROL_PREFIX", "MAX_CONTROL_BODY", "MAX_LISTED", "Controlled", "control_answer"]

#: Paths under this prefix are the control endpoint's.
CONTROL_PREFIX = "/_fake/"
#: Largest control body read, in bytes (a fault is a few dozen).
MAX_CONTROL_BODY = 64 * 1024
#: Most entries ``GET /_fake/sessions`` and ``/_fake/requests`` return (default 100).
MAX_LISTED = 1000
#: Most faults one ``POST /_fake/faults`` may queue.
MAX_COUNT = 10_000
#: Most faults waiting at once, however many posts queued them (memory stays bounded).
MAX_QUEUED = 10_000
#: Most customers the endpoint adds (a strict fake's set), and the longest id it takes.
MAX_CUSTOMERS = 100_000
MAX_CUSTOMER_ID = 255
#: Longest ``slow`` fault, in seconds.
MAX_SLOW = 3600.0


class Controlled(Protocol):
    """What the control endpoint drives: :class:`FakeStripe`'s public API."""

    requests: list[RecordedRequest]
    sessions: list[dict[str, Any]]
    session_keys: list[str | None]
    customers: set[str] | None
    body_timeout: float

    @property
    def created(self) -> int: ...
    @property
    def queued_faults(self) -> int: ...
    def fail_next(
        self, status: int, times: int = 1, *, code: str | None = ..., reason: str | None = ...
    ) -> None: ...
    def reset_next(self, times: int = 1, *, after_create: bool = False) -> None: ...
    def slow_next(self, seconds: float, times: int = 1) -> None: ...
    def malformed_next(self, times: int = 1) -> None: ...
    def truncate_next(self, times: int = 1) -> None: ...
    def reset(self) -> None: ...
    def add_customer(self, *customer_ids: str) -> None: ...


class ControlError(Exception):
    """A control request refused with a 400 (or ``status``); ``str()`` is the message."""

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:100] + "..."


def _int(body: Mapping[str, Any], name: str, default: int | None, low: int, high: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ControlError(
            f"{name}: must be an integer from {low} to {high:,}, got {_shown(value)}", name
        )
    return value


def _text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not (isinstance(value, str) and value.isprintable() and value):
        raise ControlError(f"{name}: must be printable text, got {_shown(value)}", name)
    return value


def _queue_fault(fake: Controlled, body: Mapping[str, Any]) -> None:
    """Queue the fault ``body`` describes (see :data:`FAULT_FIELDS`), or raise ControlError."""
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in FAULT_FIELDS:
        raise ControlError(
            f"kind: must be one of {', '.join(FAULT_FIELDS)}, got {_shown(kind)}", "kind"
        )
    unknown = sorted(set(body) - {"kind", "count", *FAULT_FIELDS[kind]})
    if unknown:
        allowed = ", ".join(["count", *FAULT_FIELDS[kind]])
        raise ControlError(
            f"unknown field {_shown(unknown[0])} for kind {kind!r} (it takes {allowed})",
            unknown[0],
        )
    n = _int(body, "count", 1, 1, MAX_COUNT)
    queued = fake.queued_faults
    if queued + n > MAX_QUEUED:
        raise ControlError(
            f"count: at most {MAX_QUEUED:,} faults may wait at once and {queued:,} do; "
            "POST /_fake/reset drops them",
            "count",
        )
    if kind in ("status", "server_error"):
        low = 500 if kind == "server_error" else 400
        status = _int(body, "status", 500 if kind == "server_error" else None, low, 599)
        reason = _text(body, "reason")
        if reason is not None and status != 429:
            raise ControlError("reason: only a 429 carries one", "reason")
        _check_reason(reason)
        fake.fail_next(status, n, code=_text(body, "code"), reason=reason)
    elif kind == "rate_limit":
        reason = _text(body, "reason")
        _check_reason(reason)
        fake.fail_next(429, n, code="rate_limit", reason=reason)
    elif kind == "lock_timeout":
        fake.fail_next(429, n, code="lock_timeout")
    elif kind == "conflict":
        fake.fail_next(409, n)
    elif kind in ("reset_before", "reset_after"):
        fake.reset_next(n, after_create=kind == "reset_after")
    elif kind == "slow":
        seconds = body.get("seconds")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, (int, float))
            or not (math.isfinite(seconds) and 0 <= seconds <= MAX_SLOW)
        ):
            raise ControlError(
                f"seconds: must be a number from 0 to {MAX_SLOW:g}, got {_shown(seconds)}",
                "seconds",
            )
        fake.slow_next(float(seconds), n)
    elif kind == "malformed":
        fake.malformed_next(n)
    else:
        fake.truncate_next(n)


def _check_reason(reason: str | None) -> None:
    try:
        check_reason(reason)
    except ValueError as e:
        raise ControlError(str(e), "reason") from None


#: The kinds ``POST /_fake/faults`` queues, and the fields each takes besides ``kind``
#: and ``count``.
FAULT_FIELDS: dict[str, tuple[str, ...]] = {
    "status": ("status", "code", "reason"),
    "server_error": ("status",),
    "rate_limit": ("reason",),
    "lock_timeout": (),
    "conflict": (),
    "reset_before": (),
    "reset_after": (),
    "slow": ("seconds",),
    "malformed": (),
    "truncated": (),
}


def _limit(request: web.Request) -> int:
    text = request.query.get("limit", "100")
    if not (text.isascii() and text.isdigit() and len(text) <= 6 and 1 <= int(text) <= MAX_LISTED):
        raise ControlError(
            f"limit: must be an integer from 1 to {MAX_LISTED}, got {_shown(text)}", "limit"
        )
    return int(text)


def _request_entry(rec: RecordedRequest) -> dict[str, Any]:
    return {
        "request_id": rec.request_id,
        "method": rec.method,
        "path": rec.path,
        "status": rec.status,
        "fault": rec.fault,
        "idempotency_key": rec.idempotency_key,
        "form": rec.form,
    }


async def _read_json(request: web.Request, body_timeout: float) -> dict[str, Any]:
    """The request's JSON object (``{}`` for an empty body), or raise ControlError."""
    if request.content_length is not None and request.content_length > MAX_CONTROL_BODY:
        raise ControlError(f"the body is larger than {MAX_CONTROL_BODY} bytes")
    try:
        raw = await asyncio.wait_for(request.read(), body_timeout)  # 1 MiB at most
    except asyncio.TimeoutError:
        raise ControlError(f"the body did not arrive within {body_timeout:g} seconds") from None
    except (ConnectionError, web.HTTPException, ValueError) as e:
        raise ControlError(f"the body could not be read ({type(e).__name__})") from None
    if len(raw) > MAX_CONTROL_BODY:
        raise ControlError(f"the body is larger than {MAX_CONTROL_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        # Non-UTF-8 bytes and huge integers are ValueErrors; deep nesting a RecursionError.
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as e:
        reason = e.msg if isinstance(e, json.JSONDecodeError) else type(e).__name__
        raise ControlError(f"the body is not valid UTF-8 JSON ({reason})") from None
    if not isinstance(data, dict):
        raise ControlError(f"the body must be a JSON object, got {type(data).__name__}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def control_answer(fake: Controlled, request: web.Request) -> web.Response:
    """Answer a request under ``/_fake/``: see :class:`FakeStripe`'s docstring."""
    rid = "req_fake_" + new_request_id()[4:]
    try:
        data = await _route(fake, request)
    except ControlError as e:
        return json_answer(e.status, error_body(str(e), param=e.param), rid)
    return json_answer(200, data, rid)


async def _route(fake: Controlled, request: web.Request) -> dict[str, Any]:
    name = request.path[len(CONTROL_PREFIX) :]
    routes: dict[tuple[str, str], Callable[[], Any]] = {
        ("GET", "health"): lambda: {"ok": True},
        ("GET", "sessions"): lambda: _sessions(fake, n),
        ("GET", "requests"): lambda: {
            "object": "list",
            "data": [_request_entry(r) for r in fake.requests[-n:]],
        },
        ("POST", "reset"): fake.reset,
        ("POST", "faults"): lambda: _queue_fault(fake, body),
        ("POST", "customers"): lambda: _add_customer(fake, body),
    }
    if not any(path == name for _, path in routes):
        raise ControlError(
            f"no such control path: {_shown(request.path)}; see `stripe-sessions "
            "fake-server --help` (GET /_fake/health, /_fake/sessions, /_fake/requests; "
            "POST /_fake/faults, /_fake/reset, /_fake/customers)",
            status=404,
        )
    run = routes.get((request.method, name))
    if run is None:
        allowed = [m for m, path in routes if path == name]
        raise ControlError(f"use {' or '.join(allowed)} for {request.path}", status=405)
    n = _limit(request) if request.method == "GET" and name != "health" else 0
    body = await _read_json(request, fake.body_timeout) if request.method == "POST" else {}
    out = run()
    status = {
        "ok": True,
        "created": fake.created,
        "queued_faults": fake.queued_faults,
        "recorded_requests": len(fake.requests),
        "strict_customers": fake.customers is not None,
    }
    return {**status, **out} if isinstance(out, dict) else status


def _sessions(fake: Controlled, n: int) -> dict[str, Any]:
    # Paired from the newest: a test may have cut one list and not the other (was a 500).
    sessions, keys = fake.sessions[-n:], fake.session_keys[-n:]
    m = min(len(sessions), len(keys))
    pairs = zip(sessions[len(sessions) - m :], keys[len(keys) - m :], strict=True)
    data = [{"idempotency_key": k, "session": s} for s, k in pairs]
    return {"object": "list", "data": data, "created": fake.created}


def _add_customer(fake: Controlled, body: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(body) - {"id"})
    if unknown:
        raise ControlError(f"unknown field {_shown(unknown[0])} (it takes id)", unknown[0])
    customer = body.get("id")
    if customer is None:
        customer = new_customer_id()
    elif not is_customer_id(customer) or len(customer) > MAX_CUSTOMER_ID:
        raise ControlError(
            f"id: must be cus_ and letters, digits or underscores, {MAX_CUSTOMER_ID} "
            f"characters at most, got {_shown(customer)}",
            "id",
        )
    known = fake.customers
    if known is not None and customer not in known and len(known) >= MAX_CUSTOMERS:
        raise ControlError(f"at most {MAX_CUSTOMERS:,} customers may be added", "id")
    fake.add_customer(customer)
    return {"id": customer, "object": "customer"}
