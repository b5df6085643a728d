"""Red team (#21): a hook that fails in every way a caller's code can fail is logged, never raised.

The log line itself runs the caller's code (``str()`` of the error, the hook's
``__qualname__``): none of it may stop the call, put a key in the log, or forge lines.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._observe.events import RequestEvent, call_hooks
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, examples

KEY = "sk_test_REDTEAM21abcdefghijklmnop"
EVENT = RequestEvent(
    method="POST",
    path="/v1/customer_sessions",
    attempt=1,
    idempotency_key="k",
    stripe_account=None,
    api_version="v",
    batch=False,
)


class _StrRaises(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this error fails")


class _Named:
    """A callable whose ``__qualname__`` is hostile (not text, or raising)."""

    def __init__(self, qualname: Any, error: Exception) -> None:
        self.error = error
        self.qualname = qualname

    def __getattr__(self, name: str) -> Any:
        if name == "__qualname__":
            if isinstance(self.qualname, Exception):
                raise self.qualname
            return self.qualname
        raise AttributeError(name)

    def __call__(self, event: Any) -> None:
        raise self.error


def _errors() -> st.SearchStrategy[Exception]:
    text = st.text(max_size=50).map(lambda t: f"{t}{KEY}\n{t}")
    return st.one_of(
        st.just(_StrRaises()),
        text.map(ValueError),
        text.map(lambda t: RuntimeError(t * 200)),
    )


@settings(max_examples=examples(60), deadline=None)
@given(
    error=_errors(),
    qualname=st.one_of(st.text(max_size=30), st.none(), st.integers(), st.just(KeyError("x"))),
)
def test_a_failing_hook_never_stops_the_call_nor_leaks(error: Exception, qualname: Any) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("stripe_sessions")
    logger.addHandler(handler)
    try:
        calls: list[Any] = []
        pending = call_hooks((_Named(qualname, error), calls.append), "request", EVENT, (KEY,))
    finally:
        logger.removeHandler(handler)
    assert pending == [] and calls == [EVENT]  # the next hook ran
    (record,) = records
    line = record.getMessage()
    assert KEY not in line and "\n" not in line and len(line) < 1000


async def test_a_hook_whose_error_cannot_be_printed_on_a_real_call(fake: FakeStripe) -> None:
    def hook(event: Any) -> None:
        raise _StrRaises()

    hooks = {"request": hook, "response": hook, "retry": hook}
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, event_hooks=hooks) as c:
        fake.fail_next(500)
        session = await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert session.customer == "cus_1"


@pytest.mark.parametrize("kind", ["request", "response"])
async def test_an_async_hook_whose_error_cannot_be_printed(fake: FakeStripe, kind: str) -> None:
    async def hook(event: Any) -> None:
        raise _StrRaises()

    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, event_hooks={kind: hook}
    ) as c:
        session = await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert session.customer == "cus_1"
