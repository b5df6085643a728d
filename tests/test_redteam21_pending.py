"""Red team (#21): async hooks a cut call will not await are closed, never left un-awaited.

A cancel or timeout while one async hook is awaited, or a hook that raises a
``BaseException`` after another returned its coroutine, must not leave the others'
coroutines for the garbage collector ("coroutine ... was never awaited").
"""

from __future__ import annotations

import asyncio
import gc
import warnings
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


class Stop(BaseException):
    """A hook's ``KeyboardInterrupt``, ``SystemExit``..."""


async def _slow(event: Any) -> None:
    await asyncio.sleep(30)


async def _quick(event: Any) -> None:
    pass


def _stop(event: Any) -> None:
    raise Stop


@pytest.mark.parametrize("kind", ["request", "response", "retry"])
@pytest.mark.parametrize(
    "hooks", [[_slow, _quick, _quick], [_quick, _quick, _stop]], ids=["cut", "stopped"]
)
async def test_no_hook_coroutine_is_left_unawaited(
    fake: FakeStripe, kind: str, hooks: list[Any]
) -> None:
    fake.fail_next(500)  # a retry event for "retry" hooks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with ss.AsyncClient(
            api_key=fake.api_key, base_url=fake.url, event_hooks={kind: hooks}
        ) as client:
            call = client.customer_sessions.create(customer="cus_1", components=PRICING)
            with pytest.raises((Stop, asyncio.TimeoutError)):
                await asyncio.wait_for(call, 0.3)
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
