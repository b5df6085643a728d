"""Observer: what a create, a batch and each attempt do when someone observes them.

A client has one when it has ``event_hooks`` or may trace (``tracing`` on and
``opentelemetry`` importable); otherwise ``Transport.observer`` is None and the
request path checks that one attribute and nothing more. The API is loaded, and the
client's :class:`Telemetry` made, the first time a call finds that the application has
imported it (:meth:`Observer.active`): a client built before OpenTelemetry is configured
is traced all the same, and one never traced never imports it.

A logical call (a create, a batch item) opens a :class:`Call` scope when :meth:`Observer.active`
(hooks, or a provider set): its ``INTERNAL`` span, made current, and a :data:`CALL` context
variable the attempts and retry decisions below it find. An attempt outside one is not observed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from .events import (
    Hooks,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    await_hooks,
    call_hooks,
    close_hooks,
    masked_secrets,
)
from .otel import Telemetry, available, error_type, imported, load, named_provider
from .spans import end_attempt, outcome_of, start_attempt

__all__ = ["CALL", "Call", "Observer", "observer_for", "retried"]

T = TypeVar("T")
R = TypeVar("R")

#: The name of a create's span (and of a batch item's).
CREATE: Final = "customer_sessions.create"


class Call:
    """One logical call being observed: its span, its attempts so far, hooks to await."""

    __slots__ = ("attempts", "observer", "pending", "request", "span")

    def __init__(self, observer: Observer, span: Any) -> None:
        self.observer = observer
        self.span = span
        self.attempts = 0
        #: The last attempt's request (what a retry event describes).
        self.request: Any = None
        #: What async ``retry`` hooks returned: awaited before the next attempt.
        self.pending: list[Any] = []


class _Shown:
    """What an attempt's span is told of its request: its URL, the client's secrets masked."""

    __slots__ = ("url",)

    def __init__(self, url: str) -> None:
        self.url = url


#: The logical call the running task is in, if it is observed.
CALL: ContextVar[Call | None] = ContextVar("stripe_sessions_call", default=None)


def retried(failure: BaseException, attempt: int, wait: float) -> None:
    """A retry decision (``_http/retry.py``): told to the observed call it belongs to, if any."""
    call = CALL.get()
    if call is not None and call.request is not None:
        call.observer.retried(call, failure, attempt, wait)


class Observer:
    """One client's hooks and telemetry, and the scopes and attempts it observes."""

    def __init__(
        self,
        hooks: Hooks,
        tracing: bool,
        *,
        base_url: str,
        secrets: tuple[str, ...],
        stripe_account: str | None,
        stripe_version: str,
    ) -> None:
        kinds = dict(hooks)
        self.hooked = bool(kinds)
        self.on_request = kinds.get("request", ())
        self.on_response = kinds.get("response", ())
        self.on_retry = kinds.get("retry", ())
        #: Made by :meth:`active` once the application has imported the API.
        self.telemetry: Telemetry | None = None
        #: Whether :attr:`telemetry` may still be made (``tracing`` on, not tried yet).
        self._untried = tracing
        #: Its repr shows none of them: an error tracker rendering a frame's ``self``
        #: (its attributes too, as some do) never shows the key.
        self.secrets = masked_secrets(secrets)
        self._base_url = base_url
        self._base = len(base_url)
        self._account = stripe_account
        self._version = stripe_version

    def active(self) -> bool:
        """Whether a call started now is observed: hooks, or a tracer or meter provider set.

        Asked before every logical call (and batch) and before :attr:`telemetry` is read.
        """
        telemetry = self.telemetry
        if telemetry is None:
            if not (self._untried and imported()):
                return self.hooked
            telemetry = self.load()
            if telemetry is None:
                return self.hooked
        return telemetry.live() or self.hooked

    def load(self) -> Telemetry | None:
        """Import the API and make :attr:`telemetry` (once; None when the API cannot load)."""
        self._untried = False
        api = load()
        if api is not None:
            self.telemetry = Telemetry(api, self._base_url, self.secrets)
        return self.telemetry

    def create(self, options: Any, parent: Any = None, index: int | None = None) -> Scope:
        """The scope of one create, or batch item ``index`` (``async with``): its span,
        whose parent is ``parent`` (an OpenTelemetry context; else the current one)."""
        attributes: dict[str, Any] = {"stripe.idempotency_key": options.idempotency_key}
        account = options.stripe_account or self._account
        if account is not None:
            attributes["stripe.account"] = account
        if index is not None:
            attributes["stripe.batch.index"] = index
        return Scope(self, CREATE, attributes, parent)

    def _describe(self, request: Any, attempt: int) -> dict[str, Any]:
        options = request.options
        return {
            "method": "POST",
            "path": request.url[self._base :],
            "attempt": attempt,
            "idempotency_key": options.idempotency_key,
            "stripe_account": options.stripe_account or self._account,
            "api_version": options.stripe_version or self._version,
            "batch": options.batch,
        }

    async def attempt(self, send: Callable[[R], Awaitable[T]], request: R) -> T:
        """``send(request)``, one attempt, with its events, span and duration measured."""
        call = CALL.get()
        if call is None:  # not in an observed call: as if nobody looked
            return await send(request)
        attempt = call.attempts + 1
        call.request = request
        described = self._describe(request, attempt)
        if call.pending:
            pending, call.pending = call.pending, []
            await await_hooks(pending, self.secrets)
        if self.on_request:
            pending = call_hooks(
                self.on_request, "request", RequestEvent(**described), self.secrets
            )
            if pending:  # async hooks' awaitables (no coroutine made for none)
                await await_hooks(pending, self.secrets)
        call.attempts = attempt  # counted only now: one cut in its hooks sent nothing
        telemetry = self.telemetry if call.span is not None else None
        span = token = None
        if telemetry is not None:
            # The URL the span shows: the base masked with this client's secrets, then the path.
            shown = _Shown(telemetry.url_base + described["path"])
            span, token = start_attempt(telemetry, shown, described)
        failure: BaseException | None = None
        answer: Any = None
        start = time.perf_counter()
        try:
            answer = await send(request)
        except BaseException as e:  # CancelledError too: its span ends with error.type
            failure = e
        elapsed = time.perf_counter() - start
        outcome = outcome_of(answer, failure, self.secrets)
        if telemetry is not None:
            end_attempt(telemetry, span, token, described, outcome, failure, elapsed)
        if self.on_response:
            event = ResponseEvent(**described, **outcome, elapsed=elapsed)
            pending = call_hooks(self.on_response, "response", event, self.secrets)
            if pending:
                await await_hooks(pending, self.secrets)
        if failure is not None:
            raise failure
        return cast(T, answer)  # what send returned

    def retried(self, call: Call, failure: BaseException, attempt: int, wait: float) -> None:
        """Attempt ``attempt`` of ``call`` failed and is retried after ``wait`` seconds."""
        kind = error_type(failure)
        if call.span is not None:
            call.span.add_event(
                "stripe.retry",
                {"stripe.attempt": attempt, "stripe.wait": wait, "error.type": kind},
            )
        if self.on_retry:
            outcome = outcome_of(None, failure, self.secrets)
            del outcome["idempotent_replayed"]
            event = RetryEvent(**self._describe(call.request, attempt), **outcome, wait=wait)
            call.pending += call_hooks(self.on_retry, "retry", event, self.secrets)


