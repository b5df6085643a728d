"""Property: no body, header, method or path makes FakeStripe answer 500 or hang.

Requests are written byte for byte on a raw socket (no client library between), so
bodies can hold any bytes, invalid UTF-8 and stray percent-escapes, and headers can be
huge or not ASCII.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, FormLimits
from stripe_sessions.testing._schema import request_schema
from tests.helpers import examples

GOOD = encode({"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"})
#: Small caps, so that random bodies reach them often.
LIMITS = FormLimits(max_body_bytes=16 * 1024, max_fields=40, max_depth=6)
#: Only ends a test that would otherwise hang; never met by a passing run.
HANG_GUARD = 60.0
ERROR_TYPES = {"api_error", "card_error", "idempotency_error", "invalid_request_error"}
#: What aiohttp's HTTP parser answers, before the fake sees a request it cannot frame.
PROTOCOL_STATUSES = {400, 413, 414, 431}

NAMES = [
    "components", "customer", "customer_account", "expand", "pricing_table", "buy_button",
    "payment_element", "customer_sheet", "mobile_payment_element", "features", "enabled",
    "payment_method_redisplay_limit", "payment_method_allow_redisplay_filters",
    "payment_method_save", "0", "1", "2", "", "00", "9" * 30,
]  # fmt: skip
VALUES = [
    "true", "false", "cus_1", "acct_1", "enabled", "disabled", "always", "limited", "3",
    "-1", "--5", "²", "٣", "9" * 25, "9" * 5000, "", "customer", "off_session",
]  # fmt: skip
ESCAPES = [
    "%", "%f", "%ff", "%C3%28", "%ED%A0%80", "%00", "%5B", "%5D", "+", "=", "&&", ";", "[", "]",
]  # fmt: skip


def leaves(schema: dict[str, Any], path: str) -> Iterator[str]:
    """Every parameter of the endpoint in bracket form (lists as ``[0]``, ``[1]``, ``[]``)."""
    kind = schema.get("type")
    if kind == "object" and "properties" in schema:
        for name, sub in schema["properties"].items():
            yield from leaves(sub, f"{path}[{name}]" if path else name)
    elif kind == "array":
        for index in ("[0]", "[1]", "[]"):
            yield from leaves(schema.get("items", {}), path + index)
    else:
        yield path


#: Real parameter names, so that odd values reach validation and the session builder.
LEAVES = sorted(set(leaves(request_schema(), "")))

names = st.one_of(st.sampled_from(NAMES), st.text(max_size=12))
tails = st.lists(
    st.one_of(names.map(lambda n: f"[{n}]"), st.sampled_from(["[", "]", "[]", "]["])), max_size=9
).map("".join)
keys = st.builds(str.__add__, names, tails)
values = st.one_of(st.sampled_from(VALUES), st.text(max_size=20))


def field(key: str, value: str, quoted: bool) -> bytes:
    if quoted:
        from urllib.parse import quote_plus  # noqa: PLC0415

        return f"{quote_plus(key, safe='[]')}={quote_plus(value)}".encode("utf-8", "surrogatepass")
    return f"{key}={value}".encode("utf-8", "surrogatepass")


pieces = st.one_of(
    st.builds(field, keys, values, st.booleans()),
    st.binary(max_size=40),
    st.sampled_from(ESCAPES).map(str.encode),
    st.builds(lambda f, n: b"&".join([f] * n), st.builds(field, keys, values, st.booleans()),
              st.integers(0, 120)),
    st.builds(field, st.sampled_from(LEAVES), values, st.booleans()),
    st.builds(field, st.sampled_from(LEAVES), values, st.booleans()),
    st.builds(lambda k, n: (k + "[a]" * n + "=1").encode(), names, st.integers(0, 3000)),
    st.builds(lambda n: b"expand[" + b"1" * n + b"]=customer", st.integers(0, 20_000)),
)  # fmt: skip
#: Every component enabled: a valid body, to which one or two odd parameters are added.
ALL_ENABLED = "&".join(leaf + "=true" for leaf in LEAVES if leaf.endswith("][enabled]"))
#: A valid request with real parameters set to odd values: reaches the session builder.
nearly_valid = st.builds(
    lambda parts: b"&".join([GOOD.encode(), ALL_ENABLED.encode(), *parts]),
    st.lists(
        st.builds(field, st.sampled_from(LEAVES), values, st.just(True)), min_size=1, max_size=2
    ),
)
bodies = st.one_of(
    nearly_valid,
    st.builds(
        lambda base, parts: b"&".join(([GOOD.encode()] if base else []) + parts),
        st.booleans(),
        st.lists(pieces, max_size=8),
    ),
)
idempotency_keys = st.one_of(
    st.none(), st.text(min_size=0, max_size=300).filter(lambda k: "\r" not in k and "\n" not in k)
)


def exchange(
    fake: FakeStripe, request: bytes, method: str = "POST"
) -> tuple[int, http.client.HTTPMessage, bytes]:
    """Write ``request`` on a fresh connection; the answer's status, headers and body."""
    with socket.create_connection((fake.host, fake.port), timeout=HANG_GUARD) as sock:
        # Answered (and closed) before the whole body was read: read that answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        return response.status, response.headers, response.read()


