"""Closing the client while a batch waits to retry ends the batch at once (redteam19).

README ("Closing with calls in flight"): "A batch ends at once: what it was sending ends
as above, nothing more is sent, and create_many/stream_many raise ClientClosedError
carrying batch_key". A batch item's retries are the batch's own (the transport makes
one attempt), so an item waiting between attempts, or the whole batch paused after a
``rate_limit`` 429 (``Retry-After`` honoured up to 60 s), is no call in flight: the
close does not cut it, and ``create_many`` goes on waiting the whole wait after
``aclose(grace=0)`` returned, then raises. The same on the code before the redesign
(1a21e24): not a regression.

The wait here is 60 s; a batch that ends at once ends in milliseconds, so the
``wait_for`` bound below only tells a hang from an answer.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

import stripe_sessions as ss
from stripe_sessions._http import retry as _retry
from stripe_sessions._http.retry import RetryPolicy
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING

#: Far longer than a batch that ends at once takes, far shorter than the 60 s wait.
BOUND = 20.0


class _Retrying(logging.Handler):
    """Set when the SDK logs its first retry (the wait starts right after)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.logged = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("retrying"):
            self.logged.set()


@pytest.mark.parametrize("wait", ["429 pause", "retry wait"])
async def test_closing_the_client_ends_a_waiting_batch_at_once(
    monkeypatch: pytest.MonkeyPatch, wait: str
) -> None:
    policy = RetryPolicy(initial_wait=0.001, max_wait=60.0, pause=1.0, max_pause=60.0)
    monkeypatch.setattr(_retry, "DEFAULT_POLICY", policy)
    handler = _Retrying()
    logger = logging.getLogger("stripe_sessions")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        async with FakeStripe() as fake:
            if wait == "429 pause":
                fake.fail_next(429, code="rate_limit", headers={"Retry-After": "60"})
            else:
                fake.fail_next(503, headers={"Retry-After": "60"})
            client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
            batch = asyncio.create_task(
                client.customer_sessions.create_many(
                    [{"customer": f"cus_{i}", "components": PRICING} for i in range(3)],
                    concurrency=1,
                    rate_limit=None,
                    batch_key="closing",
                )
            )
            await asyncio.wait_for(handler.logged.wait(), BOUND)
            await client.aclose(grace=0)
            with pytest.raises(ss.ClientClosedError) as info:
                await asyncio.wait_for(batch, BOUND)
            assert info.value.batch_key == "closing"
            assert len(fake.requests) == 1  # nothing more was sent
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
