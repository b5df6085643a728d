"""Any bytes in any header, on any status, end in a StripeError or are ignored.

The end-to-end tests answer from a raw TCP server on 127.0.0.1 that writes every byte
of the response itself, so no web framework cleans the headers on the way out.
The pure parsing functions (``parse_retry_after``, ``redirect_error``,
``error_from_response``) are also tried over arbitrary input.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import socketserver
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._errors import MAX_MESSAGE, parse_retry_after
from stripe_sessions._http.error_answer import error_from_response
from stripe_sessions._http.failures import redirect_error
from tests.helpers import PRICING, examples

FIXTURES = Path(__file__).parent / "fixtures"
SESSION = (FIXTURES / "customer_session.json").read_bytes()
CUSTOMER = json.loads(SESSION)["customer"]  # asked for, so that the answer is ours
KEY = "sk_test_parsing0123456789abcdef"

#: The headers the SDK reads (and a few it must not trip over).
READ = (
    "Location",
    "Retry-After",
    "Request-Id",
    "Stripe-Should-Retry",
    "Idempotent-Replayed",
    "Content-Length",
    "Content-Encoding",
    "Idempotency-Key",
    "Content-Type",
    "Transfer-Encoding",
    "Connection",
    "Stripe-Version",
)
STATUSES = (
    100,
    101,
    199,
    200,
    201,
    204,
    301,
    302,
    303,
    307,
    308,
    400,
    401,
    402,
    403,
    404,
    409,
    429,
    500,
    503,
)
#: Longest ``str(error)`` allowed: the message bound plus the suffix of short fields.
MAX_STR = MAX_MESSAGE + 1200


class RawServer(socketserver.ThreadingTCPServer):
    """Answers every request with the bytes in ``answer`` (the status line and all)."""

    daemon_threads = True
    allow_reuse_address = True
    answer = b""


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            while len(body) < length:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                body += chunk
            sock.sendall(self.server.answer)  # type: ignore[attr-defined]
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    server = RawServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def answer(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    """A whole HTTP/1.1 response, byte for byte; ``Content-Length`` only if not given."""
    lines = [b"HTTP/1.1 %d Whatever" % status]
    names = {name.lower() for name, _ in headers}
    if b"content-length" not in names and b"transfer-encoding" not in names:
        lines.append(b"Content-Length: %d" % len(body))
    lines += [name + b": " + value for name, value in headers]
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def body_for(status: int) -> bytes:
    if 200 <= status < 300:
        return SESSION
    return json.dumps(
        {"error": {"type": "api_error", "message": "nope", "code": "lock_timeout"}}
    ).encode()


def assert_well_formed(err: ss.StripeError, secrets: tuple[str, ...] = (KEY,)) -> None:
    """What every error from a server must be: bounded, printable, keyed, secret-free."""
    text, shown = str(err), repr(err)
    assert len(text) <= MAX_STR, len(text)
    assert len(shown) <= MAX_STR * 2, len(shown)
    text.encode("utf-8")  # no lone surrogate: a log handler writing UTF-8 must not fail
    assert text.isprintable(), text  # one line: no forged log record, no terminal escape
    shown.encode("utf-8")
    if err.request_id is not None:
        assert len(err.request_id) <= 300 and err.request_id.isprintable()
    assert err.idempotency_key
    assert isinstance(err.headers, Mapping)
    for value in err.headers.values():
        value.encode("utf-8")
    if isinstance(err, ss.RateLimitError):
        after = err.retry_after
        assert after is None or (math.isfinite(after) and after >= 0)
    for secret in secrets:
        assert secret not in text and secret not in shown
        assert secret not in str(err.body) and secret not in str(err.json_body)
        assert secret not in str(dict(err.headers))


async def create_against(url: str) -> ss.StripeError | ss.CustomerSession:
    async with ss.AsyncClient(api_key=KEY, base_url=url, max_retries=1) as client:
        try:
            return await client.customer_sessions.create(customer=CUSTOMER, components=PRICING)
        except ss.StripeError as e:
            return e


def run_create(server: RawServer, status: int, headers: list[tuple[bytes, bytes]]) -> Any:
    server.answer = answer(status, headers, body_for(status))
    url = f"http://127.0.0.1:{server.server_address[1]}"
    return asyncio.run(create_against(url))


# --- the reported examples -------------------------------------------------------------


def test_a_redirect_to_a_broken_ipv6_location_is_an_api_error(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 302, [(b"Location", b"http://[::1/login")])
    assert isinstance(outcome, ss.APIError), outcome
    assert outcome.http_status == 302
    assert "redirect" in str(outcome)
    assert_well_formed(outcome)


@pytest.mark.parametrize(
    "location",
    [b"http://[::1/login", b"http://[zz]/", b"http://h\xff\xfe/x", b"http://a:b@h:99999/", b""],
)
def test_redirect_error_reads_any_location(location: bytes) -> None:
    value = location.decode("utf-8", "surrogateescape")
    err = redirect_error(302, {"Location": value}, "key_1")
    assert isinstance(err, ss.APIError)
    assert_well_formed(err, ())


def test_a_huge_request_id_is_bounded(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 500, [(b"Request-Id", b"req_" + b"a" * 8000)])
    assert isinstance(outcome, ss.APIError)
    assert_well_formed(outcome)


def test_a_non_utf8_request_id_prints(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 429, [(b"Request-Id", b"req_caf\xe9\xff\x7f\x1b[31m")])
    assert isinstance(outcome, ss.RateLimitError)
    assert_well_formed(outcome)
    assert "\x1b" not in str(outcome)


def test_a_non_utf8_request_id_on_success_is_readable(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 200, [(b"Request-Id", b"req_\xff" + b"b" * 5000)])
    assert isinstance(outcome, ss.CustomerSession)
    assert outcome.request_id is not None and len(outcome.request_id) <= 300
    outcome.request_id.encode("utf-8")
    repr(outcome).encode("utf-8")


def test_stripes_own_request_id_is_kept_as_sent(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 200, [(b"Request-Id", b"req_AbC123xyz")])
    assert isinstance(outcome, ss.CustomerSession)
    assert outcome.request_id == "req_AbC123xyz"


def test_a_header_echoing_the_key_is_masked(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 502, [(b"X-Echo", b"Bearer " + KEY.encode())])
    assert isinstance(outcome, ss.APIError)
    assert_well_formed(outcome)


@pytest.mark.parametrize("value", ["inf", "nan", "-1", "1e400", "Infinity", "\u0661", "1_0"])
def test_retry_after_that_is_not_plain_seconds_is_ignored(value: str) -> None:
    assert parse_retry_after(value) is None


def test_retry_after_seconds_are_read() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("0") == 0.0


def test_a_huge_content_encoding_is_quoted_briefly(raw_server: RawServer) -> None:
    outcome = run_create(raw_server, 200, [(b"Content-Encoding", b"x" * 8000)])
    assert isinstance(outcome, ss.APIError)
    assert_well_formed(outcome)


def test_a_huge_error_message_is_bounded() -> None:
    body = json.dumps({"error": {"message": "m" * 60_000, "code": "c" * 5000, "param": "p" * 5000}})
    err = error_from_response(500, {}, body.encode(), idempotency_key="k")
    assert_well_formed(err, ())
    assert err.message is not None and len(err.message) <= MAX_MESSAGE


@pytest.mark.parametrize(
    "headers",
    [
        [(b"Idempotent-Replayed", b"\x00")],
        [(b"Content-Length", b"-1")],
        [(b"Content-Length", b"9" * 30)],
        [(b"Content-Length", b"2"), (b"Content-Length", b"3")],
    ],
)
def test_an_answer_that_is_not_valid_http_says_so_on_one_line(
    raw_server: RawServer, headers: list[tuple[bytes, bytes]]
) -> None:
    outcome = run_create(raw_server, 200, headers)
    assert isinstance(outcome, ss.APIConnectionError)
    assert "the answer was not valid HTTP" in str(outcome)
    assert_well_formed(outcome)


# --- properties ------------------------------------------------------------------------

_header_bytes = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=1000, max_size=9000),
    st.sampled_from(
        [
            b"http://[::1/login",
            b"inf",
            b"nan",
            b"-5",
            b"1e999",
            b"true",
            b"TRUE",
            b"gzip",
            b"identity, gzip",
            b"chunked",
            b"-1",
            b"99999999999999999999999",
            b"caf\xe9",
            b"\x00\x7f\x1b[2J",
            b"\xc3\x28",
            KEY.encode(),
        ]
    ),
)
_headers = st.lists(
    st.tuples(
        st.sampled_from(READ).map(str.encode) | st.binary(min_size=1, max_size=20), _header_bytes
    ),
    min_size=1,
    max_size=4,
)


@settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(status=st.sampled_from(STATUSES), headers=_headers)
@example(status=302, headers=[(b"Location", b"http://[::1/login")])
@example(status=429, headers=[(b"Retry-After", b"inf")])
@example(status=200, headers=[(b"Request-Id", b"\xff" * 8000)])
@example(status=101, headers=[(b"Content-Encoding", KEY.encode())])  # found under load
@example(status=200, headers=[(b"Content-Encoding", b"x" + KEY.encode())])
def test_any_header_bytes_on_any_status(
    raw_server: RawServer, status: int, headers: list[tuple[bytes, bytes]]
) -> None:
    outcome = run_create(raw_server, status, headers)
    if isinstance(outcome, ss.CustomerSession):
        assert 200 <= status < 300
        if outcome.request_id is not None:
            outcome.request_id.encode("utf-8")
            assert len(outcome.request_id) <= 300
        repr(outcome).encode("utf-8")
        return
    assert isinstance(outcome, ss.StripeError), repr(outcome)
    assert_well_formed(outcome)


_text = st.text(max_size=40) | st.text(min_size=2000, max_size=20_000)
_surrogates = st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))
_values = _text | _surrogates | st.sampled_from(["inf", "nan", "1e400", "-0", "3"])


@given(value=st.none() | _values)
def test_parse_retry_after_never_raises(value: str | None) -> None:
    after = parse_retry_after(value)
    assert after is None or (math.isfinite(after) and after >= 0)


@given(status=st.integers(300, 399), location=_values, request_id=st.none() | _values)
def test_redirect_error_never_raises(status: int, location: str, request_id: str | None) -> None:
    headers = {"Location": location}
    if request_id is not None:
        headers["Request-Id"] = request_id
    err = redirect_error(status, headers, "key_1")
    assert isinstance(err, ss.APIError)
    assert_well_formed(err, ())


_json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _text
_json = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)
_error_bodies = st.one_of(
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(
        st.sampled_from(["type", "code", "message", "param", "doc_url", "decline_code"]),
        _json,
    ).map(lambda e: json.dumps({"error": e}).encode()),
)


@given(
    status=st.integers(100, 999),
    headers=st.dictionaries(st.sampled_from(READ), _values, max_size=4),
    body=_error_bodies,
    unread=st.none() | st.text(max_size=30),
)
def test_error_from_response_never_raises(
    status: int, headers: dict[str, str], body: bytes, unread: str | None
) -> None:
    err = error_from_response(status, headers, body, idempotency_key="k", unread=unread)
    assert isinstance(err, ss.StripeError)
    assert err.http_status == status
    assert_well_formed(err, ())
