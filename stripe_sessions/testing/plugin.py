"""pytest plugin (registered through the ``pytest11`` entry point): fixtures backed by FakeStripe.

``fake_stripe`` serves from a background thread, so one fixture works for sync
and async tests alike::

    async def test_checkout(fake_stripe):
        async with ss.AsyncClient(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as s:
            await s.customer_sessions.create(customer="cus_1", components=...)
        assert fake_stripe.created == 1

pytest imports this module at every start-up of every run in the environment, so it
imports nothing heavy: the fake (and aiohttp) load when a test first asks for it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ._fake import FakeStripe

__all__ = ["fake_stripe"]


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """A fresh FakeStripe on 127.0.0.1, served from a thread, for one test."""
    from ._fake import FakeStripe  # noqa: PLC0415 - lazy: see the module docstring

    with FakeStripe.running() as fake:
        yield fake
