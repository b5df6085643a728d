"""The API key and client secrets never leak: not in str/repr, logs, cause chains, or locals.

Error trackers (Sentry's default), ``pytest --showlocals`` and
``TracebackException(capture_locals=True)`` render every local variable of every frame
of a traceback with ``repr``. Each error path is rendered that way here and grepped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

import stripe_sessions as ss
from tests.helpers import PRICING, free_port
from tests.hostile import Hostile, serve, session_body, trickle
from tests.leaks import KEY, SECRET, assert_clean, rendered


def json_answer(status: int, body: Any) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, text=json.dumps(body), content_type="application/json")

    return handler


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    async with serve(Hostile()) as server:
        yield server


@pytest.fixture(autouse=True)
def debug_logs(caplog: pytest.LogCaptureFixture) -> Any:
    """Every logger at DEBUG; after each test the captured records must hold no secret."""
    caplog.set_level(logging.DEBUG)
    yield
    assert_clean(caplog.text)


async def failure(url: str, **kwargs: Any) -> ss.StripeError:
    async with ss.AsyncClient(api_key=KEY, base_url=url, max_retries=1, **kwargs) as client:
        try:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        except ss.StripeError as e:
            return e
    raise AssertionError("no error")


async def test_http_error_whose_body_echoes_the_key_and_a_secret(hostile: Hostile) -> None:
    hostile.default = json_answer(
        502, {"proxy": f"upstream said Authorization: Bearer {KEY}, session {SECRET}"}
    )
    error = await failure(hostile.url)
    assert isinstance(error, ss.APIError) and error.http_status == 502
    assert "Bearer ****" in str(error) and "<client secret>" in str(error)
    assert_clean(rendered(error))


async def test_stripe_error_message_with_a_secret_is_redacted(hostile: Hostile) -> None:
    body = {"error": {"type": "invalid_request_error", "message": f"bad {SECRET} / {KEY}"}}
    hostile.default = json_answer(400, body)
    error = await failure(hostile.url)
    assert isinstance(error, ss.InvalidRequestError)
    assert_clean(rendered(error))


async def test_connection_error() -> None:
    error = await failure(f"http://127.0.0.1:{free_port()}")
    assert isinstance(error, ss.APIConnectionError)
    assert error.__cause__ is None and error.__context__ is None
    assert_clean(rendered(error))


async def test_timeout(hostile: Hostile) -> None:
    hostile.default = trickle
    error = await failure(hostile.url, timeout=0.3)
    assert isinstance(error, ss.APITimeoutError)
    assert_clean(rendered(error))


@pytest.mark.parametrize(
    "changes", [{"livemode": "yes"}, {"object": "customer"}, {"created": "now"}, {"customer": 7}]
)
async def test_unreadable_200_with_a_secret(hostile: Hostile, changes: dict[str, Any]) -> None:
    hostile.default = json_answer(200, session_body(client_secret=SECRET, **changes))
    error = await failure(hostile.url)
    assert isinstance(error, ss.APIError) and error.http_status == 200
    assert error.idempotency_key is not None  # the key that was sent, though generated
    assert_clean(rendered(error))


def unreadable_components() -> dict[str, Any]:
    # Built here, not in the test: a test frame's own locals are rendered too.
    body = session_body(client_secret=SECRET)
    body["components"] = dict(body["components"], pricing_table=["not", "an", "object"])
    return body


async def test_unreadable_components_after_success(hostile: Hostile) -> None:
    hostile.default = json_answer(200, unreadable_components())
    async with ss.AsyncClient(api_key=KEY, base_url=hostile.url) as client:
        session = await client.customer_sessions.create(customer="cus_1", components=PRICING)
    with pytest.raises(ss.APIError) as info:
        _ = session.components
    assert_clean(rendered(info.value))
    assert_clean(repr(session) + str(session))


async def test_batch_failures_and_fail_fast(hostile: Hostile) -> None:
    hostile.answers["cus_bad"] = json_answer(200, session_body(client_secret=SECRET, livemode=1))
    hostile.answers["cus_down"] = json_answer(503, {"echo": f"Bearer {KEY}"})
    items = [{"customer": c, "components": PRICING} for c in ("cus_ok", "cus_bad", "cus_down")]
    async with ss.AsyncClient(api_key=KEY, base_url=hostile.url) as client:
        results = await client.customer_sessions.create_many(items, max_retries=1)
        assert [r.ok for r in results] == [True, False, False]
        for r in results:
            assert_clean(repr(r))
            if r.error is not None:
                assert_clean(rendered(r.error))
        with pytest.raises(ss.StripeError) as info:
            await client.customer_sessions.create_many(items[1:2], fail_fast=True)
    assert_clean(rendered(info.value))


def test_client_and_config_reprs() -> None:
    client = ss.AsyncClient(api_key=KEY)
    assert_clean(repr(client) + repr(client.config) + repr(client.with_options(timeout=5)))
    sync = ss.Client(api_key=KEY)
    assert_clean(repr(sync))
    sync.close()
