"""Red team (#21): what ends a call inside a hook leaves no key in the traceback's locals.

A timeout or cancel while an async hook is awaited, or a ``BaseException`` a hook
raises, puts the SDK's hook-calling frames on the traceback an error tracker renders
with locals (Sentry, ``capture_locals``): none of them may show the API key.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.leaks import rendered

SHAPES = re.compile(r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{4,}")


class Stop(BaseException):
    """Not an Exception: a hook's ``KeyboardInterrupt``, ``SystemExit``..."""


def _stopping(event: Any) -> None:
    raise Stop


async def _slow(event: Any) -> None:
    await asyncio.sleep(30)


@pytest.mark.parametrize("kind", ["request", "response", "retry"])
@pytest.mark.parametrize("hook", [_stopping, _slow], ids=["raises", "timed-out"])
@pytest.mark.parametrize("batch", [False, True], ids=["create", "batch"])
async def test_no_key_in_the_locals_of_a_call_ended_in_a_hook(
    fake: FakeStripe, kind: str, hook: Any, batch: bool
) -> None:
    fake.fail_next(500)  # a retry event for "retry" hooks
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, event_hooks={kind: hook}
    ) as client:
        if batch:
            call = client.customer_sessions.create_many(
                [{"customer": "cus_1", "components": PRICING}], rate_limit=None
            )
        else:
            call = client.customer_sessions.create(customer="cus_1", components=PRICING)
        with pytest.raises((Stop, asyncio.TimeoutError)) as caught:
            await asyncio.wait_for(call, 0.3)
    text = rendered(caught.value)
    assert "_observe" in text  # the hook-calling frames are on it
    assert fake.api_key not in text
    assert not SHAPES.search(text), SHAPES.search(text)
