"""The aiohttp sessions an SDK client sends with: one per event loop, lazy, shared, fork-safe."""

from __future__ import annotations

import asyncio
import platform
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from .._lifecycle import UNWIND, InFlight, lent_closed, refused
from .._loop_errors import asyncio_required, wrong_loop
from .._loop_registry import LoopOwners, LoopRegistry
from .._version import __version__
from . import lent
from .allocator import raise_malloc_mmap_threshold
from .loops import LoopPool, close_on, closed_calls

__all__ = [
    "SDK_HEADERS",
    "USER_AGENT",
    "CheckedConnector",
    "ConnectionPool",
    "drop_connection",
]

USER_AGENT: Final = (
    f"stripe-sessions/{__version__} aiohttp/{aiohttp.__version__} "
    f"python/{platform.python_version()}"
)
#: Headers every request of this SDK sends, whatever the client's options. An owned
#: session sends them as its defaults, which aiohttp copies in C where it merges a
#: request's own one by one in Python: 9 K instructions (1%) less per create (callgrind).
SDK_HEADERS: Final = {
    "User-Agent": USER_AGENT,
    "Content-Type": "application/x-www-form-urlencoded",
    "Accept": "application/json",
    # Stripe answers in identity encoding: a compressed answer is refused, never
    # inflated (a small gzip bomb inflates to gigabytes).
    "Accept-Encoding": "identity",
}
#: Loop pools a forked child inherited and must never close (see ConnectionPool.forget).
_INHERITED: Final[list[object]] = []
#: Every live ConnectionPool: a forked child makes each forget its parent's sessions, and
#: at exit each drops the pools of loops closed by hand, before they are collected (quietly).
_SESSIONS: Final[LoopOwners[ConnectionPool]] = LoopOwners()


