"""Closing a client with calls in flight: a grace period, then each call ends with its key.

``aclose()`` (and the sync ``close()``) first refuses new calls, then lets the calls in
flight finish for up to ``grace`` seconds (:data:`CLOSE_GRACE` by default), then cuts
the rest: each one ends with a :class:`ClientClosedError` that carries the idempotency
key it was sent with, since Stripe may have created its session. Retrying with that
key on an open client is safe: Stripe replays the session instead of creating another.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from ._errors import APIConnectionError, StripeError
from ._http.options import RequestOptions
from ._validate import number

__all__ = [
    "CLOSE_GRACE",
    "GRACE",
    "ClientClosedError",
    "EventLoopError",
    "InFlight",
    "LoopThreadError",
]

T = TypeVar("T")

#: Seconds ``aclose()``/``close()`` lets the calls in flight finish before cutting them.
CLOSE_GRACE: Final = 5.0
#: The check of ``aclose(grace=)`` and ``close(grace=)``: a finite number of seconds >= 0.
#: Called first, before anything is closed (a bad grace refused, not half a close).
GRACE: Final = number("grace", 0, noun="number of seconds")
#: Seconds a cut call is given to unwind (it is cancelled: this is a bound, not a wait).
_UNWIND: Final = 5.0


class ClientClosedError(StripeError, RuntimeError):
    """The client was closed before this call could finish (also a ``RuntimeError``).

    ``in_flight`` says which case it is: False, the call started after ``close()``
    and nothing was sent; True, it may have been sent (it had started, perhaps still
    waiting for a pooled connection) and did not finish within the grace period of
    ``close()``, so Stripe may have created the session. The same error, with the
    same ``in_flight``, ends a call whose lent ``aiohttp.ClientSession``
    (``AsyncClient(session=...)``) your app closed: before the call (nothing sent)
    or during it (it may have been sent). Either way
    ``idempotency_key`` is the call's key (and ``batch_key`` a batch's): retrying with
    it on an open client never creates a second session::

        except ss.ClientClosedError as e:
            if e.in_flight:
                session = await other_client.customer_sessions.create(
                    ..., idempotency_key=e.idempotency_key
                )
    """

    #: True when the request may have been sent (the session may exist), False when
    #: it certainly was not.
    in_flight: bool = False


class LoopThreadError(StripeError, RuntimeError):
    """The sync ``Client`` was called from its own event loop thread (also a ``RuntimeError``).

    That thread runs ``on_progress`` callbacks: a call from one would wait for the
    thread it runs on, for ever, so it is refused and nothing is sent::

        client.customer_sessions.create_many(items, on_progress=lambda p: print(p.done))
    """


class EventLoopError(StripeError, RuntimeError):
    """The ``AsyncClient`` (or the session lent to it) belongs to another event loop.

    Also a ``RuntimeError``. An ``AsyncClient``'s connection pool is bound to the event
    loop that first used it (a lent ``aiohttp.ClientSession`` to the loop it was made
    on), so a call from another loop is refused and nothing is sent: create one client
    per event loop (in your app's startup hook, or per test), or use the sync
    ``stripe_sessions.Client``::

        async def startup():
            app.stripe = stripe_sessions.AsyncClient()
    """


def wrong_loop(lent: bool) -> EventLoopError:
    """The error of a call made on another event loop than the one the pool is bound to."""
    what = (
        "The aiohttp.ClientSession lent to this client (AsyncClient(session=...)) was "
        "made on another event loop, so nothing was sent; lend a session made on the "
        "loop that calls the client"
        if lent
        else "This client was first used on another event loop and is bound to it, so "
        "nothing was sent. Create one client per event loop (for example in your app's "
        "startup hook, or one per test), or use stripe_sessions.Client from "
        "synchronous code"
    )
    return EventLoopError(what, should_retry=False)


def refused(idempotency_key: str | None = None) -> ClientClosedError:
    """The error of a call started after the client was closed: nothing was sent."""
    return ClientClosedError(
        "This client is closed, so nothing was sent; create a new client "
        "(a client is meant to be long-lived: close it when your program ends)",
        idempotency_key=idempotency_key,
        should_retry=False,
    )


def lent_closed(in_flight: bool, idempotency_key: str | None = None) -> ClientClosedError:
    """The error of a call whose lent ``aiohttp.ClientSession`` the app closed."""
    error = ClientClosedError(
        "The aiohttp.ClientSession lent to this client (AsyncClient(session=...)) was "
        "closed while this request was in flight; Stripe may have created the session: "
        "retry with the same idempotency_key on an open client to get it without "
        "creating a second one"
        if in_flight
        else "The aiohttp.ClientSession lent to this client (AsyncClient(session=...)) "
        "is closed, so nothing was sent; close the client before the session you lent it",
        idempotency_key=idempotency_key,
        should_retry=False,
    )
    error.in_flight = in_flight
    return error


def cut(idempotency_key: str | None, grace: float) -> ClientClosedError:
    """The error of a call in flight that the client's close cut short."""
    error = ClientClosedError(
        "The client was closed while this request was in flight (it had not finished "
        f"{grace:g}s after close() was called); Stripe may have created the session: "
        "retry with the same idempotency_key on an open client to get it without "
        "creating a second one",
        idempotency_key=idempotency_key,
        should_retry=False,
    )
    error.in_flight = True
    return error


class InFlight:
    """The calls of one connection pool that are in flight, and closing them.

    Every call goes through :meth:`run`, which refuses it once closing began, and
    records its task (a task runs one call at a time) with its key. :meth:`close` waits
    for them up to its grace, then cancels each remaining task; :meth:`run` turns that
    cancellation, and only that one, into a :class:`ClientClosedError` with the key.
    """

    __slots__ = ("_cut", "_drained", "calls", "closing", "grace", "lent_closed")

    def __init__(self, lent_closed: Callable[[], bool] | None = None) -> None:
        #: For a lent session: whether the app closed it (None for the client's own).
        self.lent_closed = lent_closed
        #: Task -> idempotency key of each call in flight.
        self.calls: dict[asyncio.Task[object], str] = {}
        self.closing = False
        self.grace = CLOSE_GRACE
        #: Tasks cut by close(), with their ``cancelling()`` count before the cut.
        self._cut: dict[asyncio.Task[object], int] = {}
        self._drained: asyncio.Event | None = None

    async def run(
        self,
        post: Callable[[str, str, RequestOptions], Awaitable[T]],
        path: str,
        body: str,
        options: RequestOptions,
    ) -> T:
        """Await ``post(path, body, options)`` as one call in flight; a closing pool refuses it."""
        key = options.idempotency_key
        if self.closing:
            raise refused(key)
        if self.lent_closed is not None and self.lent_closed():
            raise lent_closed(False, key)
        task = asyncio.current_task()
        if task is None:  # driven by hand, outside any task: nothing to cut
            return await post(path, body, options)
        calls = self.calls
        calls[task] = key
        try:
            return await post(path, body, options)
        except asyncio.CancelledError as e:
            if task in self._cut and not _cancelled_by_others(task, self._cut.pop(task)):
                raise cut(key, self.grace) from None
            # Whoever cancelled (a Ctrl-C of the sync client, a timeout) can say which
            # key the request may have been sent with (see Portal's _carry).
            with contextlib.suppress(AttributeError):
                e.idempotency_key = key  # type: ignore[attr-defined]
            raise
        except StripeError as e:
            failure = self._failure(e, key)
            if failure is e:
                # Re-raised as is (a bare raise chains nothing): a task implemented in
                # Python resumes inside an ``except`` (see Transport.post).
                e.__context__ = None
                raise
            raise failure from None  # its context is e, the SDK's own (masked) error
        finally:
            del calls[task]
            if self._cut:
                self._cut.pop(task, None)
            if self._drained is not None and not calls:
                self._drained.set()

    def _failure(self, error: StripeError, key: str) -> StripeError:
        """What a failed call raises: its error with its key; a closed lent session says so.

        Errors raised before a key was known (the pool's loop checks) get the call's.
        A connection the app's closing of its lent session broke is that closing.
        """
        if (
            self.lent_closed is not None
            and isinstance(error, APIConnectionError)
            and self.lent_closed()
        ):
            return lent_closed(True, key)
        if error.idempotency_key is None:
            error.idempotency_key = key
        return error

    async def close(self, grace: float) -> None:
        """Refuse new calls, let those in flight finish within ``grace`` s, then cut the rest."""
        self.closing = True
        self.grace = grace
        if not self.calls:
            return
        if self._drained is None:
            self._drained = asyncio.Event()
        drained = self._drained
        if grace > 0:
            await _wait(drained, grace)
        me = asyncio.current_task()
        for task in list(self.calls):
            if task is not me and not task.done() and task not in self._cut:
                cancelling = getattr(task, "cancelling", None)  # Python 3.11+
                self._cut[task] = cancelling() if cancelling is not None else 0
                task.cancel()
        if self.calls:
            await _wait(drained, _UNWIND)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _cancelled_by_others(task: asyncio.Task[object], before: int) -> bool:
    """Take back the cut's cancellation; whether someone else cancelled the task as well."""
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+; 3.10 cannot tell
    return uncancel is not None and uncancel() > before
