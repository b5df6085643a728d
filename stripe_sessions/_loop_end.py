"""The end of an event loop as a hook: how what belongs to one loop closes with it.

A connection pool's aiohttp session (``_http.loops``) and a limiter's Redis client
(``_limits.redis_loops``) belong to the loop they were made on. Each starts, on its
loop's first call, a tiny async generator (:func:`start_end_hook`) that asyncio
registers with the loop as it does every async generator: ``asyncio.run``,
``asyncio.Runner`` (pytest-asyncio, anyio), uvicorn and the sync client's loop close a
loop's async generators before closing it (``loop.shutdown_asyncgens()``), and this one
then closes what it guards, on its own loop, while that can still be awaited. A loop
closed by hand (``loop.close()`` alone) leaves sockets nothing can close through the
loop any more: :func:`close_socket` does the loop's last step itself.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["close_socket", "shut_down", "start_end_hook", "weakly"]

T = TypeVar("T")


def shut_down(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop.shutdown_asyncgens()`` has run: its async generators are closed.

    asyncio's private flag, looked up with a default (nothing public says so): a loop
    without it (uvloop) is taken to be running as usual.
    """
    return getattr(loop, "_asyncgens_shutdown_called", False) is True


def weakly(owner: T, on_end: Callable[[T], None]) -> Callable[[], None]:
    """``on_end(owner)``, holding neither: an end hook must keep nothing dropped alive.

    ``on_end`` is a bound method (held by a WeakMethod).
    """
    me, method = weakref.ref(owner), weakref.WeakMethod(on_end)

    def ended() -> None:
        owner, call = me(), method()
        if owner is not None and call is not None:
            call(owner)

    return ended


def start_end_hook(
    close: Callable[[], Awaitable[None]], ended: Callable[[], None]
) -> AsyncGenerator[None, None]:
    """The running loop's end hook: at the loop's end (or its own ``aclose``), ``ended()``
    then ``await close()``. Started here, synchronously: its first step registers it
    with the running loop (asyncio's ``firstiter`` hook) and enters its ``try``.
    """
    hook = _until_loop_end(close, ended)
    step: Any = hook.asend(None)
    try:
        step.send(None)  # it awaits nothing before its yield: one send finishes the step
    except StopIteration:
        return hook
    raise RuntimeError("the end-of-loop hook did not stop at its yield")  # pragma: no cover


async def _until_loop_end(
    close: Callable[[], Awaitable[None]], ended: Callable[[], None]
) -> AsyncGenerator[None, None]:
    """Suspended for the loop's life; closed by ``shutdown_asyncgens``."""
    try:
        yield
    finally:
        ended()
        await close()


def close_socket(transport: Any) -> None:
    """Close a transport's socket as its closed loop would have, and mark it closing.

    asyncio closes a transport's socket in a callback of its loop
    (``_call_connection_lost``), which a closed loop never runs, and warns ``unclosed
    transport`` when collecting one still open. Hand-written on asyncio's private
    attributes, each looked up with a default: nothing public closes a transport
    without its loop.
    """
    if transport is None:
        return
    ssl = getattr(transport, "_ssl_protocol", None)
    if ssl is not None:  # TLS: the app's transport over the socket's own
        transport._closed = True  # what its __del__ checks
        transport = getattr(ssl, "_transport", None)
        if transport is None:
            return
    transport._closing = True  # a StreamWriter's __del__ warns unless is_closing()
    sock = getattr(transport, "_sock", None)
    if sock is not None:
        sock.close()
        transport._sock = None
