"""The request events hooks are given, immutable, and ``event_hooks``: checked, then called.

Three kinds, named as ``event_hooks``' keys: ``"request"`` before every HTTP attempt
(:class:`RequestEvent`), ``"response"`` after it, however it ended
(:class:`ResponseEvent`), and ``"retry"`` when a failed attempt is to be retried
(:class:`RetryEvent`, with the wait before the next attempt). No event holds the API
key, a client secret or a body: only what the request's headers say in the clear and
what the answer's status and headers said, made safe as errors make them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .._safe_text import printable, redact
from .._validate import refuse

__all__ = [
    "HOOK_KINDS",
    "EventHook",
    "Hooks",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "Secrets",
    "call_hooks",
    "check_event_hooks",
    "masked_secrets",
]

logger: Final = logging.getLogger("stripe_sessions")

#: ``event_hooks``' keys.
HOOK_KINDS: Final = ("request", "response", "retry")

#: A hook: called with the event; an awaitable it returns is awaited (async clients).
EventHook = Callable[[Any], object]
#: ``event_hooks`` as a Config keeps it: ``(kind, (hook, ...))`` pairs, kinds in order.
Hooks = tuple[tuple[str, tuple[EventHook, ...]], ...]


@attrs.frozen(slots=True, kw_only=True)
class RequestEvent:
    """An HTTP attempt is about to be sent (``event_hooks={"request": [...]}``)."""

    #: ``"POST"``.
    method: str
    #: The path, ``"/v1/customer_sessions"``.
    path: str
    #: The attempt's number within its call (1: the first; a batch item's count too).
    attempt: int
    #: The ``Idempotency-Key`` sent (the same on every attempt of a call).
    idempotency_key: str
    #: The ``Stripe-Account`` header sent, if any.
    stripe_account: str | None
    #: The ``Stripe-Version`` sent.
    api_version: str
    #: Whether the attempt is a batch item's.
    batch: bool


@attrs.frozen(slots=True, kw_only=True)
class ResponseEvent(RequestEvent):
    """An HTTP attempt ended, with an answer or without (``"response"``)."""

    #: The HTTP status, None when no answer came (a connection error, a timeout).
    status: int | None
    #: Stripe's ``Request-Id``, if an answer came with one.
    request_id: str | None
    #: Stripe's ``Idempotent-Replayed: true``: an earlier answer for the key, replayed.
    idempotent_replayed: bool
    #: Seconds from the attempt's start (its rate slot included) to its end.
    elapsed: float
    #: The error's class name when the attempt failed (``"RateLimitError"``,
    #: ``"APITimeoutError"``, ``"CancelledError"``), else None.
    error_type: str | None
    #: Stripe's error ``code`` (``"rate_limit"``, ``"lock_timeout"``), if one came.
    error_code: str | None
    #: A 429's ``Stripe-Rate-Limited-Reason`` (``"global-rate"``...), if sent.
    rate_limit_reason: str | None


@attrs.frozen(slots=True, kw_only=True)
class RetryEvent(RequestEvent):
    """Attempt ``attempt`` failed and will be retried after ``wait`` seconds (``"retry"``)."""

    #: Seconds before the next attempt (a batch's pacer may hold it longer after a 429).
    wait: float
    #: The failed attempt's HTTP status, None when no answer came.
    status: int | None
    #: The failed attempt's ``Request-Id``, if any.
    request_id: str | None
    #: The failure's class name.
    error_type: str
    #: Stripe's error ``code``, if any.
    error_code: str | None
    #: A 429's ``Stripe-Rate-Limited-Reason``, if sent.
    rate_limit_reason: str | None


def check_event_hooks(value: Any) -> Hooks:
    """``event_hooks`` (a mapping of kind to a callable or a list of them) as kept pairs.

    Raises ValidationError for an unknown kind or a hook that is not callable.
    """
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in value):
        value = dict(value)  # a Config's own pairs, given back by attrs.evolve
    if not isinstance(value, Mapping):
        raise refuse(
            "event_hooks",
            f"must be a mapping of {', '.join(HOOK_KINDS)} to callables, "
            f"got {type(value).__name__}",
        )
    kept: dict[str, tuple[EventHook, ...]] = {}
    for kind, hooks in value.items():
        if kind not in HOOK_KINDS:
            raise refuse(
                f"event_hooks[{kind!r}]", f"is not a kind of event (one of {', '.join(HOOK_KINDS)})"
            )
        listed = (hooks,) if callable(hooks) else hooks
        if not isinstance(listed, (list, tuple)) or not all(callable(h) for h in listed):
            raise refuse(f"event_hooks[{kind!r}]", "must be a callable or a list of callables")
        if listed:
            kept[kind] = tuple(listed)
    return tuple((kind, kept[kind]) for kind in HOOK_KINDS if kind in kept)


class Secrets(tuple[str, ...]):
    """The client's secrets (its API key...) with a repr that shows none of them.

    Hooks are the caller's code: a timeout, a cancel or a ``KeyboardInterrupt`` raised
    in one puts the frames that called it on a traceback, and an error tracker renders
    their locals (Sentry, ``capture_locals``). The tuple they hold is this, not a bare
    tuple whose repr is the key.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} secrets>"


