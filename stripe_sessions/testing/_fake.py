"""FakeStripe: a real HTTP server on 127.0.0.1 that answers like Stripe for Customer Sessions."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import math
import random
import ssl
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from .._sync.portal import Portal
from .._wire.form import is_text
from ._auth import check_key, mask_headers
from ._objects import error_body, new_request_id, session_object
from ._parse import FormError, FormLimits, parse_form
from ._schema import ParamError, validate

__all__ = ["FakeStripe", "FaultMix", "FormLimits", "RecordedRequest"]

PATH = "/v1/customer_sessions"
#: Seconds a stopping fake waits for answers still in progress (slow faults) before dropping them.
SHUTDOWN_TIMEOUT = 0.5
#: Requests (and sessions) the fake remembers by default; older ones are dropped.
MAX_RECORDS = 10_000
#: Idempotency keys the fake remembers by default; the oldest is dropped first.
MAX_IDEMPOTENCY_KEYS = 10_000
#: Seconds an idempotency key is remembered by default: Stripe keeps keys for 24 hours.
IDEMPOTENCY_TTL = 24 * 60 * 60
#: Characters of a body a :class:`RecordedRequest` keeps (a real request is a few KB).
RECORDED_BODY_CHARS = 16 * 1024
#: Characters of each header value a :class:`RecordedRequest` keeps (aiohttp takes 8 KiB).
RECORDED_HEADER_CHARS = 1024
#: Characters of each header name a :class:`RecordedRequest` keeps (aiohttp takes 8 KiB).
RECORDED_NAME_CHARS = 256
#: Characters of header names and values a :class:`RecordedRequest` keeps in all (aiohttp
#: takes 128 headers of 8 KiB); Stripe's own headers (``STRIPE_HEADERS``) are kept first.
RECORDED_HEADERS_CHARS = 8 * 1024
#: Characters of the method and of the path a :class:`RecordedRequest` keeps.
RECORDED_METHOD_CHARS = 64
RECORDED_PATH_CHARS = 1024
#: Bytes a record's decoded form may take in memory to be kept (a real one takes ~2 KB).
RECORDED_FORM_BYTES = 32 * 1024
#: The most memory one :class:`RecordedRequest` takes whatever the request, as counted by
#: ``sys.getsizeof`` of its parts: text is 1 to 4 bytes a character, so 16 KiB of body
#: can take 64 KiB, and 8 KiB of headers 32 KiB plus their dict.
RECORD_BYTES = 192 * 1024
#: Bytes of memory each of the fake's stores (requests, sessions, remembered answers)
#: may keep by default; beyond it the oldest entries are dropped, as beyond ``max_records``.
MAX_RECORD_BYTES = 96 * 1024 * 1024
#: Headers a record keeps before any other, in this order (each still capped).
STRIPE_HEADERS = (
    "Authorization",
    "Idempotency-Key",
    "Stripe-Version",
    "Stripe-Account",
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "User-Agent",
)
#: Seconds an idle connection (no complete request head since it opened, or since its
#: last answer) is kept by default. aiohttp's client pools connections for 15 s: a longer
#: server-side wait lets the client close first, so that no request races the close.
KEEPALIVE_TIMEOUT = 30.0
#: Seconds a request's body may take to arrive by default, counted from its head.
BODY_TIMEOUT = 30.0

#: The fake's own log: a malformed request is one line here, at DEBUG.
logger = logging.getLogger("stripe_sessions.testing")
#: Stripe's bounds on an ``Idempotency-Key``, in characters.
MAX_IDEMPOTENCY_KEY = 255


@attrs.define
class RecordedRequest:
    """One request the fake received, as it arrived, and what it answered."""

    #: As received, cut to ``RECORDED_METHOD_CHARS`` (64) and ``RECORDED_PATH_CHARS``
    #: (1 KiB) characters and ``...``.
    method: str
    path: str
    #: As received, the first value of each name: names cut to ``RECORDED_NAME_CHARS``
    #: (256), values to ``RECORDED_HEADER_CHARS`` (1 KiB), each followed by ``...`` when
    #: cut, and at most ``RECORDED_HEADERS_CHARS`` (8 KiB) of them in all: ``STRIPE_HEADERS``
    #: first, then the others in arrival order while they fit. The repr masks the key in
    #: ``Authorization``.
    headers: dict[str, str] = attrs.field(repr=lambda h: repr(mask_headers(h)))
    #: The body as text (bytes that are not UTF-8 as U+FFFD), at most
    #: ``RECORDED_BODY_CHARS`` (16 KiB) of it; ``size`` is its whole length in bytes.
    body: str
    #: The decoded form body (``{}`` for a body that is not a form, not a POST, or longer
    #: than ``RECORDED_BODY_CHARS``).
    form: dict[str, Any]
    request_id: str
    status: int | None = None
    fault: str | None = None
    #: ``time.monotonic()`` when the request's headers arrived (before its body was read).
    at: float = attrs.field(factory=time.monotonic)
    #: The peer's ``host:port``: requests on one connection share it.
    peer: str | None = None
    #: ``time.monotonic()`` when the answer was ready (None until then, or for a reset).
    answered_at: float | None = None
    #: Bytes of body received (``None`` while it is still arriving, or when it was refused
    #: for its size, or did not arrive in time, before the end).
    size: int | None = None
    #: The memory this record is counted for in the fake's ``max_record_bytes``.
    _cost: int = attrs.field(default=0, init=False, repr=False, eq=False)

    @property
    def idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key`` header, if any."""
        return self.headers.get("Idempotency-Key")


