"""A stateful property test: one client's whole life against a faulty Stripe behind a hostile proxy.

A hypothesis ``RuleBasedStateMachine`` interleaves single creates (some concurrent),
batches (``create_many``, ``stream_many`` drained, closed, dropped or left dangling
midway), cancellations, ``with_options`` copies, ``aclose`` and a fresh client, dropped
iterators and garbage collection (on the main thread or another one), while each step
may change how the server behaves: the embedded ``FakeStripe`` queues faults (statuses,
resets before and after creating, slow answers, malformed and truncated bodies, rate
limiting) and a tampering ``Proxy`` (tests/hostile_tcp.py) in front of it delays,
trickles, cuts, duplicates, swallows or injects bytes. Invariants, checked on every call or step:

- every result answers its own request: its customer is the one asked for, the fake
  created it under the idempotency key the call (or batch item) was sent with, a batch
  result's index and key match its input, and a key only ever yields one session;
- no call outlives ``timeout * (max_retries + 1)`` plus the retry waits plus a margin;
- every failure is a ``StripeError``;
- no secret (the API keys, any ``cuss_secret_``) in a failure's str/repr or its
  traceback rendered with locals, nor in any log record;
- the fake created at most one session per idempotency key;
- no socket, task or thread is left once a client is closed (and none at the end), and
  the client's loop reported no error ("Task was destroyed", "Unclosed ...").

Two machines share the servers, the checks and the server's rules: ``AsyncLife`` drives
an ``AsyncClient`` on a private loop the machine owns (each step is one
``run_until_complete``; it also cancels creates and closes with creates in flight);
``SyncLife`` drives the generated sync ``Client`` (its own loop thread; calls from
several threads, close() with calls in flight on other threads, on_progress calling the
client back or closing it). The servers run on a loop thread of their own.

Bounded for CI (25 examples of 15 steps each, about 20 s per machine); to hunt longer:
``STATEFUL_EXAMPLES=500 STATEFUL_STEPS=25 STATEFUL_STATS=1 pytest -s tests/test_stateful.py``
(``STATEFUL_STATS`` prints how often each outcome happened). A check that a known,
reported bug still fails is relaxed for that case only, with a "FINDING" comment.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import gc
import hashlib
import itertools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

import attrs
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing._objects import session_object
from tests.helpers import examples
from tests.hostile_tcp import Proxy, cut_after, delay, drop, duplicate, response, trickle
from tests.leaks import rendered

T = TypeVar("T")

API_KEY = "sk_test_STATEFULmain0123456789abcd"
OTHER_KEY = "sk_test_STATEFULcopy0123456789abcd"
#: Text that must never appear in an error, a rendered traceback or a log record.
SECRETS = ("STATEFULmain", "STATEFULcopy", "cuss_secret_")
COMPONENTS = {"pricing_table": {"enabled": True}}
#: The idempotency keys of the creates tried on closed clients: none may reach the fake.
CLOSED = "closed-"
EXAMPLES = int(os.environ.get("STATEFUL_EXAMPLES", examples(25)))
STEPS = int(os.environ.get("STATEFUL_STEPS", "15"))
#: Slack on every time bound: a busy 2-core CI machine must not flake the test.
MARGIN = 5.0
#: The longest retry wait per retry (the suite's fast_retries shrink them to ~10 ms).
BACKOFF = 0.5
#: How long a check waits for something asynchronous to end (a socket closing, a thread
#: finishing): polled, so it costs nothing when things end at once.
SETTLE = 3.0
#: Bound on one whole step, so a hang fails the test instead of the CI job.
STEP_LIMIT = 120.0

TIMEOUTS = st.sampled_from([0.5, 1.0])
RETRIES = st.integers(0, 2)


#: What happened, over a whole run (printed with STATEFUL_STATS=1 and ``pytest -s``).
OUTCOMES: collections.Counter[str] = collections.Counter()


def note(what: str) -> None:
    """Count an outcome (hypothesis' statistics and this run's own tally)."""
    event(what)
    OUTCOMES[what] += 1


def digest(secret: str) -> str:
    """A client secret as the machine keeps it (never the secret itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def client_sockets(port: int) -> list[int]:
    """This process's descriptors of TCP sockets connected to ``port`` on 127.0.0.1."""
    inodes = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            found.append(int(fd))
    return found


def open_fds() -> set[int]:
    """This process's open descriptors (those of a listing race left out)."""
    fds = set()
    for fd in os.listdir("/proc/self/fd"):
        if os.path.exists(f"/proc/self/fd/{fd}"):
            fds.add(int(fd))
    return fds


def assert_no_secret(text: str, what: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} appears in {what}:\n{text}"


class Records(logging.Handler):
    """Every log record of the SDK and aiohttp, formatted with its exception."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


class Servers:
    """FakeStripe and a tampering Proxy in front of it, on their own loop in a thread."""

    def __init__(self, rate_limit: float | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.errors.append(context))
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="stateful-servers", daemon=True
        )
        self.thread.start()
        self.fake = FakeStripe(rate_limit=rate_limit)
        self.proxy = Proxy(self.fake.host, 0)
        self.call(self._start)

    async def _start(self) -> None:
        await self.fake.start()
        self.proxy.upstream = (self.fake.host, self.fake.port)
        await self.proxy.__aenter__()

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (a function or a coroutine function) on the servers' loop."""

        async def run() -> Any:
            value = fn()
            if asyncio.iscoroutine(value):
                value = await value
            return value

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(STEP_LIMIT)

    def stop(self) -> None:
        async def stop() -> None:
            await self.proxy.aclose()
            await self.fake.stop()

        try:
            self.call(stop)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(STEP_LIMIT)
            self.loop.close()

    def created(self) -> dict[str, tuple[str | None, Any]]:
        """Each created session's digest: (its idempotency key, its customer)."""

        def snapshot() -> dict[str, tuple[str | None, Any]]:
            fake = self.fake
            return {
                digest(s["client_secret"]): (k, s["customer"])
                for s, k in zip(fake.sessions, fake.session_keys, strict=True)
            }

        return self.call(snapshot)  # type: ignore[no-any-return]

    def keys_created(self) -> list[str | None]:
        return self.call(lambda: list(self.fake.session_keys))  # type: ignore[no-any-return]

    def headers_sent_with(self, key: str) -> list[dict[str, str]]:
        """The headers of every request the fake received with this idempotency key."""
        return self.call(  # type: ignore[no-any-return]
            lambda: [dict(r.headers) for r in self.fake.requests if r.idempotency_key == key]
        )

    def keys_received(self, prefix: str) -> list[str]:
        """The idempotency keys starting with ``prefix`` of every request the fake received."""
        return self.call(  # type: ignore[no-any-return]
            lambda: [
                r.idempotency_key
                for r in self.fake.requests
                if r.idempotency_key and r.idempotency_key.startswith(prefix)
            ]
        )


@attrs.define(eq=False)
class Handle:
    """A client (or a with_options copy) and the settings it was made with."""

    client: Any  # an AsyncClient or a Client
    api_key: str = attrs.field(repr=False)  # this test's own frames show it otherwise
    stripe_account: str | None
    timeout: float
    max_retries: int
    #: Which client's pool it uses (copies share the pool of the client they came from).
    family: int


@attrs.define(eq=False)
class Dangling:
    """A stream_many left open midway, with what it was asked."""

    stream: Any  # an AsyncGenerator or a sync Iterator of BatchResult
    customers: list[str]
    batch_key: str
    handle: Handle
    seen: set[int]
    timeout: float
    max_retries: int


def batch_items(customers: list[str], invalid: int | None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [{"customer": c, "components": COMPONENTS} for c in customers]
    if invalid is not None and invalid < len(items):
        items[invalid] = {"customer": customers[invalid], "components": {}}  # nothing enabled
    return items


def as_input(items: list[dict[str, Any]], form: str) -> Any:
    """The batch input as a list, a generator (read in a thread) or an async generator."""
    if form == "list":
        return items
    if form == "generator":
        return (item for item in items)

    async def agen() -> AsyncIterator[dict[str, Any]]:
        for item in items:
            yield item

    return agen()


class Life(RuleBasedStateMachine):
    """What both clients' lives share: the servers and their rules, the checks, teardown."""

    def __init__(self) -> None:
        super().__init__()
        self.fds_before = open_fds()
        self.threads_before = set(threading.enumerate())
        self.loop = asyncio.new_event_loop()
        self.loop_errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(lambda loop, context: self.loop_errors.append(context))
        self.records = Records()
        self.levels = {}
        # asyncio's own logger: what a loop without a handler of ours (the sync client's
        # private one) reports, e.g. "Task was destroyed but it is pending!".
        for name in ("stripe_sessions", "aiohttp", "asyncio"):
            logger = logging.getLogger(name)
            self.levels[name] = logger.level
            logger.addHandler(self.records)
            logger.setLevel(logging.DEBUG)
        self.servers: Servers | None = None
        self.handles: list[Handle] = []
        self.closed: list[Handle] = []
        self.dangling: list[Dangling] = []
        self.batches: list[tuple[str, list[dict[str, Any]]]] = []
        self.cancelled: list[tuple[str, str]] = []
        #: Idempotency key -> digest of the one session it returned.
        self.answers: dict[str, str] = {}
        self.counter = 0
        self.customers = itertools.count(1)  # next() is atomic: calls from threads
        self.family = 0

    # --- plumbing ----------------------------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` as one task on the client's loop (cancelled after STEP_LIMIT)."""
        task = self.loop.create_task(coro)
        limit = self.loop.call_later(STEP_LIMIT, task.cancel)
        try:
            return self.loop.run_until_complete(task)
        finally:
            limit.cancel()

    def settle(self, done: Callable[[], bool], seconds: float = SETTLE) -> None:
        """Run the client's loop until ``done()`` (at most ``seconds``)."""

        async def wait() -> None:
            deadline = time.monotonic() + seconds
            while not done() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

        self.run(wait())

    def other_tasks(self) -> set[asyncio.Task[Any]]:
        """Tasks of the client's loop besides the one asking (call from inside the loop)."""
        current = asyncio.current_task(self.loop)
        return {t for t in asyncio.all_tasks(self.loop) if t is not current}

    def customer(self) -> str:
        self.counter = next(self.customers)
        return f"cus_s{self.counter}"

    @property
    def main(self) -> Handle:
        return self.handles[0]

    def pick(self, which: int) -> Handle:
        return self.handles[which % len(self.handles)]

    def make_client(self, **settings: Any) -> Any:
        raise NotImplementedError

    def close_main(self, grace: float) -> None:
        raise NotImplementedError

    def read_stream(self, left: Dangling, take: int) -> None:
        raise NotImplementedError

    def new_client(self, timeout: float, max_retries: int, max_connections: int) -> None:
        assert self.servers is not None
        client = self.make_client(
            api_key=API_KEY,
            base_url=self.servers.proxy.url,
            timeout=timeout,
            max_retries=max_retries,
            max_connections=max_connections,
        )
        self.family += 1
        self.handles = [Handle(client, API_KEY, None, timeout, max_retries, self.family)]

    # --- checks ------------------------------------------------------------------------

    def check_failure(self, e: BaseException, key: str | None = None) -> None:
        """A failure is a StripeError carrying its key, with no secret anywhere in it."""
        assert isinstance(e, ss.StripeError), f"not a StripeError: {rendered(e)}"
        note(f"failure: {type(e).__name__}: {' '.join(e.message.split()[:5])}")
        if key is not None and not isinstance(e, ss.ValidationError):
            assert e.idempotency_key == key, (e.idempotency_key, key, rendered(e))
        assert_no_secret(rendered(e), "a failure")

    def check_session(self, session: ss.CustomerSession, customer: str, handle: Handle) -> str:
        """The session is the one the fake created for ``customer``; returns its key."""
        assert isinstance(session, ss.CustomerSession)
        assert session.customer_id == customer, (session.customer_id, customer)
        assert self.servers is not None
        created = self.servers.created()
        mark = digest(session.client_secret)
        assert mark in created, f"a session the fake never created, for {customer}"
        key, created_for = created[mark]
        assert key is not None
        assert created_for == customer, (created_for, customer)
        assert self.answers.setdefault(key, mark) == mark, f"two sessions for key {key!r}"
        # Sent with the settings of the client (or copy) that made the call (a batch run
        # again, or a cancelled create retried, may have sent the key from another one).
        sent = {
            (h.get("Authorization"), h.get("Stripe-Account"))
            for h in self.servers.headers_sent_with(key)
        }
        assert (f"Bearer {handle.api_key}", handle.stripe_account) in sent, "other settings"
        return key

    def check_time(self, elapsed: float, timeout: float, retries: int, calls: int = 1) -> None:
        bound = calls * (timeout * (retries + 1) + retries * BACKOFF) + MARGIN
        assert elapsed <= bound, f"took {elapsed:.2f}s, bound {bound:.2f}s"

    def check_result(
        self,
        r: ss.BatchResult,
        customers: list[str],
        batch_key: str,
        invalid: int | None,
        handle: Handle,
    ) -> None:
        assert isinstance(r, ss.BatchResult)
        assert 0 <= r.index < len(customers), r.index
        assert r.batch_key == batch_key
        assert r.idempotency_key == f"{batch_key}-{r.index}"
        assert (r.session is None) != (r.error is None)
        if r.session is not None:
            assert r.index != invalid
            key = self.check_session(r.session, customers[r.index], handle)
            assert key == r.idempotency_key, (key, r.idempotency_key)
            note("batch item: ok")
        else:
            assert r.error is not None
            self.check_failure(r.error, r.idempotency_key)
            if r.index == invalid:
                assert isinstance(r.error, ss.ValidationError), repr(r.error)

    def check_read(self, left: Dangling, r: ss.BatchResult) -> None:
        """One result read from a stream: a new index, answering its own input."""
        assert r.index not in left.seen, f"index {r.index} twice"
        left.seen.add(r.index)
        self.check_result(r, left.customers, left.batch_key, None, left.handle)

    def check_batch_error(self, e: BaseException, batch_key: str) -> None:
        self.check_failure(e)
        assert isinstance(e, ss.StripeError)
        assert e.batch_key == batch_key, (e.batch_key, batch_key)

    def check_closed(self, port: int) -> None:
        """Nothing of a closed client is left: no socket, task or input thread."""
        gc.collect()
        self.settle(lambda: not client_sockets(port))
        assert not client_sockets(port), "sockets of a closed client are still open"

        async def tasks_left() -> set[asyncio.Task[Any]]:
            deadline = time.monotonic() + SETTLE
            while self.other_tasks() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return self.other_tasks()

        left = self.run(tasks_left())
        assert not left, f"tasks left after close: {left}"
        allowed = self.threads_before | {self.servers.thread if self.servers else None}

        def threads_done() -> bool:
            return not (set(threading.enumerate()) - allowed)

        self.settle(threads_done)
        assert threads_done(), f"threads left: {set(threading.enumerate()) - allowed}"

    # --- setup -------------------------------------------------------------------------

    @initialize(
        rate_limit=st.sampled_from([None, None, 50.0]),
        timeout=TIMEOUTS,
        max_retries=RETRIES,
        max_connections=st.sampled_from([1, 2, 100]),
    )
    def start(
        self, rate_limit: float | None, timeout: float, max_retries: int, max_connections: int
    ) -> None:
        self.servers = Servers(rate_limit)
        self.new_client(timeout, max_retries, max_connections)

    # --- the server's behaviour ----------------------------------------------------------

    @rule(
        kind=st.sampled_from(
            ["status", "reset_before", "reset_after", "slow", "malformed", "truncated"]
        ),
        status=st.sampled_from([400, 401, 402, 409, 429, 500, 502, 503]),
        lock_timeout=st.booleans(),
        times=st.integers(1, 3),
        seconds=st.sampled_from([0.01, 0.1, 0.6, 1.2]),
    )
    def fault(self, kind: str, status: int, lock_timeout: bool, times: int, seconds: float) -> None:
        """Queue faults in the fake: the next requests (whoever sends them) get them."""
        assert self.servers is not None
        fake = self.servers.fake
        code = "lock_timeout" if status == 429 and lock_timeout else None
        act: dict[str, Callable[[], None]] = {
            "status": lambda: fake.fail_next(status, times, code=code),
            "reset_before": lambda: fake.reset_next(times),
            "reset_after": lambda: fake.reset_next(times, after_create=True),
            "slow": lambda: fake.slow_next(seconds, times),
            "malformed": lambda: fake.malformed_next(times),
            "truncated": lambda: fake.truncate_next(times),
        }
        self.servers.call(act[kind])

    @rule(
        direction=st.sampled_from(["up", "down"]),
        kind=st.sampled_from(["none", "delay", "trickle", "cut_after", "duplicate", "drop"]),
        level=st.integers(0, 3),
        existing=st.booleans(),
    )
    def proxy_mode(self, direction: str, kind: str, level: int, existing: bool) -> None:
        """Tamper with new connections (and, if ``existing``, the ones open now)."""
        assert self.servers is not None
        proxy = self.servers.proxy
        tamper = {
            "none": None,
            "delay": delay([0.001, 0.01, 0.05, 0.3][level]),
            "trickle": trickle([16, 64, 256, 1024][level], 0.002),
            "cut_after": cut_after([0, 10, 300, 1200][level]),
            "duplicate": duplicate,
            "drop": drop,  # nothing arrives: the call times out
        }[kind]

        def apply() -> None:
            setattr(proxy, direction, tamper)
            if existing:
                for link in proxy.links:
                    getattr(link, direction).tamper = tamper

        self.servers.call(apply)

    @rule()
    def calm(self) -> None:
        """The proxy forwards new connections untouched again."""
        assert self.servers is not None
        proxy = self.servers.proxy

        def calm() -> None:
            proxy.up = proxy.down = None

        self.servers.call(calm)

    @rule(echo=st.booleans())
    def inject(self, echo: bool) -> None:
        """Send an unsolicited answer (another customer's session) down every open link."""
        assert self.servers is not None
        proxy = self.servers.proxy
        body = session_object({"customer": "cus_VICTIM", "components": COMPONENTS})
        headers = {"Request-Id": "req_forged"}
        if echo:  # a key no call sent; without one, only the customer tells
            headers["Idempotency-Key"] = "forged-key"
        data = response(200, body, headers)

        def send() -> None:
            for link in proxy.links:
                link.down.inject(data)

        self.servers.call(send)

    @rule()
    def cut_links(self) -> None:
        """Close every open connection (a server dropping its idle keep-alives)."""
        assert self.servers is not None
        proxy = self.servers.proxy

        def cut() -> None:
            for link in proxy.links:
                link.cut()

        self.servers.call(cut)

    @rule(other_thread=st.booleans())
    def collect_garbage(self, other_thread: bool) -> None:
        self.collect(other_thread)

    def collect(self, other_thread: bool) -> None:
        if other_thread:
            thread = threading.Thread(target=gc.collect, name="stateful-gc")
            thread.start()
            thread.join()
        else:
            gc.collect()
        self.settle(lambda: False, 0.02)  # finalizers scheduled on the loop run

    # --- copies and closing ------------------------------------------------------------
    # --- copies and closing, shared ----------------------------------------------------

    def copy_client(
        self, timeout: float | None, max_retries: int | None, account: str | None, other_key: bool
    ) -> None:
        base = self.main
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = timeout
        if max_retries is not None:
            changes["max_retries"] = max_retries
        if account is not None:
            changes["stripe_account"] = account
        if other_key:
            changes["api_key"] = OTHER_KEY
        copy = base.client.with_options(**changes)
        assert_no_secret(repr(copy), "a client's repr")
        self.handles.append(
            Handle(
                copy,
                OTHER_KEY if other_key else base.api_key,
                account if account is not None else base.stripe_account,
                timeout if timeout is not None else base.timeout,
                max_retries if max_retries is not None else base.max_retries,
                self.family,
            )
        )

    def create_on_closed(self, handle: Handle, key: str) -> None:
        """A create on a closed client: must raise, having sent nothing."""
        raise NotImplementedError

    def after_close(self, drain: bool) -> None:
        """The main client was closed: its streams end, nothing of it is left, it refuses."""
        assert self.servers is not None
        handles = self.handles
        # Streams of the closed client (and its copies): read to their end, or dropped.
        family = [d for d in self.dangling if d.handle.family == self.family]
        self.dangling = [d for d in self.dangling if d not in family]
        while family:
            left = family.pop()
            if drain:
                self.read_stream(left, len(left.customers) + 1)
            del left
        self.check_closed(self.servers.proxy.port)
        # A closed client (or copy) sends nothing and says so with a StripeError. Each
        # call has a key of its own (CLOSED...), so what it would send is told apart from
        # requests cut by the close that reach the fake late (through the proxy); the
        # invariant below checks for them after every step.
        for handle in handles:
            key = f"{CLOSED}{next(self.customers)}"
            try:
                self.create_on_closed(handle, key)
            except Exception as e:  # checked: every failure must be a StripeError
                assert isinstance(e, ss.ClientClosedError), rendered(e)
                self.check_failure(e, key)
            else:
                raise AssertionError("a closed client created a session")
        self.closed_clients_sent_nothing()
        self.closed.extend(handles)

    # --- after every step --------------------------------------------------------------

    @invariant()
    def closed_clients_sent_nothing(self) -> None:
        if self.servers is not None:
            assert self.servers.keys_received(CLOSED) == []

    @invariant()
    def nothing_created_twice(self) -> None:
        if self.servers is None:
            return
        keys = [k for k in self.servers.keys_created() if k is not None]
        twice = {k for k in keys if keys.count(k) > 1}
        assert not twice, f"created twice: {twice}"

    @invariant()
    def no_secret_logged(self) -> None:
        for line in self.records.lines:
            assert_no_secret(line, "a log record")
        errors = self.loop_reports()
        self.records.lines.clear()
        assert not errors, f"a client's event loop reported: {errors}"

    def loop_reports(self) -> list[str]:
        """What the client's loop reported: to our handler, or to asyncio's logger."""
        reports = [str(context) for context in self.loop_errors]
        reports += [line for line in self.records.lines if line.startswith("asyncio ERROR")]
        return reports

    @invariant()
    def loop_reported_nothing(self) -> None:
        reports = self.loop_reports()
        assert not reports, reports

    @invariant()
    def no_task_left_behind(self) -> None:
        """With no stream left open, nothing of any call runs between steps."""
        if self.dangling:
            return

        async def left() -> set[asyncio.Task[Any]]:
            deadline = time.monotonic() + SETTLE
            while self.other_tasks() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return self.other_tasks()

        tasks = self.run(left())
        assert not tasks, f"tasks left between steps: {tasks}"

    def teardown(self) -> None:
        try:
            if self.handles:
                self.close_main(grace=0)
            # As asyncio.run() ends: streams still open (dangling) are closed by the loop.
            self.run(self.loop.shutdown_asyncgens())
            self.dangling.clear()
            self.handles.clear()
            self.closed.clear()
            if self.servers is not None:
                self.check_closed(self.servers.proxy.port)
            reports = self.loop_reports()
            assert not reports, reports
        finally:
            self.loop.close()
            if self.servers is not None:
                self.servers.stop()
            for name, level in self.levels.items():
                logging.getLogger(name).removeHandler(self.records)
                logging.getLogger(name).setLevel(level)
        assert self.servers is None or not self.servers.errors, self.servers.errors
        for line in self.records.lines:
            assert_no_secret(line, "a log record")
        gc.collect()
        left = open_fds() - self.fds_before
        assert not left, f"descriptors left: {[os.readlink(f'/proc/self/fd/{fd}') for fd in left]}"


class AsyncLife(Life):
    """The life of an ``AsyncClient`` run on a private loop the machine owns."""

    def make_client(self, **settings: Any) -> Any:
        return ss.AsyncClient(**settings)

    def close_main(self, grace: float) -> None:
        self.run(self.main.client.aclose(grace=grace))

    def create_on_closed(self, handle: Handle, key: str) -> None:
        self.run(
            handle.client.customer_sessions.create(
                customer=self.customer(), components=COMPONENTS, idempotency_key=key
            )
        )

    # --- single creates ----------------------------------------------------------------

    async def create(
        self, handle: Handle, timeout: float | None, retries: int | None, key: str | None
    ) -> None:
        customer = self.customer()
        sessions = handle.client.customer_sessions
        started = time.monotonic()
        try:
            session = await sessions.create(
                customer=customer,
                components=COMPONENTS,
                idempotency_key=key,
                timeout=timeout,
                max_retries=retries,
            )
        except Exception as e:  # checked: every failure must be a StripeError
            failure: BaseException | None = e
        else:
            failure = None
        elapsed = time.monotonic() - started
        self.check_time(
            elapsed,
            handle.timeout if timeout is None else timeout,
            handle.max_retries if retries is None else retries,
        )
        if failure is not None:
            self.check_failure(failure, key)
            return
        note("create: ok")
        got = self.check_session(session, customer, handle)
        assert key is None or got == key, (got, key)

    @rule(
        which=st.integers(0, 3),
        timeout=st.none() | TIMEOUTS,
        retries=st.none() | RETRIES,
        explicit_key=st.booleans(),
    )
    def create_one(
        self, which: int, timeout: float | None, retries: int | None, explicit_key: bool
    ) -> None:
        key = f"one-{self.counter}-{time.monotonic_ns()}" if explicit_key else None
        self.run(self.create(self.pick(which), timeout, retries, key))

    @rule(n=st.integers(2, 4), timeout=TIMEOUTS, retries=RETRIES)
    def create_concurrently(self, n: int, timeout: float, retries: int) -> None:
        calls = [self.create(self.pick(i), timeout, retries, None) for i in range(n)]

        async def together() -> None:
            await asyncio.gather(*calls)

        self.run(together())

    @rule(
        how=st.sampled_from(["wait_for", "cancel"]),
        after=st.sampled_from([0.0, 0.001, 0.01, 0.05]),
        ticks=st.integers(0, 20),
    )
    def cancel_create(self, how: str, after: float, ticks: int) -> None:
        """A create cancelled midway: it ends at once, and its key is kept for a retry."""
        customer = self.customer()
        key = f"cancel-{self.counter}-{time.monotonic_ns()}"
        handle = self.main
        call = handle.client.customer_sessions.create(
            customer=customer, components=COMPONENTS, idempotency_key=key
        )

        async def cancelled() -> Any:
            if how == "wait_for":
                return await asyncio.wait_for(call, after)
            task = asyncio.ensure_future(call)
            for _ in range(ticks):
                await asyncio.sleep(0)
            task.cancel()
            return await task

        # Kept whatever happens (preconditions must not depend on timing): retrying a
        # create that did finish is as valid, and must get the same session.
        self.cancelled.append((key, customer))
        started = time.monotonic()
        try:
            session = self.run(cancelled())
        except (asyncio.CancelledError, asyncio.TimeoutError):
            note("cancel: cancelled")
            session = None
        except Exception as e:  # checked: every failure must be a StripeError
            self.check_failure(e, key)
            session = None
        self.check_time(time.monotonic() - started, handle.timeout, handle.max_retries)
        if session is not None:
            note("cancel: finished first")
            assert self.check_session(session, customer, handle) == key

    @precondition(lambda self: self.cancelled)
    @rule()
    def retry_cancelled(self) -> None:
        """The cancelled create again with its key: its session, never a second one."""
        key, customer = self.cancelled.pop()
        handle = self.main

        async def again() -> None:
            started = time.monotonic()
            try:
                session = await handle.client.customer_sessions.create(
                    customer=customer, components=COMPONENTS, idempotency_key=key, max_retries=2
                )
            except Exception as e:  # checked: every failure must be a StripeError
                self.check_time(time.monotonic() - started, handle.timeout, 2)
                self.check_failure(e, key)
                return
            self.check_time(time.monotonic() - started, handle.timeout, 2)
            assert self.check_session(session, customer, handle) == key

        self.run(again())

    # --- batches -----------------------------------------------------------------------

    @rule(
        which=st.integers(0, 3),
        n=st.integers(0, 6),
        concurrency=st.integers(1, 3),
        rate_limit=st.sampled_from([None, 200.0]),
        retries=RETRIES,
        timeout=TIMEOUTS,
        form=st.sampled_from(["list", "generator", "async"]),
        invalid=st.none() | st.integers(0, 5),
    )
    def create_many(
        self,
        which: int,
        n: int,
        concurrency: int,
        rate_limit: float | None,
        retries: int,
        timeout: float,
        form: str,
        invalid: int | None,
    ) -> None:
        handle = self.pick(which)
        customers = [self.customer() for _ in range(n)]
        batch_key = f"batch-{self.counter}-{time.monotonic_ns()}"
        items = batch_items(customers, invalid)
        self.batches.append((batch_key, items))
        self.run_batch(handle, customers, items, batch_key, invalid, form, concurrency,
                       rate_limit, retries, timeout)  # fmt: skip

    def run_batch(
        self,
        handle: Handle,
        customers: list[str],
        items: list[dict[str, Any]],
        batch_key: str,
        invalid: int | None,
        form: str,
        concurrency: int,
        rate_limit: float | None,
        retries: int,
        timeout: float,
    ) -> None:
        async def batch() -> list[ss.BatchResult] | None:
            try:
                results: list[ss.BatchResult] = await handle.client.customer_sessions.create_many(
                    as_input(items, form),
                    concurrency=concurrency,
                    rate_limit=rate_limit,
                    batch_key=batch_key,
                    max_retries=retries,
                    timeout=timeout,
                )
            except Exception as e:  # checked: every failure must be a StripeError
                self.check_batch_error(e, batch_key)
                return None
            return results

        started = time.monotonic()
        results = self.run(batch())
        self.check_time(time.monotonic() - started, timeout, retries, calls=max(len(items), 1))
        if results is None:
            note("create_many: raised")
            return
        assert [r.index for r in results] == list(range(len(items)))
        for r in results:
            self.check_result(r, customers, batch_key, invalid, handle)

    @precondition(lambda self: self.batches)
    @rule(which=st.integers(0, 3), pick=st.integers(0, 100), timeout=TIMEOUTS)
    def rerun_batch(self, which: int, pick: int, timeout: float) -> None:
        """A batch again with its batch_key: the same sessions, nothing created twice."""
        batch_key, items = self.batches[pick % len(self.batches)]
        customers = [item["customer"] for item in items]
        invalid = next((i for i, item in enumerate(items) if not item["components"]), None)
        self.run_batch(self.pick(which), customers, items, batch_key, invalid, "list", 2,
                       None, 2, timeout)  # fmt: skip

    @rule(
        which=st.integers(0, 3),
        n=st.integers(1, 8),
        take=st.integers(0, 8),
        then=st.sampled_from(["drain", "aclose", "drop", "dangle"]),
        concurrency=st.integers(1, 3),
        retries=RETRIES,
        timeout=TIMEOUTS,
        form=st.sampled_from(["list", "generator", "async"]),
    )
    def stream_many(
        self,
        which: int,
        n: int,
        take: int,
        then: str,
        concurrency: int,
        retries: int,
        timeout: float,
        form: str,
    ) -> None:
        """Read ``take`` results of a stream, then drain it, close it, drop it or leave it."""
        handle = self.pick(which)
        customers = [self.customer() for _ in range(n)]
        batch_key = f"stream-{self.counter}-{time.monotonic_ns()}"
        stream = handle.client.customer_sessions.stream_many(
            as_input(batch_items(customers, None), form),
            concurrency=concurrency,
            rate_limit=None,
            batch_key=batch_key,
            max_retries=retries,
            timeout=timeout,
        )
        left = Dangling(stream, customers, batch_key, handle, set(), timeout, retries)
        self.read_stream(left, take if then != "drain" else n + 1)
        if then == "aclose":
            self.run(stream.aclose())
        elif then == "dangle":
            self.dangling.append(left)
        del stream, left  # "drop": the last references go; the collector closes it
        gc.collect()
        self.settle(lambda: False, 0.02)

    def read_stream(self, left: Dangling, take: int) -> None:
        """Read up to ``take`` results of an open stream, checking each."""

        async def read() -> bool:
            for _ in range(take):
                try:
                    r = await left.stream.__anext__()
                except StopAsyncIteration:
                    return True
                except Exception as e:  # checked: every failure must be a StripeError
                    self.check_batch_error(e, left.batch_key)
                    return True
                self.check_read(left, r)
            return False

        started = time.monotonic()
        ended = self.run(read())
        self.check_time(time.monotonic() - started, left.timeout, left.max_retries, max(take, 1))
        if ended and take > len(left.customers):
            note("stream: drained")

    @precondition(lambda self: self.dangling)
    @rule(pick=st.integers(0, 100), take=st.integers(1, 8), gc_thread=st.booleans())
    def touch_dangling(self, pick: int, take: int, gc_thread: bool) -> None:
        """Read more of a stream left open, or drop it and collect garbage."""
        left = self.dangling.pop(pick % len(self.dangling))
        if take % 2:
            self.read_stream(left, take)
            self.dangling.append(left)
        del left
        self.collect(gc_thread)

    @precondition(lambda self: len(self.handles) < 4)
    @rule(
        timeout=st.none() | TIMEOUTS,
        max_retries=st.none() | RETRIES,
        account=st.sampled_from([None, "acct_1", "acct_2"]),
        other_key=st.booleans(),
    )
    def with_options(
        self, timeout: float | None, max_retries: int | None, account: str | None, other_key: bool
    ) -> None:
        self.copy_client(timeout, max_retries, account, other_key)

    @precondition(lambda self: len(self.handles) > 1)
    @rule(pick=st.integers(1, 3))
    def close_copy(self, pick: int) -> None:
        """Closing a copy leaves the shared pool, and the original, open."""
        copy = self.handles.pop(1 + pick % (len(self.handles) - 1))
        self.run(copy.client.aclose())
        assert not self.main.client.closed
        self.closed.append(copy)

    @rule(
        grace=st.sampled_from([0.0, 0.1, 0.5]),
        drain=st.booleans(),
        in_flight=st.integers(0, 3),
        after=st.sampled_from([0.0, 0.01, 0.1]),
        timeout=TIMEOUTS,
        max_retries=RETRIES,
        max_connections=st.sampled_from([1, 2, 100]),
    )
    def close_client(
        self,
        grace: float,
        drain: bool,
        in_flight: int,
        after: float,
        timeout: float,
        max_retries: int,
        max_connections: int,
    ) -> None:
        """aclose() with calls in flight: each ends (a session or a StripeError with its key)."""
        handles = list(self.handles)
        closing: list[float] = []

        async def close() -> None:
            await asyncio.sleep(after)
            started = time.monotonic()
            await self.main.client.aclose(grace=grace)
            closing.append(time.monotonic() - started)

        async def together() -> None:
            calls = [
                self.create(
                    handles[i % len(handles)], None, None, f"inflight-{i}-{time.monotonic_ns()}"
                )
                for i in range(in_flight)
            ]
            await asyncio.gather(close(), *calls)

        self.run(together())
        assert closing[0] <= grace + MARGIN, f"aclose() took {closing[0]:.2f}s"
        assert all(h.client.closed for h in handles)
        self.after_close(drain)
        self.new_client(timeout, max_retries, max_connections)


class SyncLife(Life):
    """The same life with the generated sync ``Client``: its own loop thread, plain iterators."""

    def make_client(self, **settings: Any) -> Any:
        return ss.Client(**settings)

    def close_main(self, grace: float) -> None:
        self.main.client.close(grace=grace)

    def create_on_closed(self, handle: Handle, key: str) -> None:
        handle.client.customer_sessions.create(
            customer=self.customer(), components=COMPONENTS, idempotency_key=key
        )

    def create(
        self, handle: Handle, timeout: float | None, retries: int | None, key: str | None
    ) -> Callable[[], None]:
        """Make the call now (on any thread); the returned check runs on the main thread."""
        customer = self.customer()
        started = time.monotonic()
        try:
            session = handle.client.customer_sessions.create(
                customer=customer,
                components=COMPONENTS,
                idempotency_key=key,
                timeout=timeout,
                max_retries=retries,
            )
        except Exception as e:  # checked: every failure must be a StripeError
            failure: BaseException | None = e
        else:
            failure = None
        elapsed = time.monotonic() - started

        def check() -> None:
            self.check_time(
                elapsed,
                handle.timeout if timeout is None else timeout,
                handle.max_retries if retries is None else retries,
            )
            if failure is not None:
                self.check_failure(failure, key)
                return
            note("create: ok")
            got = self.check_session(session, customer, handle)
            assert key is None or got == key, (got, key)

        return check

    @rule(
        which=st.integers(0, 3),
        timeout=st.none() | TIMEOUTS,
        retries=st.none() | RETRIES,
        explicit_key=st.booleans(),
    )
    def create_one(
        self, which: int, timeout: float | None, retries: int | None, explicit_key: bool
    ) -> None:
        key = f"one-{self.counter}-{time.monotonic_ns()}" if explicit_key else None
        self.create(self.pick(which), timeout, retries, key)()

    @rule(n=st.integers(2, 4), timeout=TIMEOUTS, retries=RETRIES)
    def create_from_threads(self, n: int, timeout: float, retries: int) -> None:
        """Calls from several threads at once share the client's loop and pool."""
        handles = [self.pick(i) for i in range(n)]
        with concurrent.futures.ThreadPoolExecutor(n, "stateful-caller") as pool:
            checks = list(pool.map(lambda h: self.create(h, timeout, retries, None), handles))
        for check in checks:
            check()

    @rule(
        which=st.integers(0, 3),
        n=st.integers(0, 6),
        concurrency=st.integers(1, 3),
        rate_limit=st.sampled_from([None, 200.0]),
        retries=RETRIES,
        timeout=TIMEOUTS,
        form=st.sampled_from(["list", "generator"]),
        invalid=st.none() | st.integers(0, 5),
    )
    def create_many(
        self,
        which: int,
        n: int,
        concurrency: int,
        rate_limit: float | None,
        retries: int,
        timeout: float,
        form: str,
        invalid: int | None,
    ) -> None:
        handle = self.pick(which)
        customers = [self.customer() for _ in range(n)]
        batch_key = f"batch-{self.counter}-{time.monotonic_ns()}"
        items = batch_items(customers, invalid)
        self.batches.append((batch_key, items))
        self.run_batch(handle, customers, items, batch_key, invalid, form, concurrency,
                       rate_limit, retries, timeout)  # fmt: skip

    def run_batch(
        self,
        handle: Handle,
        customers: list[str],
        items: list[dict[str, Any]],
        batch_key: str,
        invalid: int | None,
        form: str,
        concurrency: int,
        rate_limit: float | None,
        retries: int,
        timeout: float,
    ) -> None:
        started = time.monotonic()
        try:
            results = handle.client.customer_sessions.create_many(
                as_input(items, form),
                concurrency=concurrency,
                rate_limit=rate_limit,
                batch_key=batch_key,
                max_retries=retries,
                timeout=timeout,
            )
        except Exception as e:  # checked: every failure must be a StripeError
            self.check_batch_error(e, batch_key)
            note("create_many: raised")
            return
        finally:
            elapsed = time.monotonic() - started
            self.check_time(elapsed, timeout, retries, calls=max(len(items), 1))
        assert [r.index for r in results] == list(range(len(items)))
        for r in results:
            self.check_result(r, customers, batch_key, invalid, handle)

    @precondition(lambda self: self.batches)
    @rule(which=st.integers(0, 3), pick=st.integers(0, 100), timeout=TIMEOUTS)
    def rerun_batch(self, which: int, pick: int, timeout: float) -> None:
        """A batch again with its batch_key: the same sessions, nothing created twice."""
        batch_key, items = self.batches[pick % len(self.batches)]
        customers = [item["customer"] for item in items]
        invalid = next((i for i, item in enumerate(items) if not item["components"]), None)
        self.run_batch(self.pick(which), customers, items, batch_key, invalid, "list", 2,
                       None, 2, timeout)  # fmt: skip

    @rule(
        which=st.integers(0, 3),
        n=st.integers(1, 8),
        take=st.integers(0, 8),
        then=st.sampled_from(["drain", "close", "drop", "dangle"]),
        concurrency=st.integers(1, 3),
        retries=RETRIES,
        timeout=TIMEOUTS,
        form=st.sampled_from(["list", "generator"]),
        gc_thread=st.booleans(),
    )
    def stream_many(
        self,
        which: int,
        n: int,
        take: int,
        then: str,
        concurrency: int,
        retries: int,
        timeout: float,
        form: str,
        gc_thread: bool,
    ) -> None:
        """Read ``take`` results of a stream, then drain it, close it, drop it or leave it."""
        handle = self.pick(which)
        customers = [self.customer() for _ in range(n)]
        batch_key = f"stream-{self.counter}-{time.monotonic_ns()}"
        stream = handle.client.customer_sessions.stream_many(
            as_input(batch_items(customers, None), form),
            concurrency=concurrency,
            rate_limit=None,
            batch_key=batch_key,
            max_retries=retries,
            timeout=timeout,
        )
        left = Dangling(stream, customers, batch_key, handle, set(), timeout, retries)
        self.read_stream(left, take if then != "drain" else n + 1)
        if then == "close":
            stream.close()
        elif then == "dangle":
            self.dangling.append(left)
        del stream, left  # "drop": the last references go; the collector closes it
        self.collect(gc_thread)

    def read_stream(self, left: Dangling, take: int) -> None:
        """Read up to ``take`` results of an open stream, checking each."""
        started = time.monotonic()
        for _ in range(take):
            try:
                r = next(left.stream)
            except StopIteration:
                break
            except Exception as e:  # checked: every failure must be a StripeError
                self.check_batch_error(e, left.batch_key)
                break
            self.check_read(left, r)
        self.check_time(time.monotonic() - started, left.timeout, left.max_retries, max(take, 1))

    @precondition(lambda self: self.dangling)
    @rule(pick=st.integers(0, 100), take=st.integers(1, 8), gc_thread=st.booleans())
    def touch_dangling(self, pick: int, take: int, gc_thread: bool) -> None:
        """Read more of a stream left open, or drop it and collect garbage."""
        left = self.dangling.pop(pick % len(self.dangling))
        if take % 2:
            self.read_stream(left, take)
            self.dangling.append(left)
        del left
        self.collect(gc_thread)

    @rule(close=st.booleans())
    def call_back_in(self, close: bool) -> None:
        """on_progress (on the client's loop thread) calls the client, or closes it."""
        handle = self.main
        customers = [self.customer()]
        batch_key = f"reenter-{self.counter}-{time.monotonic_ns()}"
        inner: list[BaseException] = []

        def on_progress(progress: ss.BatchProgress) -> None:
            if close:
                handle.client.close(grace=0)  # scheduled: returns at once
                return
            try:
                handle.client.customer_sessions.create(customer="cus_inner", components=COMPONENTS)
            except BaseException as e:
                inner.append(e)
                raise

        started = time.monotonic()
        try:
            results = handle.client.customer_sessions.create_many(
                batch_items(customers, None),
                on_progress=on_progress,
                batch_key=batch_key,
                max_retries=0,
                timeout=1.0,
            )
        except Exception as e:  # checked below
            failure: BaseException | None = e
        else:
            failure = None
        self.check_time(time.monotonic() - started, 1.0, 0)
        if close:
            # Closed from its own callback: the batch's result or a StripeError, then closed.
            if failure is not None:
                self.check_failure(failure)
            else:
                for r in results:
                    self.check_result(r, customers, batch_key, None, handle)
            assert handle.client.closed
            self.after_close(drain=False)
            self.new_client(handle.timeout, handle.max_retries, 100)
            return
        if inner:  # the callback ran: calling back in was refused, clearly, no deadlock
            assert failure is not None
            assert isinstance(failure, ss.LoopThreadError), rendered(failure)
            self.check_failure(failure)
        elif failure is not None:
            self.check_batch_error(failure, batch_key)

    # --- copies and closing ------------------------------------------------------------

    @precondition(lambda self: len(self.handles) < 4)
    @rule(
        timeout=st.none() | TIMEOUTS,
        max_retries=st.none() | RETRIES,
        account=st.sampled_from([None, "acct_1", "acct_2"]),
        other_key=st.booleans(),
    )
    def with_options(
        self, timeout: float | None, max_retries: int | None, account: str | None, other_key: bool
    ) -> None:
        self.copy_client(timeout, max_retries, account, other_key)

    @precondition(lambda self: len(self.handles) > 1)
    @rule(pick=st.integers(1, 3))
    def close_copy(self, pick: int) -> None:
        """Closing a copy leaves the shared loop, pool and the original open."""
        copy = self.handles.pop(1 + pick % (len(self.handles) - 1))
        copy.client.close()
        assert not self.main.client.closed
        self.closed.append(copy)

    @rule(
        grace=st.sampled_from([0.0, 0.1, 0.5]),
        drain=st.booleans(),
        in_flight=st.integers(0, 3),
        after=st.sampled_from([0.0, 0.01, 0.1]),
        timeout=TIMEOUTS,
        max_retries=RETRIES,
        max_connections=st.sampled_from([1, 2, 100]),
    )
    def close_client(
        self,
        grace: float,
        drain: bool,
        in_flight: int,
        after: float,
        timeout: float,
        max_retries: int,
        max_connections: int,
    ) -> None:
        """close() with calls in flight on other threads: each ends; nothing is left."""
        handles = list(self.handles)
        with concurrent.futures.ThreadPoolExecutor(max(in_flight, 1), "stateful-caller") as pool:
            calls = [
                pool.submit(self.create, handles[i % len(handles)], None, None, None)
                for i in range(in_flight)
            ]
            time.sleep(after)
            started = time.monotonic()
            self.close_main(grace)
            closing = time.monotonic() - started
        assert closing <= grace + MARGIN, f"close() took {closing:.2f}s"
        for call in calls:
            call.result()()
        assert all(h.client.closed for h in handles)
        self.after_close(drain)
        self.new_client(timeout, max_retries, max_connections)


@pytest.mark.parametrize("machine", [AsyncLife, SyncLife], ids=["async", "sync"])
@pytest.mark.timing
def test_a_client_life_against_a_hostile_server(machine: type[Life], fast_retries: None) -> None:
    """Random lives of a client hold every invariant (see the module docstring)."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc to count descriptors and sockets")
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    if os.environ.get("STATEFUL_STATS"):
        for what, count in sorted(OUTCOMES.items()):
            print(f"{count:8d}  {what}")
