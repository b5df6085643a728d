"""No span attribute, span event, metric attribute or hook event holds a key or client secret.

Every path: success, retries, 4xx, 5xx, timeouts, connection errors, batches, against
FakeStripe's faults and a hostile server that echoes the key and client secrets into
every header, code and message it sends.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import stripe_sessions as ss
from stripe_sessions._observe.events import RequestEvent, ResponseEvent, RetryEvent
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, free_port
from tests.hostile_tcp import Conn, ScriptedServer, response
from tests.observe_support import Otel, installed

PLANTED = "cuss_secret_PLANTEDbyTheHostileServer0123456789"
#: Anything shaped like a key or a client secret, whoever's.
SHAPES = re.compile(r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{4,}|cuss_secret_\w+|Bearer")


@pytest.fixture
def otel() -> Iterator[Otel]:
    with installed() as sdk:
        yield sdk


def _everything(otel: Otel, events: list[Any]) -> list[str]:
    """Every string the exporters and hooks saw: names, attribute values, descriptions."""
    seen: list[str] = []
    for span in otel.spans():
        seen += [span.name, str(span.status.description)]
        seen += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
        for event in span.events:
            seen += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
    for point in otel.points():
        seen += [f"{k}={v}" for k, v in point.attributes.items()]
    for event in events:
        seen += [repr(event), *(str(v) for v in attrs.asdict(event).values())]
    return seen


def _assert_clean(seen: list[str], secrets: set[str]) -> None:
    assert seen
    for text in seen:
        assert not any(s in text for s in secrets), text
        assert not SHAPES.search(text), text


async def _hostile(conn: Conn) -> None:
    # Echo the key and a client secret into everything an answer can carry.
    while (request := await conn.read_request()) is not None:
        key = (request.header("Authorization") or "").removeprefix("Bearer ")
        echo = f"{key} {PLANTED}"
        headers = {
            "Request-Id": f"req_{key}",
            "Stripe-Rate-Limited-Reason": echo,
            "Stripe-Should-Retry": "false",
        }
        error = {"error": {"type": "invalid_request_error", "code": echo, "message": echo}}
        n = len(conn.server.requests)
        if n % 4 == 1:
            conn.write(response(429, error, headers, reason=echo))
        elif n % 4 == 2:
            conn.write(response(500, error, headers))
        elif n % 4 == 3:  # a 2xx whose session is not the one asked for
            body = {"object": "customer_session", "client_secret": PLANTED, "customer": key}
            conn.write(response(200, body, headers))
        else:
            conn.write(response(200, f"[{echo!r}]", {**headers, "Content-Type": "text/plain"}))


async def test_no_secret_on_any_path(fake: FakeStripe, otel: Otel) -> None:
    events: list[Any] = []
    hooks = {"request": events.append, "response": events.append, "retry": events.append}
    secrets = {fake.api_key, PLANTED}

    def client(url: str = fake.url, **settings: Any) -> ss.AsyncClient:
        return ss.AsyncClient(api_key=fake.api_key, base_url=url, event_hooks=hooks, **settings)

    async def create(c: ss.AsyncClient, **options: Any) -> None:
        try:
            session = await c.customer_sessions.create(
                customer="cus_1", components=PRICING, **options
            )
        except ss.StripeError:
            return
        secrets.add(session.client_secret)

    async with client() as c:
        await create(c)  # success
        fake.fail_next(500)
        fake.fail_next(429, code="lock_timeout")
        fake.reset_next(after_create=True)
        await create(c, max_retries=3)  # retried three ways, then created
        fake.fail_next(400, code="parameter_invalid_empty")
        await create(c)  # 4xx
        fake.fail_next(401)
        await create(c)
        fake.fail_next(429, reason="global-rate")
        await create(c)  # a rate_limit 429, raised
        fake.fail_next(503, times=3)
        await create(c)  # 5xx, retries exhausted
        fake.slow_next(5)
        await create(c, timeout=0.05, max_retries=0)  # a timeout
        fake.reset_next()
        await create(c, max_retries=0)  # a connection reset
        fake.fail_next(429, reason="endpoint-rate")
        fake.fail_next(500)
        fake.malformed_next()
        results = await c.customer_sessions.create_many(
            [{"customer": "cus_1", "components": PRICING}] * 4, concurrency=2, rate_limit=None
        )
        secrets.update(r.session.client_secret for r in results if r.session is not None)
    async with client(f"http://127.0.0.1:{free_port()}", max_retries=1) as c:
        await create(c)  # nothing listens
    async with ScriptedServer(_hostile) as server, client(server.url, max_retries=0) as c:
        for _ in range(4):
            await create(c)
        await c.customer_sessions.create_many(
            [{"customer": "cus_1", "components": PRICING}] * 4, concurrency=1, rate_limit=None
        )
    seen = _everything(otel, events)
    statuses = {e.status for e in events if hasattr(e, "status")}
    assert {None, 200, 400, 401, 429, 500, 503} <= statuses  # every path was taken
    assert {type(e) for e in events} == {RequestEvent, ResponseEvent, RetryEvent}
    assert {e.error_type for e in events if isinstance(e, ResponseEvent)} >= {
        "APIConnectionError", "APITimeoutError", "APIError", "RateLimitError"
    }  # fmt: skip
    assert len(otel.spans()) > 30
    _assert_clean(seen, secrets)