@attrs.frozen
class FaultMix:
    """Probabilities of seeded random faults, each between 0 and 1, drawn once per request.

    ``server_error``: a 500/502/503 before anything is created; ``reset_before``: the
    connection drops before anything is created; ``reset_after``: the session is
    created but the connection drops before the answer (only the idempotency key
    saves the client from a duplicate); ``conflict``: 409; ``lock_timeout`` and
    ``rate_limit``: 429 with that code; ``malformed``: a 200 whose body is not JSON;
    ``slow``: the answer is delayed by ``slow_seconds``.
    """

    server_error: float = 0.0
    reset_before: float = 0.0
    reset_after: float = 0.0
    conflict: float = 0.0
    lock_timeout: float = 0.0
    rate_limit: float = 0.0
    malformed: float = 0.0
    slow: float = 0.0
    slow_seconds: float = 0.2

    def draw(self, rng: random.Random) -> str | None:
        """Pick at most one fault kind for a request."""
        roll = rng.random()
        for kind in (
            "server_error", "reset_before", "reset_after", "conflict",
            "lock_timeout", "rate_limit", "malformed", "slow",
        ):  # fmt: skip
            p: float = getattr(self, kind)
            if roll < p:
                return kind
            roll -= p
        return None


@attrs.define
class _Fault:
    kind: str  # "status", "reset_before", "reset_after", "malformed", "truncated", "slow"
    status: int = 500
    code: str | None = None
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    seconds: float = 0.0


@attrs.define
class _Stored:
    fingerprint: str
    body: bytes
    request_id: str
    at: float = attrs.field(factory=time.monotonic)


def _retained(obj: object) -> int:
    """Bytes ``obj`` keeps: ``sys.getsizeof`` of it and of each part, each object once.

    Hand-written: the standard library measures one object only, and the fake measures
    only what it builds itself (dicts, lists, text, attrs records), so no general
    profiler (pympler) is needed. Linear in the parts; a record has at most a few
    thousand.
    """
    seen: set[int] = set()
    todo = [obj]
    size = 0
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        size += sys.getsizeof(item)
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif attrs.has(type(item)):
            fields: Any = attrs.fields(type(item))  # type: ignore[arg-type]
            todo.extend(getattr(item, f.name) for f in fields)
    return size


def _cut(text: str, most: int) -> str:
    """``text``, or its first ``most`` characters and ``...``."""
    return text if len(text) <= most else text[:most] + "..."


