"""OpenTelemetry: the spans and the duration histogram the SDK's in-memory exporters saw."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, until
from tests.observe_support import Otel, installed, tree

CREATE = "customer_sessions.create"
POST = "POST /v1/customer_sessions"


@pytest.fixture
def otel() -> Iterator[Otel]:
    with installed() as sdk:
        yield sdk


def _client(fake: FakeStripe, **settings: Any) -> ss.AsyncClient:
    return ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, **settings)


async def test_a_retried_create_is_one_span_over_its_attempts(fake: FakeStripe, otel: Otel) -> None:
    fake.fail_next(500)
    async with _client(fake, stripe_account="acct_9") as client:
        session = await client.customer_sessions.create(customer="cus_1", components=PRICING)
    spans = otel.spans()
    assert tree(spans).splitlines() == [
        f"{CREATE} (INTERNAL) stripe.attempts=2 [event stripe.retry attempt=1]",
        f"  {POST} (CLIENT) http.response.status_code=500 error.type=500",
        f"  {POST} (CLIENT) http.response.status_code=200 http.request.resend_count=1",
    ]
    create, (first, second) = spans[-1], spans[:2]
    key = fake.requests[0].idempotency_key
    assert create.attributes == {
        "stripe.idempotency_key": key, "stripe.account": "acct_9", "stripe.attempts": 2
    }  # fmt: skip
    assert first.status.status_code is StatusCode.ERROR and second.status.is_ok
    attributes = dict(second.attributes or {})
    assert attributes == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": int(fake.url.rsplit(":", 1)[1]),
        "url.full": f"{fake.url}/v1/customer_sessions",
        "url.template": "/v1/customer_sessions",
        "http.response.status_code": 200,
        "http.request.resend_count": 1,
        "stripe.request_id": session.request_id,
        "stripe.idempotency_key": key,
        "stripe.account": "acct_9",
        "stripe.api_version": client.config.stripe_version,
        "stripe.idempotent_replayed": False,
    }
    assert {s.kind for s in (first, second)} == {SpanKind.CLIENT}
    points = {p.attributes.get("http.response.status_code"): p for p in otel.points()}
    assert sorted(points) == [200, 500] and {p.count for p in points.values()} == {1}
    assert dict(points[500].attributes) == {
        "http.request.method": "POST",
        "server.address": "127.0.0.1",
        "server.port": int(fake.url.rsplit(":", 1)[1]),
        "url.template": "/v1/customer_sessions",
        "http.response.status_code": 500,
        "error.type": "500",
    }
    assert list(points[200].explicit_bounds)[:3] == [0.005, 0.01, 0.025]


async def test_the_callers_span_is_the_parent(fake: FakeStripe, otel: Otel) -> None:
    tracer = trace.get_tracer("test")
    async with _client(fake) as client:
        with tracer.start_as_current_span("caller") as caller:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    create = next(s for s in otel.spans() if s.name == CREATE)
    assert create.parent is not None and create.parent.span_id == caller.get_span_context().span_id


def test_the_sync_client_from_several_threads_keeps_each_callers_parent(
    fake_stripe: FakeStripe, otel: Otel
) -> None:
    tracer = trace.get_tracer("test")
    parents: dict[str, int] = {}

    def call(name: str) -> None:
        with tracer.start_as_current_span(name) as span:
            parents[name] = span.get_span_context().span_id
            client.customer_sessions.create(customer="cus_1", components=PRICING)

    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:
        threads = [threading.Thread(target=call, args=(f"t{i}",)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    spans = otel.spans()
    by_id = {s.context.span_id: s for s in spans}
    creates = [s for s in spans if s.name == CREATE]
    assert len(creates) == 4
    # each create's parent is the span its own thread started, and each attempt's is its create
    assert sorted(by_id[c.parent.span_id].name for c in creates if c.parent) == sorted(parents)
    for post in (s for s in spans if s.name == POST):
        assert post.parent is not None and by_id[post.parent.span_id].name == CREATE


async def test_a_cancelled_call_ends_its_spans_with_error_type(
    fake: FakeStripe, otel: Otel
) -> None:
    fake.slow_next(30)
    async with _client(fake) as client:
        task = asyncio.create_task(
            client.customer_sessions.create(customer="cus_1", components=PRICING)
        )
        await until(lambda: len(fake.requests) == 1, "the request")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    post, create = otel.spans()
    for span in (post, create):
        assert span.attributes is not None
        assert span.attributes["error.type"] == "asyncio.CancelledError"
        assert span.status.status_code is StatusCode.ERROR
    (point,) = otel.points()
    assert point.attributes["error.type"] == "asyncio.CancelledError"


async def test_tracing_off_by_argument_or_environment(
    fake: FakeStripe, otel: Otel, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _client(fake, tracing=False) as client:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    monkeypatch.setenv("STRIPE_SESSIONS_OTEL_ENABLED", "false")
    async with _client(fake) as client:
        assert client.config.tracing is False
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    async with _client(fake, tracing=True) as client:  # the argument wins
        assert client.config.tracing is True
    assert otel.spans() == [] and otel.points() == []


async def test_the_api_alone_makes_no_span(fake: FakeStripe) -> None:
    # opentelemetry-api installed, no provider set: the client has an observer that
    # stays idle (nothing would be kept), and the call is not observed.
    async with _client(fake) as client:
        observer = client._transport.observer
        assert observer is not None and not observer.active()
        await client.customer_sessions.create(customer="cus_1", components=PRICING)


async def test_no_doubling_with_the_aiohttp_instrumentation(fake: FakeStripe, otel: Otel) -> None:
    from opentelemetry.instrumentation.aiohttp_client import (  # noqa: PLC0415
        AioHttpClientInstrumentor,
    )

    instrumentor = AioHttpClientInstrumentor()
    instrumentor.instrument()
    try:
        async with _client(fake) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        traced = otel.spans()
        otel.exporter.clear()
        async with _client(fake, tracing=False) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        untraced = otel.spans()
    finally:
        instrumentor.uninstrument()
    assert [(s.name, s.kind) for s in traced] == [
        (POST, SpanKind.CLIENT),
        (CREATE, SpanKind.INTERNAL),
    ]
    # without the SDK's spans, the instrumentation's own span is there: it was suppressed
    assert [s.kind for s in untraced] == [SpanKind.CLIENT]
    assert "stripe.idempotency_key" not in (untraced[0].attributes or {})
    # and no traceparent went to Stripe from inside the SDK's attempt
    assert "traceparent" not in {h.lower() for h in fake.requests[0].headers}


async def test_a_batch_is_one_span_over_its_items(fake: FakeStripe, otel: Otel) -> None:
    params = [{"customer": f"cus_{i}", "components": PRICING} for i in range(3)]
    fake.fail_next(429, reason="global-rate")
    async with _client(fake) as client:
        first = await client.customer_sessions.create_many(params, concurrency=3, rate_limit=None)
        otel.exporter.clear()
        fake.fail_next(429, reason="global-rate")
        await client.customer_sessions.create_many(params, concurrency=3, rate_limit=None)
        retried = tree(otel.spans())
        otel.exporter.clear()
        again = await client.customer_sessions.create_many(params, batch_key=first[0].batch_key)
    assert all(r.ok for r in first + again)
    spans = otel.spans()
    (batch,) = (s for s in spans if s.name == "customer_sessions.batch")
    assert dict(batch.attributes or {}) == {
        "stripe.batch_key": first[0].batch_key,
        "stripe.batch.created": 0,
        "stripe.batch.replayed": 3,
        "stripe.batch.failed": 0,
        "stripe.batch.retried": 0,
    }
    items = [s for s in spans if s.name == CREATE]
    assert all(s.parent and s.parent.span_id == batch.context.span_id for s in items)
    assert sorted((s.attributes or {})["stripe.batch.index"] for s in items) == [0, 1, 2]
    lines = retried.splitlines()
    assert lines[0] == (
        "customer_sessions.batch (INTERNAL) stripe.batch.created=3 stripe.batch.replayed=0 "
        "stripe.batch.failed=0 stripe.batch.retried=1"
    )
    assert sum(line.startswith(f"  {CREATE} (INTERNAL)") for line in lines) == 3
    assert sum(line.startswith(f"    {POST} (CLIENT)") for line in lines) == 4
    assert sum("error.type=429" in line for line in lines) == 1
    assert sum("[event stripe.retry attempt=1]" in line for line in lines) == 1
    # every item's attempts are marked a batch's on the histogram too (low cardinality)
    assert {p.attributes["url.template"] for p in otel.points()} == {"/v1/customer_sessions"}


def test_a_sync_batch_is_a_child_of_the_callers_span(fake_stripe: FakeStripe, otel: Otel) -> None:
    tracer = trace.get_tracer("test")
    params = [{"customer": "cus_1", "components": PRICING}] * 2
    with ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url) as client:
        with tracer.start_as_current_span("caller") as caller:
            streamed = list(client.customer_sessions.stream_many(params, rate_limit=None))
    assert len(streamed) == 2
    (batch,) = (s for s in otel.spans() if s.name == "customer_sessions.batch")
    assert batch.parent is not None and batch.parent.span_id == caller.get_span_context().span_id
    assert len([s for s in otel.spans() if s.name == POST]) == 2
