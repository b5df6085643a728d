"""Shared fixtures: a FakeStripe on 127.0.0.1 per test, a client bound to it, fast retries."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
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
async def client(fake: FakeStripe) -> AsyncIterator[ss.AsyncClient]:
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
        yield c
