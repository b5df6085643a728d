"""FakeStripe: a real HTTP server on 127.0.0.1 that answers like Stripe for Customer Sessions."""

from __future__ import annotations

import math
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from .._sync.portal import Portal
from ._app import StripeEndpoint
from ._faults import FaultMix, check_reason
from ._idempotency import IDEMPOTENCY_TTL, MAX_IDEMPOTENCY_KEYS
from ._parse import FormLimits
from ._recording import MAX_RECORD_BYTES, MAX_RECORDS
from ._serverlog import ServerLog

__all__ = ["FakeStripe"]


def url_host(host: str) -> str:
    """``host`` as a URL's authority spells it: an IPv6 address in brackets (RFC 3986),
    its zone's ``%`` as ``%25`` (RFC 6874): ``::1`` -> ``[::1]``."""
    if ":" in host and not host.startswith("["):
        return "[" + host.replace("%", "%25") + "]"
    return host


#: Seconds a stopping fake waits for answers still in progress (slow faults) before dropping them.
SHUTDOWN_TIMEOUT = 0.5
#: Seconds an idle connection (no complete request head since it opened, or since its
#: last answer) is kept by default. aiohttp's client pools connections for 15 s: a longer
#: server-side wait lets the client close first, so that no request races the close.
KEEPALIVE_TIMEOUT = 30.0
#: Seconds a request's body may take to arrive by default, counted from its head.
BODY_TIMEOUT = 30.0


class FakeStripe(StripeEndpoint):
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
    (``rate_limit=`` requests per second, a token bucket; its 429s carry
    ``Stripe-Rate-Limited-Reason: global-rate``, or ``rate_limit_reason=``, and no
    ``Retry-After``, as Stripe's, unless ``retry_after=`` seconds is given) and injects
    faults, either queued (``fail_next``, ``reset_next``, ``slow_next``,
    ``malformed_next``, ``truncate_next``) or drawn at random (``faults=FaultMix(...)``,
    ``seed=``). ``latency`` (plus up to ``latency_jitter``, seeded) delays the creation
    of every session, to make concurrency observable. ``ssl_context`` (a server-side
    ``ssl.SSLContext``) serves HTTPS instead of HTTP.

    Every customer id of Stripe's shape exists by default: ``cus_`` and letters, digits
    or underscores; anything else (``"not a customer id"``) is answered 400
    ``resource_missing`` ("No such customer: '...'", param ``customer``), as Stripe
    does. Give ``customers=`` (or call :meth:`add_customer`) to make the fake strict:
    then only those customers exist.

    Tests in other processes (or languages) drive it through a control endpoint on the
    same port, JSON, no key (``control=False`` turns it off; such requests are not
    recorded, rate-limited or faulted): ``GET /_fake/health``; ``POST /_fake/faults``
    with ``{"kind": "status", "status": 503, "count": 2}`` (kinds: ``status``
    (``status``, ``code``, ``reason``), ``server_error``, ``rate_limit`` (``reason``),
    ``lock_timeout``, ``conflict``, ``reset_before``, ``reset_after``, ``slow``
    (``seconds``), ``malformed``, ``truncated``) queues faults as the methods above do;
    ``POST /_fake/reset`` is :meth:`reset`; ``POST /_fake/customers`` with
    ``{"id": "cus_..."}`` (or ``{}`` for a new id) is :meth:`add_customer`;
    ``GET /_fake/sessions?limit=100`` and ``GET /_fake/requests?limit=100`` list the
    newest sessions (with their idempotency keys) and requests, newest last (1000 at
    most). Bad input is a 400 with a Stripe-shaped JSON error naming the field.

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
        latency_jitter: float = 0.0,
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
        rate_limit_reason: str | None = "global-rate",
        control: bool = True,
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
        for name, seconds in (("latency", latency), ("latency_jitter", latency_jitter)):
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, (int, float))
                or not (math.isfinite(seconds) and seconds >= 0)
            ):
                raise ValueError(
                    f"{name}: must be a finite number of seconds >= 0, got {seconds!r}"
                )
        if rate_limit and not (math.isfinite(rate_limit) and rate_limit > 0):  # 0: none
            raise ValueError(f"rate_limit: must be a finite number > 0, got {rate_limit!r}")
        check_reason(rate_limit_reason)
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
        #: Random faults drawn for each request (None: only the queued ones).
        self.faults = faults
        #: Seconds each session takes to create, plus up to ``latency_jitter`` more
        #: (uniform, from an rng seeded with ``seed``).
        self.latency = latency
        self.latency_jitter = latency_jitter
        #: ``Stripe-Rate-Limited-Reason`` sent on the 429s of ``rate_limit``.
        self.rate_limit_reason = rate_limit_reason
        #: Serve the control endpoint under ``/_fake/`` (see the class docstring).
        self.control = control
        #: Keep ``requests`` (sessions are kept regardless).
        self.record = record
        super().__init__(seed=seed, rate_limit=rate_limit)
        self._runner: web.AppRunner | None = None
        self._bound_host = host

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give a client, e.g. ``http://127.0.0.1:54321``."""
        if self._runner is None:
            raise RuntimeError("FakeStripe is not running: use 'async with FakeStripe()'")
        scheme = "http" if self.ssl_context is None else "https"
        return f"{scheme}://{url_host(self.host or self._bound_host)}:{self.port}"

    async def start(self) -> None:
        """Start serving on ``host``:``port`` (a free port when 0)."""
        runner = web.AppRunner(
            self._web_app(),
            handle_signals=False,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT,
            auto_decompress=False,  # see read_form: compressed bodies are refused, not inflated
            # aiohttp closes a connection still waiting for a complete request head this
            # long after it opened or after its last answer: idle and half-sent heads alike.
            # A slow body is read_form's (body_timeout). aiohttp offers no cap on connections.
            keepalive_timeout=self.keepalive_timeout,
            logger=ServerLog(),
        )
        await runner.setup()
        site = web.TCPSite(
            runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context
        )
        await site.start()
        self._runner = runner
        # With host "" (every interface) each socket has its own port: the URL names the first.
        self._bound_host = str(runner.addresses[0][0])
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
