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
from collections.abc import Callable
from typing import Final

from ._errors import APIConnectionError, StripeError
from ._validate import number

__all__ = [
    "CLOSE_GRACE",
    "GRACE",
    "ClientClosedError",
    "EventLoopError",
    "InFlight",
    "LoopThreadError",
]

#: Seconds ``aclose()``/``close()`` lets the calls in flight finish before cutting them.
CLOSE_GRACE: Final = 5.0
#: The check of ``aclose(grace=)`` and ``close(grace=)``: a finite number of seconds >= 0.
#: Called first, before anything is closed (a bad grace refused, not half a close).
GRACE: Final = number("grace", 0, noun="number of seconds")
#: Seconds a cut call is given to unwind (it is cancelled: this is a bound, not a wait).
UNWIND: Final = 5.0


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
    """The ``AsyncClient`` was called where it cannot run (also a ``RuntimeError``).

    Nothing was sent. Either no asyncio event loop is running (under trio, or anyio's
    trio backend: run the sync ``stripe_sessions.Client`` in a worker thread), or the
    ``aiohttp.ClientSession`` lent to the client (``AsyncClient(session=...)``) was made
    on another event loop than the one calling it. The client's own connection pool is
    made per event loop, so a client works from any asyncio loop::

        session = await anyio.to_thread.run_sync(
            lambda: client.customer_sessions.create(customer="cus_123", components=...)
        )
    """


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

    Every call runs inside ``with calls.track(key):``, which refuses it once closing
    began and records its task (a task runs one call at a time) with its key.
    :meth:`close` waits for them up to its grace, then cancels each remaining task; the
    end of the call's ``with`` turns that cancellation, and only that one, into a
    :class:`ClientClosedError` with the key.
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

    def track(self, key: str) -> Call:
        """``with calls.track(key):``: the current task's call, sent with ``key``, in flight.

        Refused (nothing sent) once closing began or the app closed its lent session.
        """
        if self.closing:
            raise refused(key)
        if self.lent_closed is not None and self.lent_closed():
            raise lent_closed(False, key)
        task = asyncio.current_task()
        if task is not None and task in self.calls:
            # A call within a call: a batch item's attempts, inside the item's own call
            # (its waits between attempts are the item's too, and cut with it).
            return Call(self, task, key, nested=True)
        if task is not None:  # None: driven by hand, outside any task (nothing to cut)
            self.calls[task] = key
        return Call(self, task, key)

    def ended(
        self,
        task: asyncio.Task[object] | None,
        key: str,
        error: BaseException | None,
        nested: bool = False,
    ) -> None:
        """A call ended, with ``error`` if it raised; raises what it ends with instead.

        The cancellation :meth:`close` made becomes a ClientClosedError; any other
        carries the key. A StripeError gets the key (:meth:`_failure`) and is chained to
        nothing: a task implemented in Python (asyncio's _PyTask; pytest-asyncio's on
        3.10) resumes a step inside an ``except`` when a future fails, and each raise
        in that step chains its exception (aiohttp's frames hold the headers).
        """
        if task is None:
            return
        cut_before = None
        if not nested:  # a nested call's task stays in flight: the outer call ends it
            del self.calls[task]
            cut_before = self._cut.pop(task, None) if self._cut else None
            if self._drained is not None and not self.calls:
                self._drained.set()
        if isinstance(error, asyncio.CancelledError):
            if cut_before is not None and not _cancelled_by_others(task, cut_before):
                raise cut(key, self.grace) from None
            # Whoever cancelled (a Ctrl-C of the sync client, a timeout) can say which
            # key the request may have been sent with (see Portal's _carry).
            with contextlib.suppress(AttributeError):
                error.idempotency_key = key  # type: ignore[attr-defined]
        elif isinstance(error, StripeError):
            failure = self._failure(error, key)
            if failure is not error:
                raise failure from None  # its context is error, the SDK's own (masked)
            error.__context__ = None

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
            await _wait(drained, UNWIND)


class Call:
    """One call in flight: the ``with`` block of :meth:`InFlight.track`.

    It holds the task the call started in: whoever finally closes the coroutine (a
    collector, with no loop running), the call's record is the one removed.
    """

    __slots__ = ("flight", "key", "nested", "task")

    def __init__(
        self,
        flight: InFlight,
        task: asyncio.Task[object] | None,
        key: str,
        nested: bool = False,
    ) -> None:
        self.flight, self.task, self.key, self.nested = flight, task, key, nested

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, error: BaseException | None, traceback: object) -> None:
        self.flight.ended(self.task, self.key, error, self.nested)


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)


def _cancelled_by_others(task: asyncio.Task[object], before: int) -> bool:
    """Take back the cut's cancellation; whether someone else cancelled the task as well."""
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+; 3.10 cannot tell
    return uncancel is not None and uncancel() > before
