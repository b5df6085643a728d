"""Specification of the sync client's portal: every wait is bounded or ends with the loop.

The portal's waits are on threads (``Future.result``, ``Event.wait``, ``join``), bounded
by ``close(timeout=)`` and ``UNWIND_TIMEOUT`` (of ``_sync.loop``, where the waits are;
read when a wait starts: the seam these tests shrink). Each test states what happens,
and a wait that did not end is caught by a bound (``PATIENCE``) only a hang reaches: no
assertion is on a duration.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._sync import loop as _loop
from stripe_sessions._sync.portal import Portal
from tests.helpers import PATIENCE, run_script


async def nothing() -> None:
    return None


async def forever() -> None:
    await asyncio.Event().wait()


def in_thread(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``fn`` in a thread; its outcome (``("ok", value)`` or ``("raised", exc)``)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(("ok", fn()))
        except BaseException as e:
            outcome.append(("raised", e))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def ended(thread: threading.Thread) -> bool:
    thread.join(PATIENCE)
    return not thread.is_alive()


def test_a_call_returns_what_its_coroutine_returns_from_the_loop_thread() -> None:
    portal = Portal(nothing)

    async def where() -> str:
        return threading.current_thread().name

    assert portal.call(where) == "stripe-sessions-loop"
    portal.close()


def test_a_call_waiting_when_the_client_closes_ends_with_client_closed() -> None:
    portal = Portal(nothing)
    portal.call(nothing)  # the loop runs
    thread, outcome = in_thread(lambda: portal.call(forever))
    for _ in range(int(PATIENCE * 1000)):  # until the call is on the loop
        if portal._state is not None and portal._state.pending:
            break
        thread.join(0.001)
    portal.close()
    assert ended(thread)
    [(how, error)] = outcome
    assert how == "raised" and isinstance(error, ss.ClientClosedError), outcome


def test_after_close_a_call_is_refused_at_once() -> None:
    portal = Portal(nothing)
    portal.call(nothing)
    portal.close()
    coro = forever()
    with pytest.raises(ss.ClientClosedError):
        portal.call(lambda: coro)
    coro.close()
    portal.close()  # idempotent


def test_a_close_whose_cleanup_hangs_ends_after_its_timeout_and_stops_the_loop() -> None:
    portal = Portal(forever)
    portal.call(nothing)
    loop_thread = portal._state.thread if portal._state else None
    assert loop_thread is not None
    thread, outcome = in_thread(lambda: portal.close(timeout=0.05))
    assert ended(thread)
    [(how, error)] = outcome
    # strict (an explicit close): the timeout is said, not swallowed
    assert how == "raised" and isinstance(error, concurrent.futures.TimeoutError), outcome
    assert ended(loop_thread)


def test_a_task_that_ignores_cancellation_cannot_hold_the_loop_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_loop, "UNWIND_TIMEOUT", 0.02)  # each round of cancelling
    portal = Portal(nothing)
    started = threading.Event()

    async def stubborn() -> None:
        started.set()
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue  # refuses to end

    leaked: list[asyncio.Task[None]] = []  # referenced, as a leaked task would be

    async def spawn() -> None:
        leaked.append(asyncio.get_running_loop().create_task(stubborn()))

    portal.call(spawn)
    assert started.wait(PATIENCE)
    loop_thread = portal._state.thread if portal._state else None
    assert loop_thread is not None
    thread, outcome = in_thread(portal.close)
    assert ended(thread) and ended(loop_thread)
    assert outcome == [("ok", None)]
    for task in leaked:  # its loop is closed: it stays pending, as intended (no GC notice)
        task._log_destroy_pending = False  # type: ignore[attr-defined]


def test_close_from_the_loop_thread_is_scheduled_and_never_waits_on_itself() -> None:
    closed = threading.Event()

    async def on_close() -> None:
        closed.set()

    portal = Portal(on_close)

    async def close_from_a_callback() -> str:
        portal.close()  # an on_progress callback closing its own client
        return "returned"

    loop_thread = portal._state.thread if portal._start() and portal._state else None
    assert portal.call(close_from_a_callback) == "returned"
    assert closed.wait(PATIENCE)
    assert loop_thread is not None and ended(loop_thread)


def test_ctrl_c_waits_for_the_unwinding_at_most_unwind_timeout() -> None:
    # A call whose coroutine will not unwind when cancelled: Ctrl-C still returns
    # control, after UNWIND_TIMEOUT (shrunk here), with the KeyboardInterrupt.
    out = run_script(
        """
        from stripe_sessions._sync import loop as _loop
        from stripe_sessions._sync.portal import Portal
        _loop.UNWIND_TIMEOUT = 0.2

        async def nothing():
            pass

        async def stubborn():
            while True:
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    continue

        portal = Portal(nothing)
        portal.call(nothing)
        threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
        try:
            portal.call(stubborn)
        except KeyboardInterrupt:
            print("interrupted")
        portal.close()
        print("closed", portal._state is None)
        """,
        timeout=PATIENCE,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["interrupted", "closed True"], out.stdout
