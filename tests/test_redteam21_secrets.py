"""Red team (#21): whatever a hostile server answers, no key or client secret reaches telemetry.

A property over raw answers: any status, any header values (8 KB, non-UTF-8, the key
or a client secret glued anywhere, JSON-escaped in the body), retried once or not, in
a create and in a batch. Every hook event, span (name, status, attributes, events),
metric point and ``stripe_sessions`` log record is searched for the key and secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from typing import Any

import attrs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from tests.helpers import PRICING, examples
from tests.hostile_tcp import Conn, ScriptedServer
from tests.observe_support import installed

KEY = "sk_test_RedTeam21KeyABCDEFGHIJ0123"
SECRET = "cuss_secret_RedTeam21PlantedSecret_0123456789"
#: Anything shaped like a key or a client secret.
SHAPES = re.compile(r"(?:sk|rk)_(?:test|live)_[A-Za-z0-9]{4,}|cuss_secret_[A-Za-z0-9]")

_pieces = st.sampled_from([KEY, SECRET, "Bearer " + KEY, KEY[:8], "req_", "\u00e9", "x" * 300])
_text = st.lists(st.one_of(_pieces, st.text(max_size=8)), max_size=6).map("".join)


def _header_bytes(text: str) -> bytes:
    # Raw bytes: UTF-8 (so non-Latin-1 text arrives as non-UTF-8-decoded mojibake) minus
    # what would end the header line.
    return text.encode("utf-8").replace(b"\r", b"").replace(b"\n", b"").replace(b"\x00", b"")


@st.composite
def answers(draw: Any) -> bytes:
    status = draw(st.sampled_from([200, 400, 402, 429, 500, 503]))
    code, message = draw(_text), draw(_text)
    escaped = json.dumps(code).replace("_", "\\u005f")  # the key JSON-escaped
    body = draw(
        st.sampled_from(
            [
                json.dumps({"error": {"type": "api_error", "code": code, "message": message}}),
                '{"error": {"code": ' + escaped + ', "message": ' + escaped + "}}",
                json.dumps(
                    {"object": "customer_session", "client_secret": SECRET, "customer": code}
                ),
                message,
            ]
        )
    ).encode("utf-8", "surrogatepass")
    headers = [
        (
            b"Request-Id",
            _header_bytes(draw(_text)) + draw(st.sampled_from([b"", b"\xff\xfe", b"r" * 8000])),
        ),
        (b"Stripe-Rate-Limited-Reason", _header_bytes(draw(_text))),
        (b"Stripe-Should-Retry", draw(st.sampled_from([b"true", b"false"]))),
        (b"Idempotent-Replayed", draw(st.sampled_from([b"true", _header_bytes(draw(_text))]))),
        (b"Content-Type", b"application/json"),
    ]
    head = b"HTTP/1.1 %d %s\r\n" % (status, _header_bytes(draw(_text))[:200] or b"X")
    head += b"Content-Length: %d\r\n" % len(body)
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body


async def _run(script_answers: list[bytes]) -> list[str]:
    queue = list(script_answers)

    async def script(conn: Conn) -> None:
        while (await conn.read_request()) is not None:
            conn.write(queue.pop(0) if queue else b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n")

    events: list[Any] = []
    hooks = {"request": events.append, "response": events.append, "retry": events.append}
    seen: list[str] = []
    with installed() as otel:
        async with (
            ScriptedServer(script) as server,
            ss.AsyncClient(
                api_key=KEY, base_url=server.url, event_hooks=hooks, max_retries=1
            ) as client,
        ):
            with contextlib.suppress(ss.StripeError):
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
            with contextlib.suppress(ss.StripeError):
                await client.customer_sessions.create_many(
                    [{"customer": "cus_1", "components": PRICING}] * 2,
                    concurrency=1,
                    rate_limit=None,
                )
        for span in otel.spans():
            seen += [span.name, str(span.status.description)]
            seen += [f"{k}={v}" for k, v in (span.attributes or {}).items()]
            for event in span.events:
                seen += [event.name, *(f"{k}={v}" for k, v in (event.attributes or {}).items())]
        for point in otel.points():
            seen += [f"{k}={v}" for k, v in point.attributes.items()]
    for event in events:
        seen += [repr(event), *(str(v) for v in attrs.asdict(event).values())]
    assert events
    return seen


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(script=st.lists(answers(), min_size=1, max_size=4))
def test_no_secret_from_any_answer_reaches_telemetry_or_logs(script: list[bytes]) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger("stripe_sessions")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        seen = asyncio.run(_run(script))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    seen += [r.getMessage() for r in records]
    for text in seen:
        assert KEY not in text and SECRET not in text, text[:300]
        assert not SHAPES.search(text), text[:300]
        assert len(text) < 2100, text[:300]  # an 8 KB header is cut short everywhere