def header_line(name: bytes, value: bytes) -> bytes:
    return name + b": " + value + b"\r\n"


def check_answer(
    status: int, headers: http.client.HTTPMessage, payload: bytes, key: bytes | None
) -> None:
    assert status < 500, (status, payload[:300])
    event(f"status {status}{'' if headers.get('Request-Id') else ' (protocol)'}")
    if headers.get("Request-Id") is None:  # aiohttp's parser refused to frame it
        assert status in PROTOCOL_STATUSES, (status, payload[:300])
        return
    assert headers["Request-Id"].startswith("req_")
    assert headers.get_content_type() == "application/json"
    body: Any = json.loads(payload) if payload else None  # a HEAD's answer has no body
    if body is None:
        pass
    elif status == 200:
        assert body["object"] == "customer_session"
    else:
        assert status in {400, 401, 404, 409, 429}
        assert body["error"]["type"] in ERROR_TYPES
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    echoed = headers.get_all("Idempotency-Key") or []
    try:
        text = None if key is None else key.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        # http.client reads header bytes as latin-1: compare the bytes that went back.
        assert [e.encode("latin-1") for e in echoed] == [key], (echoed, key)
    else:
        assert echoed == []


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running(limits=LIMITS, max_records=100, max_idempotency_keys=100) as fake:
        yield fake


