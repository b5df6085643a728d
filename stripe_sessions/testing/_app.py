"""The fake's endpoint: each request recorded, read, checked as Stripe checks it, and answered."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from aiohttp import web

from .._wire.form import is_text
from ._answers import (
    error_answer,
    fault_answer,
    json_answer,
    late_body_answer,
    truncated_answer,
)
from ._auth import check_key
from ._control import CONTROL_PREFIX, control_answer
from ._customers import customer_refusal
from ._faults import Fault, FaultMix, FaultQueue
from ._idempotency import IdempotencyStore, StoredAnswer, fingerprint, key_refusal
from ._inject import FaultInjection
from ._objects import session_object
from ._parse import FormLimits
from ._ratelimit import TokenBucket
from ._recording import RecordedRequest, RequestLog, SessionLog, new_record
from ._request import LateBody, read_form
from ._schema import ParamError, validate

__all__ = ["PATH", "StripeEndpoint"]

PATH = "/v1/customer_sessions"


class StripeEndpoint(FaultInjection):
    """What :class:`FakeStripe` does with each request: its records, its memory, its faults.

    FakeStripe sets and documents the settings below and serves :meth:`_web_app` over
    HTTP; every request reads the settings as they are then, so a test may change them.
    """

    limits: FormLimits
    body_timeout: float
    record: bool
    max_records: int
    max_record_bytes: int
    max_idempotency_keys: int
    idempotency_ttl: float
    retry_after: float | None
    customers: set[str] | None
    faults: FaultMix | None
    latency: float
    latency_jitter: float
    rate_limit_reason: str | None
    control: bool

    def __init__(self, *, seed: int | None, rate_limit: float | None) -> None:
        #: The last ``max_records`` requests, oldest first (a request is recorded when its
        #: headers arrive; its body, form and status are filled in as they come).
        self.requests: list[RecordedRequest] = []
        #: The last ``max_records`` sessions created, as the JSON body first sent for each.
        self.sessions: list[dict[str, Any]] = []
        #: The idempotency key of each entry of ``sessions`` (None when none was sent).
        self.session_keys: list[str | None] = []
        self._created = 0
        self._queue = FaultQueue(seed)
        self._jitter = random.Random(seed)  # its own: jitter leaves the faults' draws alone
        self._limiter = TokenBucket(rate_limit) if rate_limit else None
        self._stored = IdempotencyStore()
        self._request_log = RequestLog()
        self._session_log = SessionLog()

    # --- inspection --------------------------------------------------------------------

    @property
    def created(self) -> int:
        """How many sessions the fake created (replays excluded), since start or ``reset()``."""
        return self._created

    def add_customer(self, *customer_ids: str) -> None:
        """Make these customers exist; from then on any other customer is ``resource_missing``."""
        if self.customers is None:
            self.customers = set()
        self.customers.update(customer_ids)

    @property
    def remembered_keys(self) -> int:
        """How many idempotency keys (with their answers) the fake remembers now: at most
        ``max_idempotency_keys``; those older than ``idempotency_ttl`` are dropped as new
        keys arrive (and are never replayed)."""
        return len(self._stored)

    def reset(self) -> None:
        """Forget requests, sessions, stored idempotency keys and queued faults; the
        settings (``customers``, ``faults``, the rate limit's bucket) stay as they are."""
        self._created = 0
        self.requests.clear()
        self.sessions.clear()
        self.session_keys.clear()
        self._stored.clear()
        self._session_log.clear()
        self._request_log.clear()
        self._queue.clear()

    # --- answers -----------------------------------------------------------------------

    def _web_app(self) -> web.Application:
        """The aiohttp application that answers every request (for ``FakeStripe.start``)."""
        # One byte over the cap, so that a body of exactly max_body_bytes is read whole.
        app = web.Application(
            client_max_size=self.limits.max_body_bytes + 1, middlewares=[self._every_request]
        )
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    @web.middleware
    async def _every_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request to the fake's handler, also those no route takes (``OPTIONS *``)."""
        return await self._handle(request)

    def _charge(self, rec: RecordedRequest) -> None:
        """Count ``rec``'s memory (again, once its body is in); drop the oldest beyond bounds."""
        if self.record:
            self._request_log.charge(self.requests, rec, self.max_records, self.max_record_bytes)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.control and request.path.startswith(CONTROL_PREFIX):
            return await control_answer(self, request)
        rec = new_record(request)
        if self.record:
            self.requests.append(rec)
            self._charge(rec)
        keys = request.headers.getall("Idempotency-Key", [])
        idem = keys[0] if keys else None
        # The echo: a key that is not UTF-8 (surrogate escapes) cannot go back unchanged,
        # and of two keys neither is the request's.
        echo = idem if idem is not None and len(keys) == 1 and is_text(idem) else None
        try:
            form, form_error = await read_form(request, rec, self.limits, self.body_timeout)
        except LateBody:
            return await late_body_answer(request, rec, self.body_timeout)
        finally:
            self._charge(rec)
        resp = await self._answer(request, rec, form, form_error, echo)
        rec.answered_at = time.monotonic()
        rec.status = resp.status if resp is not None else None
        if resp is None:  # a simulated connection reset
            if request.transport is not None:
                request.transport.abort()
            return web.Response()
        if echo is not None and not resp.prepared:
            resp.headers.setdefault("Idempotency-Key", echo)
        return resp

    async def _answer(
        self,
        request: web.Request,
        rec: RecordedRequest,
        form: dict[str, Any] | None,
        form_error: str | None,
        echo: str | None,
    ) -> web.StreamResponse | None:
        """The answer to a request (None: drop the connection): route, key, faults, limit."""
        rid = rec.request_id
        if request.path != PATH or request.method != "POST":
            return error_answer(
                404,
                rid,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        refused = check_key(request.headers.get("Authorization", ""))
        if refused is not None:
            return error_answer(401, rid, refused)

        fault = self._queue.next(self.faults)
        if fault is not None:
            rec.fault = fault.kind if fault.kind != "status" else str(fault.status)
            if fault.kind == "status":
                return fault_answer(fault, rid, self.retry_after)
            if fault.kind == "reset_before":
                return None
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault.kind == "malformed":
                return json_answer(200, "<html>not json</html>", rid, content_type="text/html")
            if fault.kind == "truncated":
                return await truncated_answer(request, rid, echo)
        if self._limiter is not None and not self._limiter.take():
            rec.fault = "rate_limited"
            limited = Fault("status", 429, "rate_limit", reason=self.rate_limit_reason)
            return fault_answer(limited, rid, self.retry_after)

        if form is None:
            return error_answer(400, rid, form_error or "Invalid request body.")
        reset_after = fault is not None and fault.kind == "reset_after"
        return await self._create(request, rid, form, echo, reset_after)

    async def _create(
        self,
        request: web.Request,
        rid: str,
        form: dict[str, Any],
        echo: str | None,
        reset_after: bool,
    ) -> web.Response | None:
        """Create a session as Stripe does (the key's rules, a replay, the params, the
        customer); None when ``reset_after`` drops the connection once it is created."""
        keys = request.headers.getall("Idempotency-Key", [])
        idem = keys[0] if keys else None
        if len(keys) > 1:
            return error_answer(
                400,
                rid,
                f"Invalid Idempotency-Key: the request has more than one ({len(keys)}) "
                "Idempotency-Key headers; send exactly one.",
            )
        if idem is not None:
            refused = key_refusal(idem, echo)
            if refused is not None:
                return error_answer(400, rid, refused)
        digest = fingerprint(form)
        if idem is not None:
            replayed = self._stored.replay(idem, digest, rid, self.idempotency_ttl)
            if replayed is not None:
                return replayed
        try:
            validate(form, request.headers.get("Stripe-Version"))
        except ParamError as e:
            return error_answer(400, rid, e.message, code=e.code, param=e.param)
        missing = customer_refusal(form.get("customer"), self.customers)
        if missing is not None:
            return error_answer(400, rid, missing, code="resource_missing", param="customer")

        if idem is not None:
            self._stored.in_flight.add(idem)
        try:
            delay = self.latency + self._jitter.uniform(0, self.latency_jitter)
            if delay:
                await asyncio.sleep(delay)
            session = session_object(form)
            data = json.dumps(session).encode()
            self._created += 1
            self._session_log.keep(
                self.sessions,
                self.session_keys,
                session,
                idem,
                self.max_records,
                self.max_record_bytes,
            )
            if idem is not None:
                self._stored.put(
                    idem,
                    StoredAnswer(digest, data, rid),
                    most=self.max_idempotency_keys,
                    most_bytes=self.max_record_bytes,
                    ttl=self.idempotency_ttl,
                )
        finally:
            if idem is not None:
                self._stored.in_flight.discard(idem)
        if reset_after:
            return None
        return json_answer(200, data, rid)
