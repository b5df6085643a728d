"""FakeStripe's limits: hostile bodies answer a Stripe-shaped 400 quickly and stall no one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from stripe_sessions.testing import FakeStripe

NESTED_990KB = "components" + "[a]" * ((990_000 - 12) // 3) + "=1"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw_post(
    http: aiohttp.ClientSession, fake: FakeStripe, body: str | bytes, **headers: str
) -> tuple[int, Any, Any]:
    sent = {"Authorization": f"Bearer {fake.api_key}", **headers}
    async with http.post(fake.url + "/v1/customer_sessions", data=body, headers=sent) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_a_990kb_nested_body_is_a_stripe_400(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, body, headers = await raw_post(http, fake, NESTED_990KB)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "nested" in body["error"]["message"]
    assert headers["Request-Id"].startswith("req_")
