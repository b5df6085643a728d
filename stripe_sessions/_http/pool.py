"""The aiohttp session an SDK client sends with: created lazily, shared by copies, fork-safe."""

from __future__ import annotations

import asyncio
import os
import platform
import weakref
from collections.abc import Mapping
from typing import Any, Final

import aiohttp

from .._lifecycle import InFlight, lent_closed, refused, wrong_loop
from .._version import __version__
from . import lent

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
#: Sessions a forked child inherited and must never close (see ConnectionPool.forget).
_INHERITED: Final[list[object]] = []
#: Every live ConnectionPool, so that a forked child can make each forget its parent's session.
_SESSIONS: Final[weakref.WeakSet[ConnectionPool]] = weakref.WeakSet()


class ConnectionPool:
    """Owns (or borrows) the aiohttp session, created lazily on the loop that first uses it.

    Copies made by ``with_options`` share one ConnectionPool, and so its connections.
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
        self._session = session
        self._owned = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        #: The calls in flight on this pool (``aclose`` lets them finish, then cuts them).
        self.calls = self._in_flight()

    def _in_flight(self) -> InFlight:
        return InFlight(None if self._owned else self._lent_closed)

    def _lent_closed(self) -> bool:
        """Whether the app closed the session it lent (a lent pool only)."""
        session = self._session
        return session is not None and session.closed

    def get(self) -> aiohttp.ClientSession:
        """The session to send with, creating it on the running loop the first time.

        Raises :class:`EventLoopError` on another loop than the pool's, and
        :class:`ClientClosedError` once the pool, or the app's lent session, is closed.
        A call checked its lent session before its first attempt (``InFlight.track``),
        so a closed one found here is one closed during the call: ``in_flight``.
        """
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop:
            if self._owned or not session.closed:
                return session
            raise lent_closed(True)
        if self._closed:
            raise refused()
        if self._loop is not None and self._loop is not loop:
            raise wrong_loop(False)
        if session is not None:  # lent, and first used on this loop
            lent.check_lent(session)
            if session.closed:
                raise lent_closed(True)
            # aiohttp binds a session to the loop it was made on (private, so looked
            # up with a default): on another, its timeouts fail with a bare RuntimeError.
            made_on = getattr(session, "_loop", None)
            if made_on is not None and made_on is not loop:
                raise wrong_loop(True)
        self._loop = loop
        _raise_malloc_mmap_threshold()
        if session is None:
            connector = CheckedConnector(limit=self._max_connections, ttl_dns_cache=300)
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                headers=SDK_HEADERS,
                # Stripe never sets cookies; a proxy's must not follow the key around.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=self._trust_env,
            )
        return session

    async def aclose(self, grace: float) -> None:
        """Refuse new calls, end those in flight (see ``InFlight.close``), close the session.

        A caller's own session is left open.
        """
        self._closed = True
        await self.calls.close(grace)
        session, self._session = self._session, None
        if session is not None and self._owned and not session.closed:
            await session.close()

    def forget(self) -> None:
        """After ``os.fork()``: drop the parent's session in the child, without touching it.

        Closing it here would unregister the parent's sockets from the epoll set the
        two processes share, and the parent would never hear its answers; letting it be
        garbage-collected does the same. So the child keeps it, unused, for good.
        """
        if self._owned and self._session is not None:
            _INHERITED.append(self._session)
            self._session = None
        self._loop = None
        self._closed = False
        self.calls = self._in_flight()  # the parent's tasks are not the child's

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


#: Larger than asyncio's read size (``sock.recv(256 KiB)`` per read of a socket).
_READ_BUFFER_PLUS: Final = 256 * 1024 + 64 * 1024
_allocator_ready = False


def _raise_malloc_mmap_threshold() -> None:
    """Make glibc serve asyncio's 256 KiB read buffers from the heap, once per process.

    asyncio's selector transport reads each socket with ``sock.recv(262144)`` and then
    shrinks the bytes to what arrived. Above its mmap threshold (128 KiB at start)
    glibc maps such a block with ``mmap`` and the shrink is an ``mremap``, so every
    answer costs an mmap, an mremap and an munmap, with their page faults: measured
    with ``strace -c``, one of each per request in a batch, and about 20% more client
    CPU. glibc raises the threshold (its documented "dynamic mmap threshold") when a
    mapped block larger than it is freed, which is what this one allocation does; after
    that the reads come from the heap. Elsewhere it is one short-lived allocation.
    """
    global _allocator_ready  # noqa: PLW0603 - once per process
    if not _allocator_ready:
        _allocator_ready = True
        block = bytes(_READ_BUFFER_PLUS)
        del block


def _forget_all_in_child() -> None:
    for lazy in list(_SESSIONS):
        lazy.forget()


# Each owner handles its own fork (as synchronicity does): a child's pools start afresh.
os.register_at_fork(after_in_child=_forget_all_in_child)