def _recorded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a record keeps: see :attr:`RecordedRequest.headers`."""
    first: dict[str, tuple[str, str]] = {}  # name as sent -> (cut name, cut value)
    for name, value in headers.items():
        if name not in first:
            first[name] = (_cut(name, RECORDED_NAME_CHARS), _cut(value, RECORDED_HEADER_CHARS))
    kept: set[str] = set()
    room = RECORDED_HEADERS_CHARS
    stripe = {n.lower() for n in STRIPE_HEADERS}
    ours = sorted(
        (n for n in first if n.lower() in stripe),
        key=lambda n: [h.lower() for h in STRIPE_HEADERS].index(n.lower()),
    )
    for name in ours + [n for n in first if n.lower() not in stripe]:
        cost = len(first[name][0]) + len(first[name][1])
        if cost <= room:
            kept.add(name)
            room -= cost
    return dict(first[name] for name in first if name in kept)


class _ServerLog:
    """aiohttp's server log for the fake: a client's malformed request is one DEBUG line.

    aiohttp answers a request it cannot parse (a header line over 8 KiB, a control
    character, TLS sent to the HTTP port) with its own plain-text 400 before any handler
    or middleware runs, and logs the parser's traceback at ERROR. For a server that
    hostile clients may reach, that is one traceback per bad request; here it is one
    line naming the error's kind, never the bytes sent (they may carry a key). Any other
    error, e.g. in the fake's own code, is logged in full to ``aiohttp.server`` as usual.
    """

    def __init__(self) -> None:
        self._server = logging.getLogger("aiohttp.server")

    def _client_error(self, kw: dict[str, Any]) -> bool:
        return isinstance(kw.get("exc_info"), HttpProcessingError)

    def _one_line(self, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        peer = args[1] if len(args) > 1 else None
        logger.debug(
            "FakeStripe: malformed request from %s refused with 400 (%s)",
            peer,
            type(kw["exc_info"]).__name__,
        )

    def exception(self, *args: Any, **kw: Any) -> None:
        """Log an error: a client's malformed request as one line, anything else in full."""
        if self._client_error(kw):
            self._one_line(args, kw)
        else:
            self._server.exception(*args, **kw)

    def debug(self, *args: Any, **kw: Any) -> None:
        """Log at DEBUG: a client's malformed request as one line, anything else as is."""
        if self._client_error(kw):
            self._one_line(args, kw)
        else:
            self._server.debug(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def _shown(text: str) -> str:
    """A caller's text for a message: a hostile one can be kilobytes long."""
    return repr(text if len(text) <= 100 else text[:100] + "...")


class _LateBody(Exception):
    """A request's body did not arrive within ``body_timeout``."""


class _RateLimiter:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class FakeStripe:
    """An embedded Stripe for ``POST /v1/customer_sessions``: real HTTP on 127.0.0.1.

    ::

        async with FakeStripe() as fake:
            async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as stripe:
                await stripe.customer_sessions.create(customer="cus_1", components=...)
            fake.fail_next(503, times=2)                     # fault injection
            assert fake.requests[-1].form["customer"] == "cus_1"

    From sync code, ``with FakeStripe.running() as fake:`` serves from a thread.

    It validates parameters against Stripe's schema for this endpoint, takes any
    test key (``sk_test_…`` or ``rk_test_…``, as Bearer or as the Basic user name;
    live keys are refused), keeps Stripe's idempotency rules, can rate-limit
    (``rate_limit=`` requests per second; 429s carry no ``Retry-After``, as Stripe's,
    unless ``retry_after=`` seconds is given) and injects faults, either queued
    (``fail_next``, ``reset_next``, ``slow_next``, ``malformed_next``,
    ``truncate_next``) or drawn at random (``faults=FaultMix(...)``, ``seed=``).
    ``latency`` delays every answer, to make concurrency observable.
    ``ssl_context`` (a server-side ``ssl.SSLContext``) serves HTTPS instead of HTTP.

    Every customer exists by default, so any ``cus_…`` id works. Give ``customers=``
    (or call :meth:`add_customer`) to make the fake strict: any other customer is
    answered 400 ``resource_missing`` ("No such customer: 'cus_x'"), as Stripe does.

    Every answer to a request that carried an ``Idempotency-Key`` carries the same key
    back in an ``Idempotency-Key`` header, as Stripe's do: successes, replays, errors,
    injected faults and 429s alike (a fault's own ``headers=`` may override it, to test a
    client against a wrong echo). A key that is not valid UTF-8 cannot be sent back byte
    for byte, so it is refused with a 400 and not echoed.

    Limits, so that it can serve for days and no client can stall it: a body is parsed in
    linear time within ``limits`` (:class:`FormLimits`: 1 MiB, 1000 fields, 32 brackets
    per key by default) and a body beyond them is answered 400 ``invalid_request_error``;
    ``requests`` and ``sessions`` keep the last ``max_records`` (10,000) entries, oldest
    dropped (``created`` still counts them all); idempotency keys are kept for
    ``idempotency_ttl`` seconds (24 h, as Stripe) and at most ``max_idempotency_keys``
    (10,000) of them, oldest dropped first. Each of those three stores also keeps under
    ``max_record_bytes`` (96 MiB) of memory, oldest dropped first, and one request's
    record takes at most ``RECORD_BYTES`` (192 KiB) whatever was sent (see
    :class:`RecordedRequest`), so the fake holds under about 300 MiB at the defaults.
    A connection that has sent no complete request head ``keepalive_timeout`` (30 s)
    after it opened or after its last answer is closed, idle or half-sent alike; a body
    that has not arrived ``body_timeout`` (30 s) after its head is answered 400 and its
    connection closed. (aiohttp offers no cap on the number of connections: the
    timeouts are what frees the descriptors of a client that holds them.) A request
    aiohttp cannot parse gets aiohttp's plain-text 400 and one DEBUG line on the
    ``stripe_sessions.testing`` logger, not a traceback.
    """

    api_key = "sk_test_fake_0123456789abcdef"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: float | None = None,
        faults: FaultMix | None = None,
        seed: int | None = None,
        latency: float = 0.0,
        record: bool = True,
        retry_after: float | None = None,
        customers: Iterable[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        limits: FormLimits | None = None,
        max_records: int = MAX_RECORDS,
        max_idempotency_keys: int = MAX_IDEMPOTENCY_KEYS,
        idempotency_ttl: float = IDEMPOTENCY_TTL,
        max_record_bytes: int = MAX_RECORD_BYTES,
        keepalive_timeout: float = KEEPALIVE_TIMEOUT,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        if retry_after is not None and not (math.isfinite(retry_after) and retry_after >= 0):
            raise ValueError(
                f"retry_after: must be a finite number of seconds >= 0, got {retry_after!r}"
            )
        for name, bound in (
            ("max_records", max_records),
            ("max_idempotency_keys", max_idempotency_keys),
            ("max_record_bytes", max_record_bytes),
        ):
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
                raise ValueError(f"{name}: must be an integer >= 1, got {bound!r}")
        for name, seconds in (
            ("keepalive_timeout", keepalive_timeout),
            ("body_timeout", body_timeout),
        ):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not (math.isfinite(seconds) and seconds > 0)
            ):
                raise ValueError(f"{name}: must be a finite number of seconds > 0, got {seconds!r}")
        if not (math.isfinite(idempotency_ttl) and idempotency_ttl >= 0):
            raise ValueError(
                f"idempotency_ttl: must be a finite number of seconds >= 0, got {idempotency_ttl!r}"
            )
        #: The parser's caps: a body beyond them is answered 400.
        self.limits = limits if limits is not None else FormLimits()
        #: Most entries kept in ``requests`` and in ``sessions``/``session_keys``.
        self.max_records = max_records
        #: Most idempotency keys remembered; the oldest is forgotten first.
        self.max_idempotency_keys = max_idempotency_keys
        #: Seconds an idempotency key is remembered (Stripe: 24 hours).
        self.idempotency_ttl = idempotency_ttl
        #: Most memory, in bytes, each store keeps (requests; sessions; remembered answers).
        self.max_record_bytes = max_record_bytes
        #: Seconds a connection may wait for a complete request head (since it opened or
        #: since its last answer) before the fake closes it. Read when the fake starts.
        self.keepalive_timeout = float(keepalive_timeout)
        #: Seconds a request's body may take to arrive; a late one is answered 400 and its
        #: connection closed.
        self.body_timeout = float(body_timeout)
        self.host = host
        #: Serve HTTPS with this server-side context (e.g. from ``trustme``); None: HTTP.
        self.ssl_context = ssl_context
        #: Seconds sent as ``Retry-After`` on a rate_limit 429 (None, the default: no header,
        #: as Stripe answers).
        self.retry_after = retry_after
        #: The customers that exist (None, the default: every ``cus_...`` id exists).
        self.customers: set[str] | None = None if customers is None else set(customers)
        self.port = port
        self.faults = faults
        self.latency = latency
        self.record = record
        #: The last ``max_records`` requests, oldest first (a request is recorded when its
        #: headers arrive; its body, form and status are filled in as they come).
        self.requests: list[RecordedRequest] = []
        #: The last ``max_records`` sessions created, as the JSON body first sent for each.
        self.sessions: list[dict[str, Any]] = []
        #: The idempotency key of each entry of ``sessions`` (None when none was sent).
        self.session_keys: list[str | None] = []
        self._created = 0
        self._rng = random.Random(seed)
        self._limiter = _RateLimiter(rate_limit) if rate_limit else None
        self._queue: collections.deque[_Fault] = collections.deque()
        self._stored: collections.OrderedDict[str, _Stored] = collections.OrderedDict()
        self._stored_bytes = 0
        # What ``requests`` and ``sessions`` are counted for, and their lengths when last
        # counted: a test may clear or cut them, and then they are counted again.
        self._requests_bytes = 0
        self._requests_len = 0
        self._session_costs: collections.deque[int] = collections.deque()
        self._sessions_bytes = 0
        self._in_flight: set[str] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give a client, e.g. ``http://127.0.0.1:54321``."""
        if self._runner is None:
            raise RuntimeError("FakeStripe is not running: use 'async with FakeStripe()'")
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{self.host}:{self.port}"

    async def start(self) -> None:
        """Start serving on ``host``:``port`` (a free port when 0)."""
        # One byte over the cap, so that a body of exactly max_body_bytes is read whole.
        app = web.Application(
            client_max_size=self.limits.max_body_bytes + 1, middlewares=[self._every_request]
        )
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            auto_decompress=False,  # see _read: compressed bodies are refused, not inflated
            # aiohttp closes a connection still waiting for a complete request head this
            # long after it opened or after its last answer: idle and half-sent heads alike.
            # A slow body is _read's (body_timeout). aiohttp offers no cap on connections.
            keepalive_timeout=self.keepalive_timeout,
            logger=_ServerLog(),
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeStripe:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def running(cls, **kwargs: Any) -> Iterator[FakeStripe]:
        """Serve from a background thread with its own loop, for sync code and tests::

        with FakeStripe.running() as fake:
            with ss.Client(api_key=fake.api_key, base_url=fake.url) as stripe: ...
        """
        fake = cls(**kwargs)
        # The sync client's private loop thread serves the fake too: one mechanism.
        portal = Portal(fake.stop, name="FakeStripe", warn_in_loop=False)
        try:
            portal.call(fake.start)
        except BaseException:
            portal.close()
            raise
        try:
            yield fake
        finally:
            portal.close()

    def add_customer(self, *customer_ids: str) -> None:
        """Make these customers exist; from then on any other customer is ``resource_missing``."""
        if self.customers is None:
            self.customers = set()
        self.customers.update(customer_ids)

    # --- fault injection ---------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        code: str | None = None,
        body: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``code``) before doing anything.

        The body is Stripe's for that status unless given (a str or bytes body is
        sent as is, e.g. an HTML 502). A 429 with no code is a ``rate_limit``
        with ``Retry-After: 1``.
        """
        for _ in range(times):
            self._queue.append(_Fault("status", status, code, body, dict(headers or {})))

    def reset_next(self, times: int = 1, *, after_create: bool = False) -> None:
        """Drop the connection of the next ``times`` requests, before or after creating."""
        kind = "reset_after" if after_create else "reset_before"
        self._queue.extend(_Fault(kind) for _ in range(times))

    def slow_next(self, seconds: float, times: int = 1) -> None:
        """Delay the answer to the next ``times`` requests by ``seconds``."""
        self._queue.extend(_Fault("slow", seconds=seconds) for _ in range(times))

    def malformed_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 whose body is not JSON."""
        self._queue.extend(_Fault("malformed") for _ in range(times))

    def truncate_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 body cut short mid-stream."""
        self._queue.extend(_Fault("truncated") for _ in range(times))

    # --- answers -----------------------------------------------------------------------

    def _json(
        self,
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

    def _error(
        self,
        status: int,
        request_id: str,
        message: str,
        type: str = "invalid_request_error",
        **f: Any,
    ) -> web.Response:
        return self._json(status, error_body(message, type, **f), request_id)

    def _status_fault(self, fault: _Fault, request_id: str) -> web.Response:
        status, code, headers = fault.status, fault.code, dict(fault.headers)
        if fault.body is not None:
            kind = "text/html" if isinstance(fault.body, str) else "application/json"
            return self._json(status, fault.body, request_id, headers, kind)
        if status == 429 and code in (None, "rate_limit"):
            if self.retry_after is not None:  # Stripe never sends one; a proxy might
                headers.setdefault("Retry-After", f"{self.retry_after:g}")
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
        return self._json(status, body, request_id, headers)

    def _next_fault(self) -> _Fault | None:
        if self._queue:
            return self._queue.popleft()
        if self.faults is None:
            return None
        kind = self.faults.draw(self._rng)
        if kind is None:
            return None
        if kind == "server_error":
            return _Fault("status", self._rng.choice((500, 502, 503)))
        if kind == "conflict":
            return _Fault("status", 409)
        if kind in ("lock_timeout", "rate_limit"):
            return _Fault("status", 429, kind)
        if kind == "slow":
            return _Fault("slow", seconds=self.faults.slow_seconds)
        return _Fault(kind)

    @web.middleware
    async def _every_request(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request to the fake's handler, also those no route takes (``OPTIONS *``)."""
        return await self._handle(request)

    def _record(self, rec: RecordedRequest) -> None:
        if not self.record:
            return
        self.requests.append(rec)
        self._charge(rec)

    def _charge(self, rec: RecordedRequest) -> None:
        """Count ``rec``'s memory (again, once its body is in); drop the oldest beyond bounds."""
        if not self.record or rec._cost < 0:  # not kept, or dropped since
            return
        requests = self.requests
        if len(requests) < self._requests_len:  # cut from outside: count again
            self._requests_bytes = sum(r._cost for r in requests)
        cost = _retained(rec)
        self._requests_bytes += cost - rec._cost
        rec._cost = cost
        drop, kept = 0, self._requests_bytes
        while len(requests) - drop > self.max_records or (
            kept > self.max_record_bytes and len(requests) - drop > 1
        ):
            kept -= requests[drop]._cost
            requests[drop]._cost = -1
            drop += 1
        del requests[:drop]
        self._requests_bytes = kept
        self._requests_len = len(requests)

    async def _read(self, request: web.Request, rec: RecordedRequest) -> tuple[Any, str | None]:
        """The request's form (None when not a POST or not readable) and why it is refused."""
        try:
            # A body that trickles in (or stops) holds a connection: bounded here, as
            # aiohttp bounds only the wait for a request's head (keepalive_timeout).
            raw = await asyncio.wait_for(request.read(), self.body_timeout)
        except asyncio.TimeoutError:
            raise _LateBody from None
        except web.HTTPRequestEntityTooLarge:
            limit = self.limits.max_body_bytes
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
            form = parse_form(raw, self.limits)
        except FormError as e:
            return None, str(e)
        if len(raw) <= RECORDED_BODY_CHARS and _retained(form) <= RECORDED_FORM_BYTES:
            rec.form = form
        return form, None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        peername = request.transport.get_extra_info("peername") if request.transport else None
        rec = RecordedRequest(
            _cut(request.method, RECORDED_METHOD_CHARS),
            _cut(request.path, RECORDED_PATH_CHARS),
            _recorded_headers(request.headers),
            "",
            {},
            new_request_id(),
            peer=f"{peername[0]}:{peername[1]}" if peername else None,
        )
        self._record(rec)
        keys = request.headers.getall("Idempotency-Key", [])
        idem = keys[0] if keys else None
        # The echo: a key that is not UTF-8 (surrogate escapes) cannot go back unchanged,
        # and of two keys neither is the request's.
        echo = idem if idem is not None and len(keys) == 1 and is_text(idem) else None
        try:
            form, form_error = await self._read(request, rec)
        except _LateBody:
            return await self._late_body(request, rec)
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

    async def _late_body(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        """Answer a body that did not arrive within ``body_timeout``, then close."""
        resp = self._error(
            400,
            rec.request_id,
            f"Invalid request body: it did not arrive within {self.body_timeout:g} seconds.",
        )
        resp.force_close()
        rec.status, rec.answered_at = resp.status, time.monotonic()
        await resp.prepare(request)
        await resp.write_eof()
        # Closed now, not after aiohttp's lingering read of the rest (up to 10 s more).
        if request.transport is not None:
            request.transport.close()
        return resp

    async def _answer(
        self,
        request: web.Request,
        rec: RecordedRequest,
        form: dict[str, Any] | None,
        form_error: str | None,
        echo: str | None,
    ) -> web.StreamResponse | None:
        rid = rec.request_id
        if request.path != PATH or request.method != "POST":
            return self._error(
                404,
                rid,
                f"Unrecognized request URL ({request.method}: {request.path}). Please see "
                "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            )
        refused = check_key(request.headers.get("Authorization", ""))
        if refused is not None:
            return self._error(401, rid, refused)

        fault = self._next_fault()
        if fault is not None:
            rec.fault = fault.kind if fault.kind != "status" else str(fault.status)
            if fault.kind == "status":
                return self._status_fault(fault, rid)
            if fault.kind == "reset_before":
                return None
            if fault.kind == "slow":
                await asyncio.sleep(fault.seconds)
            if fault.kind == "malformed":
                return self._json(200, "<html>not json</html>", rid, content_type="text/html")
            if fault.kind == "truncated":
                return await self._truncated(request, rid, echo)
        if self._limiter is not None and not self._limiter.take():
            rec.fault = "rate_limited"
            return self._status_fault(_Fault("status", 429, "rate_limit"), rid)

        if form is None:
            return self._error(400, rid, form_error or "Invalid request body.")
        keys = request.headers.getall("Idempotency-Key", [])
        idem = keys[0] if keys else None
        if len(keys) > 1:
            return self._error(
                400,
                rid,
                f"Invalid Idempotency-Key: the request has more than one ({len(keys)}) "
                "Idempotency-Key headers; send exactly one.",
            )
        if idem is not None:
            refused = self._check_idempotency_key(idem, echo)
            if refused is not None:
                return self._error(400, rid, refused)
        # A digest: a valid form can be a megabyte (1000 ``expand`` ids of 5000 characters).
        fingerprint = hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest()
        if idem is not None:
            if idem in self._in_flight:
                return self._status_fault(_Fault("status", 409), rid)
            stored = self._stored_for(idem)
            if stored is not None:
                if stored.fingerprint != fingerprint:
                    return self._error(
                        400,
                        rid,
                        "Keys for idempotent requests can only be used with the same parameters "
                        f"they were first used with. Try using a key other than '{idem}' if you "
                        "meant to execute a different request.",
                        "idempotency_error",
                    )
                return self._json(
                    200,
                    stored.body,
                    rid,
                    {"Idempotent-Replayed": "true", "Original-Request": stored.request_id},
                )
        try:
            validate(form)
        except ParamError as e:
            return self._error(400, rid, e.message, code=e.code, param=e.param)
        customer = form.get("customer")
        if (
            self.customers is not None
            and isinstance(customer, str)
            and customer not in self.customers
        ):
            return self._error(
                400,
                rid,
                f"No such customer: '{customer}'",
                code="resource_missing",
                param="customer",
            )

        if idem is not None:
            self._in_flight.add(idem)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
            session = session_object(form)
            data = json.dumps(session).encode()
            self._created += 1
            self._keep_session(session, idem)
            if idem is not None:
                self._store(idem, _Stored(fingerprint, data, rid))
        finally:
            if idem is not None:
                self._in_flight.discard(idem)
        if fault is not None and fault.kind == "reset_after":
            return None
        return self._json(200, data, rid)

    @staticmethod
    def _check_idempotency_key(idem: str, echo: str | None) -> str | None:
        """None for a key Stripe takes, else the 400's message."""
        if echo is None:
            return "Invalid Idempotency-Key: it must be valid UTF-8 text."
        if not 1 <= len(idem) <= MAX_IDEMPOTENCY_KEY:
            return (
                f"Idempotent key length is {len(idem)}, which is outside accepted lengths. "
                f"Idempotent Keys must be 1-{MAX_IDEMPOTENCY_KEY} characters long. If you're "
                "looking for a decent generator, try using a UUID defined by IETF RFC 4122."
            )
        return None

    def _stored_for(self, idem: str) -> _Stored | None:
        """The answer stored for ``idem``, unless it is older than ``idempotency_ttl``."""
        stored = self._stored.get(idem)
        if stored is not None and time.monotonic() - stored.at >= self.idempotency_ttl:
            del self._stored[idem]
            self._stored_bytes -= self._stored_size(idem, stored)
            return None
        return stored

    def _keep_session(self, session: dict[str, Any], idem: str | None) -> None:
        """Keep a session; drop the oldest beyond ``max_records`` and ``max_record_bytes``."""
        sessions, keys, costs = self.sessions, self.session_keys, self._session_costs
        if not len(sessions) == len(keys) == len(costs):  # cut from outside: count again
            del keys[: len(keys) - len(sessions)]
            del sessions[: len(sessions) - len(keys)]
            costs.clear()
            costs.extend(_retained(s) for s in sessions)
            self._sessions_bytes = sum(costs)
        sessions.append(session)
        keys.append(idem)
        costs.append(_retained(session))
        self._sessions_bytes += costs[-1]
        drop = 0
        while len(costs) > 1 and (
            len(costs) > self.max_records or self._sessions_bytes > self.max_record_bytes
        ):
            self._sessions_bytes -= costs.popleft()
            drop += 1
        del sessions[:drop]
        del keys[:drop]

    def _store(self, idem: str, stored: _Stored) -> None:
        """Remember an answer; forget the oldest beyond the count, size and age bounds."""
        old = self._stored.pop(idem, None)
        if old is not None:
            self._stored_bytes -= self._stored_size(idem, old)
        self._stored[idem] = stored
        self._stored_bytes += self._stored_size(idem, stored)
        while self._stored and (
            len(self._stored) > self.max_idempotency_keys
            or self._stored_bytes > self.max_record_bytes
            # Oldest first: stop at the first key still young enough.
            or stored.at - next(iter(self._stored.values())).at >= self.idempotency_ttl
        ):
            key, dropped = self._stored.popitem(last=False)
            self._stored_bytes -= self._stored_size(key, dropped)

    @staticmethod
    def _stored_size(idem: str, stored: _Stored) -> int:
        return len(idem) + len(stored.body) + len(stored.fingerprint)

    async def _truncated(
        self, request: web.Request, rid: str, echo: str | None
    ) -> web.StreamResponse:
        data = json.dumps(session_object({"customer": "cus_truncated"})).encode()
        resp = web.StreamResponse(status=200, headers={"Request-Id": rid})
        if echo is not None:
            resp.headers["Idempotency-Key"] = echo
        resp.content_type = "application/json"
        resp.content_length = len(data)
        await resp.prepare(request)
        await resp.write(data[: len(data) // 3])
        if request.transport is not None:
            request.transport.abort()
        return resp

    # --- inspection --------------------------------------------------------------------

    @property
    def created(self) -> int:
        """How many sessions the fake created (replays excluded), since start or ``reset()``."""
        return self._created

    def reset(self) -> None:
        """Forget requests, sessions, stored idempotency keys and queued faults."""
        self._created = 0
        self.requests.clear()
        self.sessions.clear()
        self.session_keys.clear()
        self._stored.clear()
        self._stored_bytes = 0
        self._session_costs.clear()
        self._sessions_bytes = 0
        self._requests_bytes = self._requests_len = 0
        self._queue.clear()