@settings(
    max_examples=examples(400),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(body=bodies, key=idempotency_keys)
def test_no_form_body_makes_the_fake_answer_500(
    fake: FakeStripe, body: bytes, key: str | None
) -> None:
    head = b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += header_line(b"Authorization", f"Bearer {fake.api_key}".encode())
    raw_key = None if key is None else key.encode("utf-8", "surrogatepass")
    if raw_key is not None:
        head += header_line(b"Idempotency-Key", raw_key)
    head += header_line(b"Content-Length", str(len(body)).encode())
    status, headers, payload = exchange(fake, head + b"\r\n" + body)
    # aiohttp strips the whitespace around a header value before the fake reads it.
    check_answer(status, headers, payload, None if raw_key is None else raw_key.strip(b" \t"))


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(leaf=st.sampled_from(LEAVES), value=values)
@example("components[payment_element][features][payment_method_redisplay_limit]", "--5")
@example("components[payment_element][features][payment_method_redisplay_limit]", "²")
def test_no_parameter_value_makes_the_fake_answer_500(
    fake: FakeStripe, leaf: str, value: str
) -> None:
    """One real parameter, any value, in an otherwise valid request: a 200 or a 400."""
    body = f"{GOOD}&{ALL_ENABLED}&".encode() + field(leaf, value, True)
    head = b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    head += header_line(b"Authorization", f"Bearer {fake.api_key}".encode())
    head += header_line(b"Content-Length", str(len(body)).encode())
    status, headers, payload = exchange(fake, head + b"\r\n" + body)
    check_answer(status, headers, payload, None)
    assert status in (200, 400)


#: Bytes aiohttp takes in a header value (no control characters but tab), any others rarely.
header_bytes = st.one_of(
    st.binary(max_size=60).map(lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F)),
    st.text(max_size=60).map(
        lambda t: bytes(c for c in t.encode("utf-8", "surrogatepass") if c >= 0x20 and c != 0x7F)
    ),
    st.integers(0, 12_000).map(lambda n: b"x" * n),
    st.sampled_from(
        [b"", b" ", b"Bearer", b"Bearer ", b"Basic !!!", b"Basic /w==", b"sk_test_1", b"\xff\xfe"]
    ),
    st.builds(
        bytes.__add__, st.sampled_from([b"Bearer sk_test_", b"Basic "]), st.binary(max_size=30)
    ),
    st.binary(max_size=20),
).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b""))
#: Mostly absent, so that most requests get past aiohttp's parser to the fake.
maybe_header = st.one_of(st.none(), st.none(), st.none(), header_bytes)
methods = st.one_of(
    st.sampled_from([b"POST", b"GET", b"PUT", b"DELETE", b"HEAD", b"OPTIONS", b"PATCH", b"X"]),
    st.binary(min_size=1, max_size=10).filter(lambda m: not set(m) & set(b" \r\n")),
)
paths = st.one_of(
    st.sampled_from([b"/v1/customer_sessions", b"/v1/customer_sessions/", b"/", b"*", b"//x"]),
    st.binary(max_size=60).map(lambda p: b"/" + bytes(c for c in p if c > 0x20 and c != 0x7F)),
    st.integers(0, 10_000).map(lambda n: b"/v1/" + b"%ff" * n),
)


@settings(
    max_examples=examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    method=st.one_of(st.just(b"POST"), st.just(b"POST"), st.just(b"POST"), methods),
    path=st.one_of(st.just(b"/v1/customer_sessions"), paths),
    authorization=maybe_header,
    version=maybe_header,
    account=maybe_header,
    key=maybe_header,
    content_type=st.one_of(st.none(), header_bytes, st.just(b"application/json")),
    good_auth=st.booleans(),
)
# Found by this test: b64decode's ValueError on non-ASCII (was a 500), and a request target
# no route takes (aiohttp's plain-text 404, not Stripe's).
@example(b"POST", b"/v1/customer_sessions", b"Basic \x80", None, None, None, None, False)
@example(b"OPTIONS", b"*", None, None, None, None, None, True)
def test_no_header_method_or_path_makes_the_fake_answer_500(
    fake: FakeStripe,
    method: bytes,
    path: bytes,
    authorization: bytes | None,
    version: bytes | None,
    account: bytes | None,
    key: bytes | None,
    content_type: bytes | None,
    good_auth: bool,
) -> None:
    head = method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    if good_auth:
        authorization = f"Bearer {fake.api_key}".encode()
    for name, value in (
        (b"Authorization", authorization),
        (b"Stripe-Version", version),
        (b"Stripe-Account", account),
        (b"Idempotency-Key", key),
        (b"Content-Type", content_type),
    ):
        if value is not None:
            head += header_line(name, value)
    body = GOOD.encode()
    head += header_line(b"Content-Length", str(len(body)).encode())
    status, headers, payload = exchange(fake, head + b"\r\n" + body, method.decode("latin-1"))
    assert payload or method == b"HEAD" or headers.get("Request-Id") is None
    # aiohttp strips the whitespace around a header value before the fake reads it.
    check_answer(status, headers, payload, None if key is None else key.strip(b" \t"))
