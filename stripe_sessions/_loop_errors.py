"""EventLoopError's messages: no asyncio loop running (trio), a lent session of another loop."""

from __future__ import annotations

from ._lifecycle import EventLoopError

__all__ = ["asyncio_required", "wrong_loop"]


def wrong_loop() -> EventLoopError:
    """The error of a call from another event loop than its lent session's."""
    return EventLoopError(
        "The aiohttp.ClientSession lent to this client (AsyncClient(session=...)) was "
        "made on another event loop, so nothing was sent; lend a session made on the "
        "loop that calls the client, or lend none (the client then makes one per loop)",
        should_retry=False,
    )


def asyncio_required() -> EventLoopError:
    """The error of a call with no asyncio event loop running (trio, or no loop at all)."""
    library = _async_library()
    where = f" (this is {library})" if library not in (None, "asyncio") else ""
    return EventLoopError(
        "stripe_sessions.AsyncClient needs a running asyncio event loop, and none is "
        f"running here{where}, so nothing was sent. From trio (or anyio's trio backend) "
        "call the sync client in a worker thread: client = stripe_sessions.Client(), then "
        "await anyio.to_thread.run_sync(lambda: client.customer_sessions.create(...)) "
        "(or trio.to_thread.run_sync); from synchronous code, use stripe_sessions.Client",
        should_retry=False,
    )


def _async_library() -> str | None:
    """The async library running this thread, as sniffio (trio's and anyio's) says."""
    try:
        import sniffio  # noqa: PLC0415 - optional: present wherever trio or anyio is

        return str(sniffio.current_async_library())
    except Exception:  # not installed, or no async library running
        return None
