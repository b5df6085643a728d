"""Shared fixtures: a FakeStripe on 127.0.0.1 per test, a client bound to it, fast retries."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions import _retry
from stripe_sessions.testing import FakeStripe

pytest_plugins = ["pytester"]

FIXTURES = Path(__file__).parent / "fixtures"

PRICING = {"pricing_table": {"enabled": True}}


def as_form(value: Any) -> Any:
    """What a server decodes from an encoded value: every scalar as its string."""
    if isinstance(value, dict):
        return {k: as_form(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_form(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fixture_json(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep Stripe's retry rules but shrink the waits so the suite stays quick."""
    monkeypatch.setattr(_retry, "INITIAL_DELAY", 0.001)
    monkeypatch.setattr(_retry, "MAX_DELAY", 0.005)
    monkeypatch.setattr(_retry, "MAX_RETRY_AFTER", 0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as server:
        yield server


@pytest.fixture
def fake_thread() -> Iterator[FakeStripe]:
    """A FakeStripe serving from its own thread, for tests of the sync client."""
    with FakeStripe.running() as fake:
        yield fake


@pytest.fixture
async def client(fake: FakeStripe) -> AsyncIterator[ss.AsyncClient]:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        yield c


class Api:
    """Drives either client from an async test (the sync one from a worker thread)."""

    def __init__(self, kind: str, fake: FakeStripe) -> None:
        self.kind = kind
        self.fake = fake
        if kind == "async":
            self.client: Any = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
        else:
            self.client = ss.Client(api_key=fake.api_key, base_url=fake.url)

    async def call(self, name: str, *args: Any, **kwargs: Any) -> Any:
        method = getattr(self.client.customer_sessions, name)
        if self.kind == "async":
            if name == "stream_many":
                return [r async for r in method(*args, **kwargs)]
            return await method(*args, **kwargs)
        if name == "stream_many":
            return await asyncio.to_thread(lambda: list(method(*args, **kwargs)))
        return await asyncio.to_thread(method, *args, **kwargs)

    async def close(self) -> None:
        if self.kind == "async":
            await self.client.aclose()
        else:
            await asyncio.to_thread(self.client.close)

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@pytest.fixture(params=["async", "sync"])
def kind(request: pytest.FixtureRequest) -> str:
    """Run a test once with AsyncClient and once with the generated sync Client."""
    return str(request.param)


@pytest.fixture
async def api(kind: str, fake: FakeStripe) -> AsyncIterator[Api]:
    api = Api(kind, fake)
    yield api
    await api.close()