class Scope:
    """``async with observer.call(...)``: one logical call's span and :data:`CALL`."""

    def __init__(self, observer: Observer, name: str, attributes: dict[str, Any], parent: Any):
        self.observer = observer
        self.name = name
        self.attributes = attributes
        self.parent = parent

    async def __aenter__(self) -> Call:
        telemetry = self.observer.telemetry
        span = self._token = None
        if telemetry is not None and telemetry.live():
            api = telemetry.api
            span = telemetry.tracer.start_span(
                self.name, self.parent, kind=api.INTERNAL, attributes=self.attributes
            )
            self._token = api.context.attach(api.trace.set_span_in_context(span))
        self.call = Call(self.observer, span)
        self._reset = CALL.set(self.call)
        return self.call

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        call = self.call
        CALL.reset(self._reset)
        try:
            if call.pending:  # retry hooks no attempt followed (the call was cut, or stopped)
                if isinstance(exc, asyncio.CancelledError):
                    close_hooks(call.pending)
                else:
                    await await_hooks(call.pending, self.observer.secrets)
        except BaseException as e:  # a hook's stop, a cancel while awaited: the span ends
            self._end(call, e)
            raise
        self._end(call, exc)

    def _end(self, call: Call, exc: BaseException | None) -> None:
        """End the call's span (if any) with what ended the call, and detach its context."""
        span = call.span
        if span is None:
            return
        telemetry = self.observer.telemetry
        assert telemetry is not None  # a span was made by it
        api = telemetry.api
        api.context.detach(self._token)
        span.set_attribute("stripe.attempts", call.attempts)
        if exc is not None:
            kind = error_type(exc)
            span.set_attribute("error.type", kind)
            span.set_status(api.ERROR, kind)
        span.end()


def observer_for(
    hooks: Hooks,
    tracing: bool,
    *,
    base_url: str,
    secrets: tuple[str, ...],
    stripe_account: str | None,
    stripe_version: str,
) -> Observer | None:
    """A client's observer, or None when nothing can observe it (the request path's check).

    Does not import OpenTelemetry (see :func:`.otel.available`), unless an environment
    variable names a provider: the API's getters load it, so it is loaded now.
    """
    tracing = tracing and available()
    if not hooks and not tracing:
        return None
    observer = Observer(
        hooks,
        tracing,
        base_url=base_url,
        secrets=secrets,
        stripe_account=stripe_account,
        stripe_version=stripe_version,
    )
    if tracing and named_provider():
        observer.load()
    return observer
