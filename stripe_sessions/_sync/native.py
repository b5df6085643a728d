"""Real OS threads and cross-thread waits for the sync client, also under gevent's monkey-patching.

After ``gevent.monkey.patch_all()``, ``threading.Thread`` starts a greenlet, not a thread,
and ``threading.Event``/``Lock`` are gevent's, meant for greenlets of one thread. A loop
"thread" that is a greenlet shares its OS thread with the app's greenlets: asyncio then
sees a running loop in every one of them (hence a misleading warning) and the loop runs
only when the app yields. So, when threading is patched, the loop gets a real OS thread,
started with the interpreter's own ``_thread`` primitives (``gevent.monkey.get_original``),
and a caller waits for it with gevent's primitives: a waiting greenlet yields to its hub,
and the other greenlets run meanwhile (a native lock would block them all). The hub is
woken from the loop thread through an ``async_`` watcher, which gevent documents for
wake-ups from other threads; its ``Event`` alone must not cross threads.

Without gevent (or with ``patch_all(thread=False)``) this is plain ``threading``.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

__all__ = [
    "LOOP_THREADS",
    "Signal",
    "cooperative",
    "current_ident",
    "locked_signal",
    "green",
    "new_thread",
    "on_a_loop_thread",
    "result",
    "signal",
]

T = TypeVar("T")


def green() -> bool:
    """Whether gevent has monkey-patched ``threading`` (so its threads are greenlets)."""
    monkey = sys.modules.get("gevent.monkey")  # patching imports it: not there, not patched
    return monkey is not None and bool(monkey.is_module_patched("threading"))


def cooperative() -> bool:
    """Whether gevent has monkey-patched anything: a wait must then yield to the hub.

    Also with ``patch_all(thread=False)``: the threads are real, but the app's greenlets
    (and the gevent sockets they serve) share the waiting thread.
    """
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_anything_patched())


def _original(module: str, name: str) -> Any:
    """``module.name`` as it was before gevent patched it (as it is, when it did not)."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is not None:
        return monkey.get_original(module, name)
    return getattr(importlib.import_module(module), name)


# The interpreter's own primitives, taken once: imported before gevent patches, these are
# the originals already (patching replaces the module's attributes, not these references).
_get_ident: Callable[[], int] = _original("_thread", "get_ident")
_allocate_lock: Callable[[], Any] = _original("_thread", "allocate_lock")
_start_new_thread: Callable[..., int] = _original("_thread", "start_new_thread")


def current_ident() -> int:
    """The OS thread's identifier (under gevent, not the greenlet's, as ``threading``'s)."""
    return _get_ident()


#: The OS threads running a portal's loop now (under gevent they are no LoopThread).
LOOP_THREADS: set[int] = set()


def on_a_loop_thread() -> bool:
    """Whether this code runs on some portal's loop thread (which must never wait on a loop)."""
    return current_ident() in LOOP_THREADS


class Signal(Protocol):
    """A flag set once, from any thread, and waited for (``threading.Event``'s shape)."""

    def set(self) -> None:
        """Set the flag and wake every waiter (from any thread)."""

    def is_set(self) -> bool:
        """Whether the flag is set."""

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the flag is set (True) or ``timeout`` seconds passed (False)."""


class _GreenSignal:
    """A :class:`Signal` whose waiters are greenlets: each yields to its own thread's hub.

    Hand-written because gevent's ``Event`` is for one thread's greenlets only. Each
    waiter starts an ``async_`` watcher on its own hub (gevent's documented wake-up from
    other threads: ``send()`` is thread-safe) that sets a gevent ``Event`` there. The
    watcher is referenced, so a hub with nothing else to do waits for it instead of
    raising ``LoopExit`` ("would block forever"): a lone script's first call has no
    other greenlet. It is started before it is registered (libev forgets a ``send``
    that came before the start), and sent and closed under one native lock.
    """

    def __init__(self) -> None:
        self._lock = _allocate_lock()
        self._flag = False
        self._waiters: list[Any] = []

    def set(self) -> None:
        with self._lock:
            self._flag = True
            for watcher in self._waiters:
                watcher.send()
            self._waiters.clear()

    def is_set(self) -> bool:
        return self._flag

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        hub = importlib.import_module("gevent.hub").get_hub()  # this thread's hub
        event = importlib.import_module("gevent.event").Event()
        watcher = hub.loop.async_()
        watcher.start(event.set)
        try:
            with self._lock:
                if self._flag:
                    return True
                self._waiters.append(watcher)
            return bool(event.wait(timeout)) or self._flag
        finally:
            with self._lock:
                if watcher in self._waiters:
                    self._waiters.remove(watcher)
                watcher.stop()
                watcher.close()


def signal() -> Signal:
    """A new :class:`Signal`: ``threading.Event``, or one greenlets can wait for under gevent."""
    return _GreenSignal() if cooperative() else threading.Event()


def locked_signal() -> Signal:
    """A :class:`Signal` to wait for while holding a ``threading`` lock.

    It yields to the hub only where that lock is gevent's (``threading`` patched): with
    ``patch_all(thread=False)`` the lock is native, and a greenlet yielding while it holds
    it lets the next one block the whole thread on it, the holder's wake-up included.
    """
    return _GreenSignal() if green() else threading.Event()


class NativeThread:
    """A daemon OS thread started with the original ``_thread`` (``threading.Thread``'s shape).

    For gevent's monkey-patched processes only: ``threading.Thread`` would be a greenlet.
    ``join`` waits with a :class:`Signal`, so a joining greenlet lets the others run.
    """

    daemon = True

    def __init__(self, target: Callable[..., object], args: tuple[Any, ...], name: str) -> None:
        self.name = name
        self.ident: int | None = None
        self._target, self._args = target, args
        self._ended = signal()

    def start(self) -> None:
        """Start the thread."""
        self.ident = _start_new_thread(self._run, ())

    def _run(self) -> None:
        try:
            self._target(*self._args)
        finally:
            self._ended.set()

    def is_alive(self) -> bool:
        """Whether the thread was started and has not ended."""
        return self.ident is not None and not self._ended.is_set()

    def join(self, timeout: float | None = None) -> None:
        """Wait until the thread ends, or for ``timeout`` seconds."""
        self._ended.wait(timeout)

    def __repr__(self) -> str:
        state = "started" if self.is_alive() else "ended" if self.ident else "initial"
        return f"<NativeThread({self.name}, {state} daemon {self.ident})>"


def result(future: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """``future.result(timeout)``; under gevent, a waiting greenlet yields to its hub.

    Not left to the future's own wait: that waits on whatever ``threading`` lock
    the future was made with, so whether other greenlets run meanwhile (and whether
    a hub with nothing else to do raises ``LoopExit``) would rest on how gevent's
    patched locks behave when released from a foreign OS thread. A :class:`Signal`
    wakes the hub the way gevent documents for other threads.
    """
    if not future.done() and cooperative():
        ready = signal()
        future.add_done_callback(lambda _: ready.set())
        if not ready.wait(timeout):
            timeout = 0  # not done in time: result() raises TimeoutError at once
    return future.result(timeout)


def new_thread(
    target: Callable[..., object], args: tuple[Any, ...], name: str, cls: type[threading.Thread]
) -> threading.Thread | NativeThread:
    """A daemon thread running ``target(*args)``: a ``cls`` or, under gevent, a real one."""
    if green():
        return NativeThread(target, args, name)
    return cls(target=target, args=args, name=name, daemon=True)