class ConnectionPool:
    """Owns (or borrows) the aiohttp session: one per event loop, made on its first call.

    Copies made by ``with_options`` share one ConnectionPool, and so its connections.
    A session belongs to the loop it was made on, so a client used from several loops
    (``asyncio.run`` twice, a loop per test, threads with their own loops) keeps a
    :class:`LoopPool` per loop; each closes with its loop. A lent session stays on its
    own loop: a call from another is an :class:`EventLoopError`.

    The pools are kept in a :class:`LoopRegistry` (a plain dict under a lock). A pool
    leaves it when its loop ends (its end hook, under ``asyncio.run`` and its kind); one
    whose loop was closed by hand is discarded when the next loop is added, at
    ``aclose()`` and at exit. So after any number of ``asyncio.run`` calls only the
    pools of live loops (and one closed by hand) remain.
    """

    def __init__(
        self,
        max_connections: int,
        session: aiohttp.ClientSession | None,
        trust_env: bool = False,
    ) -> None:
        self._max_connections = max_connections
        self._trust_env = trust_env
        if session is not None:
            lent.check_lent(session)
        _SESSIONS.add(self)
        self._lent = session
        self._owned = session is None
        self._closed = False
        self._start()

    def _start(self) -> None:
        """No loop's pool yet (a new pool, or a forked child's)."""
        self._loops: LoopRegistry[LoopPool] = LoopRegistry()

    def _lent_closed(self) -> bool:
        """Whether the app closed the session it lent (a lent pool only)."""
        session = self._lent
        return session is not None and session.closed

    @property
    def loops(self) -> int:
        """How many event loops this pool keeps a session (or calls) for."""
        return len(self._loops)

    def _here(self) -> LoopPool:
        """The running loop's pool, made on its first call (under trio: EventLoopError)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise asyncio_required() from None
        here = self._loops.get(loop)
        if here is None:
            here = self._add(loop)
        return here

    def _add(self, loop: asyncio.AbstractEventLoop) -> LoopPool:
        calls = InFlight(None if self._owned else self._lent_closed)
        if not self._owned and getattr(self._lent, "_loop", loop) is not loop:
            # Not kept: get() refuses the call (EventLoopError), which gets its key here.
            return LoopPool(loop, calls, owned=False, on_end=None)
        loops = self._loops
        return loops.add(loop, lambda loop: LoopPool(loop, calls, self._owned, loops.ended))

    def sweep(self) -> None:
        """Drop the pools of loops closed by hand, quietly (at exit, say)."""
        self._loops.sweep()

    def check_loop(self) -> None:
        """Raise :class:`EventLoopError` unless an asyncio loop runs (before any task starts)."""
        self._here()

    @property
    def calls(self) -> InFlight:
        """The running loop's calls in flight (``aclose`` lets them finish, then cuts them)."""
        if self._closed:
            return closed_calls()
        return self._here().calls

    def get(self) -> aiohttp.ClientSession:
        """The session to send with on the running loop, made the first time.

        Raises :class:`EventLoopError` with no asyncio loop running (trio) or, for a
        lent session, on another loop than its own; :class:`ClientClosedError` once the
        pool, or the app's lent session, is closed. A call checked its lent session
        before its first attempt (``InFlight.track``), so a closed one found here is
        one closed during the call: ``in_flight``.
        """
        here = self._here()
        session = here.session
        if session is not None:
            if self._owned or not session.closed:
                return session
            raise lent_closed(True)
        if self._closed:
            raise refused()
        if self._lent is not None:  # lent, and first used on this loop
            session = self._lent
            lent.check_lent(session)
            if session.closed:
                raise lent_closed(True)
            # aiohttp binds a session to the loop it was made on (private, so looked
            # up with a default): on another, its timeouts fail with a bare RuntimeError.
            made_on = getattr(session, "_loop", None)
            if made_on is not None and made_on is not here.loop:
                raise wrong_loop()
            here.session = session
            return session
        raise_malloc_mmap_threshold()
        connector = CheckedConnector(limit=self._max_connections, ttl_dns_cache=300)
        session = here.session = aiohttp.ClientSession(
            connector=connector,
            headers=SDK_HEADERS,
            # Stripe never sets cookies; a proxy's must not follow the key around.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            trust_env=self._trust_env,
        )
        return session

    async def aclose(self, grace: float) -> None:
        """Refuse new calls on every loop, then close each loop's pool where it can be.

        This loop's: its calls in flight end (see ``InFlight.close``), its session
        closes. Another running loop's: the same, scheduled on that loop (thread-safe)
        and waited for up to ``grace`` plus a few seconds. A closed loop's: dropped
        quietly. A loop that is neither running nor closed keeps its pool until it
        ends (its end hook closes it) or is found closed. A lent session is left open.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            raise asyncio_required() from None
        self._closed = True
        loops = self._loops
        with loops.lock:
            loops.discard_closed()
            others = [p for p in loops.entries() if p.loop is not loop]
            here = loops.pop(loop)
            for other in others:
                if other.loop.is_running():
                    loops.pop(other.loop)
        waits = [close_on(p.loop, p.aclose, grace) for p in others if p.loop.is_running()]
        if here is not None:
            await here.aclose(grace)
        if waits:
            await asyncio.wait(waits, timeout=grace + UNWIND)

    def forget(self) -> None:
        """After ``os.fork()``: drop the parent's sessions in the child, without touching them.

        Closing one (or letting it be collected) would unregister the parent's sockets
        from the epoll set both processes share, and the parent would never hear its
        answers. So the child keeps them (and their end hooks), unused, for good.
        """
        _INHERITED.append(self._loops.entries())
        self._closed = False
        self._start()

    @property
    def closed(self) -> bool:
        """Whether ``aclose()`` was called."""
        return self._closed

    @property
    def default_headers(self) -> Mapping[str, str]:
        """What the session sends on every request: SDK_HEADERS, or nothing for a lent one."""
        return SDK_HEADERS if self._owned else {}

    @property
    def lent(self) -> bool:
        """Whether the session is the caller's own (``AsyncClient(session=...)``)."""
        return not self._owned

    def per_request(self) -> dict[str, Any]:
        """Keyword arguments every request passes so a lent session's settings do not apply."""
        return {} if self._owned else lent.per_request()


class CheckedConnector(aiohttp.TCPConnector):
    """A TCPConnector that never reuses a pooled connection holding unread data.

    aiohttp keeps parsing an idle keep-alive connection: a response the server (or a
    proxy) writes while the connection sits in the pool is queued, and the next request
    on that connection reads it as its answer: another request's answer, another
    customer's client secret. aiohttp's pool checks only that the socket is open
    (aio-libs/aiohttp#13656); this also asks the protocol's ``should_close``, which is
    true when anything was queued, is being read, or failed, and closes such a
    connection instead. Hand-written, as a subclass of a private method (``_get``),
    because aiohttp offers no hook where the pooled protocol can be seen; if a later
    aiohttp changes ``_get``, the answer checks in the transport still refuse a
    stray answer.
    """

    async def _get(self, *args: Any, **kwargs: Any) -> Any:
        while True:
            got: Any = await super()._get(*args, **kwargs)
            protocol = getattr(got, "protocol", got)  # a Connection; the protocol before 3.11
            if protocol is None or not getattr(protocol, "should_close", False):
                return got
            if protocol is got:  # pragma: no cover - older aiohttp: not yet acquired
                protocol.close()
                return None
            got.close()  # closes it (it must not return to the pool), then look again


def drop_connection(resp: aiohttp.ClientResponse) -> None:
    """Never reuse the connection ``resp`` came on: what it carries next is out of step.

    Once the body is read aiohttp has put the connection back in the pool, and only the
    response's protocol (private) still names it; the pool drops a closed one.
    """
    resp.close()
    protocol = getattr(resp, "_protocol", None)
    if protocol is not None:
        protocol.close()