def masked_secrets(secrets: tuple[str, ...]) -> Secrets:
    """``secrets`` as a :class:`Secrets` (the same object when it already is one)."""
    return secrets if isinstance(secrets, Secrets) else Secrets(secrets)


def _hook_name(hook: EventHook) -> str:
    name = getattr(hook, "__qualname__", None)
    return name if isinstance(name, str) and name else type(hook).__qualname__


def _message(e: Exception, secrets: tuple[str, ...]) -> str:
    # str() of the caller's exception runs the caller's code: it may raise, or be huge.
    try:
        text = str(e)
    except Exception:  # the failure is logged without its message, never raised
        return "<str() failed>"
    return printable(redact(text, *secrets), 500)


def _failed(hook: EventHook, kind: str, e: Exception, secrets: tuple[str, ...]) -> None:
    # The message only, masked: a hook's error is the caller's, but it must not carry the
    # key into the log (no traceback: its frames' locals are not rendered, its lines
    # are; the hook's name and the error say where to look). Logging it never raises:
    # a hook's failure is ignored, whatever its name or its message do.
    try:
        name = printable(_hook_name(hook), 200)
    except Exception:
        name = "<unnamed>"
    logger.warning(
        "stripe_sessions: %s hook %s raised %s: %s (ignored; the call goes on)",
        kind,
        name,
        type(e).__name__,
        _message(e, secrets),
    )


def call_hooks(
    hooks: tuple[EventHook, ...], kind: str, event: object, secrets: tuple[str, ...]
) -> list[Any]:
    """Call each hook with ``event``; return the awaitables they returned, to be awaited.

    A hook that raises is logged (``stripe_sessions`` logger, WARNING) and skipped.
    """
    secrets = masked_secrets(secrets)  # a local a hook's traceback shows: no key in its repr
    pending: list[Any] = []
    for hook in hooks:
        try:
            result = hook(event)
        except Exception as e:
            _failed(hook, kind, e, secrets)
            continue
        except BaseException:  # KeyboardInterrupt...: what earlier hooks returned, closed
            close_hooks(pending)
            raise
        if inspect.isawaitable(result):
            pending.append((hook, kind, result))
    return pending


async def await_hooks(pending: list[Any], secrets: tuple[str, ...]) -> None:
    """Await what async hooks returned, in order; one that raises is logged and skipped."""
    secrets = masked_secrets(secrets)  # a local a hook's traceback shows: no key in its repr
    for i, (hook, kind, awaitable) in enumerate(pending):
        try:
            await awaitable
        except Exception as e:
            _failed(hook, kind, e, secrets)
        except BaseException:  # cut (a cancel, a timeout): the rest are closed, not leaked
            close_hooks(pending[i + 1 :])
            raise


def close_hooks(pending: list[Any]) -> None:
    """Close hook coroutines that will not be awaited (their call was cut first)."""
    for _, _, awaitable in pending:
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
