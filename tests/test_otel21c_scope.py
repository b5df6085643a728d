"""A call's span ends and is exported whatever its pending ``retry`` hooks do at its end.

A call that ends after a retry decision awaits the retry hooks no attempt followed,
then ends its span: a hook raising a ``BaseException``, or a cancel while it is
awaited, left the span open (never exported) and its context attached. And an attempt
is counted (``stripe.attempts``) once its request hooks let it go out, not before.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from opentelemetry import context

import stripe_sessions as ss
from stripe_sessions._observe.events import check_event_hooks
from stripe_sessions._observe.observer import observer_for
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.observe_support import installed


class Stop(BaseException):
    """Not an Exception: a hook's ``KeyboardInterrupt``, a framework's stop type..."""


class Failed(Exception):
    """What ended the call (not a cancel: its pending hooks are awaited)."""


async def _noop(event: Any) -> None:
    pass


def _observer() -> Any:
    observer = observer_for(
        check_event_hooks({"retry": [_noop]}),
        True,
        base_url="http://127.0.0.1:1",
        secrets=("sk_test_x",),
        stripe_account=None,
        stripe_version="2026-01-01",
    )
    assert observer is not None
    assert observer.active()  # a provider is set: the telemetry is made
    return observer


_OPTIONS = SimpleNamespace(idempotency_key="k1", stripe_account=None)


async def _call(observer: Any, hook: Any) -> None:
    async with observer.create(_OPTIONS) as call:
        call.pending.append((_noop, "retry", hook()))
        raise Failed


async def _stopping() -> None:
    raise Stop


async def test_a_hook_raising_a_base_exception_still_ends_the_span() -> None:
    with installed() as otel:
        before = context.get_current()
        with pytest.raises(Stop):
            await _call(_observer(), _stopping)
        assert context.get_current() == before  # its context detached
        (span,) = otel.spans()
    assert span.name == "customer_sessions.create"
    assert span.attributes["error.type"] == f"{__name__}.Stop"
    assert span.status.is_ok is False


async def test_a_cancel_while_a_hook_is_awaited_still_ends_the_span() -> None:
    started = asyncio.Event()

    async def blocking() -> None:
        started.set()
        await asyncio.Event().wait()

    with installed() as otel:
        task = asyncio.ensure_future(_call(_observer(), blocking))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        (span,) = otel.spans()
    assert span.attributes["error.type"] == "asyncio.CancelledError"
    assert span.attributes["stripe.attempts"] == 0


async def test_a_call_cut_while_its_request_hook_is_awaited_counts_no_attempt(
    fake_stripe: FakeStripe,
) -> None:
    started = asyncio.Event()

    async def blocking(event: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    with installed() as otel:
        hooks = {"request": [blocking]}
        client = ss.AsyncClient(
            api_key=fake_stripe.api_key, base_url=fake_stripe.url, event_hooks=hooks
        )
        async with client:
            task = asyncio.ensure_future(
                client.customer_sessions.create(customer="cus_1", components=PRICING)
            )
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        (span,) = otel.spans()
    assert fake_stripe.requests == []  # nothing was sent
    assert span.attributes["stripe.attempts"] == 0
    assert span.attributes["error.type"] == "asyncio.CancelledError"
