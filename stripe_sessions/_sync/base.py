"""SyncClientBase: the hand-written half of the sync ``Client`` (its loop, lifecycle and repr).

The generated half (``_sync_client.py``) only delegates: each method runs the async
client's coroutine on the private loop (``Portal.call``) or drives its async generator
(``Portal.iterate``). What cannot be derived from the async client lives here, once.
"""

from __future__ import annotations

from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from .._lifecycle import CLOSE_GRACE, GRACE
from .loop import UNWIND_TIMEOUT
from .portal import Portal

if TYPE_CHECKING:
    from .._client import AsyncClient

__all__ = ["SyncClientBase"]

S = TypeVar("S", bound="SyncClientBase")


class SyncClientBase:
    """Drives an :class:`AsyncClient` on a private event loop in a daemon thread.

    A copy made by ``with_options`` shares the loop and the connection pool; closing
    the copy leaves both open, closing the original closes both.
    """

    _async: AsyncClient
    _portal: Portal
    _owns_portal: bool

    def __init__(self, async_client: AsyncClient, portal: Portal | None = None) -> None:
        self._async = async_client
        self._owns_portal = portal is None
        self._portal = Portal(async_client.aclose) if portal is None else portal
        self._bind()

    def _bind(self) -> None:
        """Build the resources (``customer_sessions``); written by the generator."""
        raise NotImplementedError

    def _derive(self: S, async_client: AsyncClient) -> S:
        """A copy of this client around ``async_client``, on the same loop."""
        clone = object.__new__(type(self))
        SyncClientBase.__init__(clone, async_client, self._portal)
        return clone

    @property
    def closed(self) -> bool:
        """Whether the client (or, for a copy, the client it was copied from) is closed."""
        return self._portal.closed

    def close(self, *, grace: float = CLOSE_GRACE) -> None:
        """Close the connection pool and stop the loop (a copy leaves both to its original).

        Calls started from then on raise :class:`ClientClosedError`. Calls in flight
        on other threads get ``grace`` seconds (5 by default) to finish; each one still
        running then raises a :class:`ClientClosedError` carrying its ``idempotency_key``
        (Stripe may have created that session: retrying with the key is safe), and a
        batch one carrying its ``batch_key``. Called from ``on_progress`` (the loop's own
        thread), it returns at once and the loop closes once the callback returns.
        """
        grace = GRACE(grace)  # first: a bad grace closes nothing
        if self._owns_portal:
            self._portal.close(partial(self._async.aclose, grace=grace), grace + UNWIND_TIMEOUT)

    def __enter__(self: S) -> S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        inner: AsyncClient | None = getattr(self, "_async", None)  # None: half-built
        if inner is None:
            return f"<{type(self).__name__} (not set up)>"
        return repr(inner).replace("AsyncClient", type(self).__name__, 1)

    def __getstate__(self) -> Any:
        raise TypeError(f"{type(self).__name__} cannot be pickled: it owns a thread and a loop")
