"""Two faults the #21 red team found outside the observability modules.

- A batch item that raised a BaseException that is not a cancellation (a hook's, a
  framework's own stop type) ended its worker silently: ``create_many`` returned short,
  the item neither a result nor an error.
- The transport's DEBUG log line showed the request URL unmasked: an API key in the base
  URL's path (a gateway's URL) was logged.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


class Stop(BaseException):
    """A stop type that is not an Exception (as some frameworks have)."""


def _stop(event: Any) -> None:
    raise Stop


@pytest.mark.parametrize("kind", ["request", "response"])
async def test_a_batch_raises_an_items_base_exception(fake: FakeStripe, kind: str) -> None:
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, event_hooks={kind: _stop}
    ) as client:
        with pytest.raises(Stop):
            await client.customer_sessions.create_many(
                [{"customer": "cus_1", "components": PRICING}] * 3, rate_limit=None
            )


async def test_the_debug_log_masks_a_key_in_the_base_url(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    key = fake.api_key
    caplog.set_level(logging.DEBUG, logger="stripe_sessions")
    async with ss.AsyncClient(api_key=key, base_url=f"{fake.url}/{key}") as client:
        # The fake knows no such path: the answer is an error, and its line is logged.
        with contextlib.suppress(ss.StripeError):
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    lines = [r.getMessage() for r in caplog.records]
    assert any("POST" in line for line in lines), lines
    assert not any(key in line for line in lines)
