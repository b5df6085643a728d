"""Error answers and the exceptions made of them, pinned where mutation testing
(``make mutate``) found them unpinned: what each field holds, how text is bounded.
"""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


async def _error(client: ss.AsyncClient) -> ss.StripeError:
    with pytest.raises(ss.StripeError) as info:
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    return info.value


def _card_declined(**fields: Any) -> dict[str, Any]:
    error = {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "insufficient_funds",
        "message": "Your card has insufficient funds.",
        "param": "payment_method",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
    }
    error.update(fields)
    return {"error": {k: v for k, v in error.items() if v is not None}}


async def test_a_card_error_carries_its_decline_code(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(402, body=_card_declined())
    error = await _error(client)
    assert type(error) is ss.CardError
    assert error.decline_code == "insufficient_funds"
    assert error.code == "card_declined"
    assert error.type == "card_error"
    assert error.param == "payment_method"
    assert error.doc_url == "https://stripe.com/docs/error-codes/card-declined"
    assert error.message == "Your card has insufficient funds."
    assert error.http_status == 402
    assert str(error) == (
        "Your card has insufficient funds. (HTTP 402, code=card_declined, "
        f"param=payment_method, request_id={error.request_id})"
    )


@pytest.mark.parametrize("decline_code", [None, 42, ["x"], {"a": 1}])
async def test_a_decline_code_that_is_not_text_is_none(
    client: ss.AsyncClient, fake: FakeStripe, decline_code: Any
) -> None:
    body = _card_declined()
    body["error"]["decline_code"] = decline_code
    fake.fail_next(402, body=body)
    error = await _error(client)
    assert type(error) is ss.CardError
    assert error.decline_code is None
    assert error.code == "card_declined"


async def test_every_short_field_is_bounded_and_printable(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    long = "x" * 500
    fake.fail_next(
        402,
        body=_card_declined(
            decline_code=long, code=long, param="p\x1b[31m", type=long, doc_url=long
        ),
    )
    error = await _error(client)
    for value in (error.decline_code, error.code, error.type, error.doc_url):
        assert value == "x" * 200 + "..."
    assert error.param == "p\\x1b[31m"


async def test_a_message_is_cut_at_1000_characters(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(400, body={"error": {"type": "invalid_request_error", "message": "m" * 5000}})
    error = await _error(client)
    assert error.message == "m" * 1000 + "..."
    assert ss.StripeError("n" * 1001).message == "n" * 1000 + "..."
    assert ss.StripeError("n" * 1000).message == "n" * 1000


async def test_an_error_without_a_message_names_the_status(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(403, body={"error": {"type": "invalid_request_error", "message": 7}})
    error = await _error(client)
    assert type(error) is ss.PermissionDeniedError
    assert error.message == "Stripe answered HTTP 403"


@pytest.mark.parametrize(
    ("body", "message", "kept"),
    [
        (
            b'{"error": {"type": "invalid_request_error", "message": "caf\xe9 \xff!"}}',
            "caf\ufffd \ufffd!",
            '{"error": {"type": "invalid_request_error", "message": "caf\ufffd \ufffd!"}}',
        ),
        (
            b"\xff\xfe<b>bad\xc3\x28 gateway</b>",
            "Stripe answered HTTP 400 with a body that is not a Stripe error: "
            "'\ufffd\ufffd<b>bad\ufffd( gateway</b>'",
            "\ufffd\ufffd<b>bad\ufffd( gateway</b>",
        ),
    ],
)
async def test_an_error_body_that_is_not_utf8_is_read_with_replacement_characters(
    client: ss.AsyncClient, fake: FakeStripe, body: bytes, message: str, kept: str
) -> None:
    fake.fail_next(400, body=body)
    error = await _error(client)
    assert type(error) is ss.InvalidRequestError
    assert error.message == message
    assert error.body == kept
    str(error).encode("utf-8")  # loggable by a UTF-8 handler
    repr(error).encode("utf-8")


async def test_an_empty_or_blank_body_says_so(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.fail_next(403, body=b" \r\n\t ")
    error = await _error(client)
    assert type(error) is ss.PermissionDeniedError
    assert error.message == "Stripe answered HTTP 403 with an empty body"
    assert error.json_body is None


async def test_a_json_body_that_is_not_a_stripe_error_is_kept_and_quoted(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(401, body={"error": "boom", "n": 1})
    error = await _error(client)
    assert type(error) is ss.AuthenticationError
    assert error.json_body == {"error": "boom", "n": 1}
    assert error.message == (
        "Stripe answered HTTP 401 with a body that is not a Stripe error: "
        """'{"error": "boom", "n": 1}'"""
    )
    assert error.type is None and error.code is None


async def test_a_long_body_is_quoted_in_200_characters_whitespace_folded(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(400, body="a  \n b " + "c" * 2000)
    error = await _error(client)
    quoted = ("a b " + "c" * 2000)[:200]
    assert (
        error.message
        == f"Stripe answered HTTP 400 with a body that is not a Stripe error: {quoted!r}"
    )


@pytest.mark.parametrize(
    ("status", "err_type", "code", "cls"),
    [
        (400, "idempotency_error", None, ss.IdempotencyError),
        (404, "idempotency_error", None, ss.IdempotencyError),
        (409, "idempotency_error", None, ss.APIError),
        (400, "invalid_request_error", "rate_limit", ss.RateLimitError),
        (404, "invalid_request_error", "rate_limit", ss.InvalidRequestError),
        (402, "invalid_request_error", None, ss.CardError),
        (401, "invalid_request_error", None, ss.AuthenticationError),
    ],
)
async def test_the_class_follows_status_type_and_code(
    client: ss.AsyncClient,
    fake: FakeStripe,
    status: int,
    err_type: str,
    code: str | None,
    cls: type[ss.StripeError],
) -> None:
    error_body: dict[str, Any] = {"type": err_type, "message": "no"}
    if code:
        error_body["code"] = code
    fake.fail_next(status, times=3, body={"error": error_body})
    error = await _error(client)
    assert type(error) is cls
    assert error.type == err_type


def test_str_lists_only_what_is_known() -> None:
    assert str(ss.StripeError("m")) == "m"
    assert str(ss.StripeError("m", http_status=0)) == "m (HTTP 0)"
    assert str(ss.StripeError("m", code="", param="", request_id="")) == "m"
    long = "z" * 300
    assert str(ss.StripeError("m", code=long, param=long, request_id=long)) == (
        f"m (code={'z' * 200}, param={'z' * 200}, request_id={'z' * 200})"
    )


def test_repr_names_the_class_and_the_identifying_fields() -> None:
    error = ss.CardError("no", http_status=402, code="card_declined", request_id="req_1")
    assert repr(error) == (
        "CardError(message='no', http_status=402, code='card_declined', request_id='req_1')"
    )


def test_an_error_pickles_with_every_attribute() -> None:
    error = ss.CardError(
        "no",
        http_status=402,
        type="card_error",
        code="card_declined",
        param="p",
        doc_url="d",
        decline_code="insufficient_funds",
        request_id="req_1",
        idempotency_key="k",
        headers={"Retry-After": "1"},
        body="{}",
        json_body={},
        should_retry=False,
        batch_key="b",
    )
    error.extra = "kept"  # type: ignore[attr-defined]
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is ss.CardError
    assert copy.args == ("no",)
    assert vars(copy) == vars(error)
    assert copy.headers["retry-after"] == "1"


def test_headers_are_a_case_insensitive_copy() -> None:
    given = {"Request-Id": "req_1"}
    error = ss.StripeError("m", headers=given)
    given["Request-Id"] = "changed"
    assert error.headers["request-id"] == "req_1"
    assert dict(ss.StripeError("m").headers) == {}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("0", 0.0),
        ("0.5", 0.5),
        ("2", 2.0),
        (" 3.25\t", 3.25),
        ("123456789012", 123456789012.0),
        ("1." + "5" * 9, float("1." + "5" * 9)),
        (None, None),
        ("", None),
        ("1234567890123", None),
        ("1." + "5" * 10, None),
        ("1.", None),
        (".5", None),
        ("-1", None),
        ("+1", None),
        ("inf", None),
        ("nan", None),
        ("1e3", None),
        ("1_0", None),
        ("\u0661", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("\n1", None),  # only blanks and tabs around the number are ignored
        ("1\r", None),
        ("\u00a01", None),
        ("X1X", None),
        (" " * 39 + "1", 1.0),
        (" " * 40 + "1", None),
    ],
)
def test_retry_after_is_plain_seconds_or_none(header: str | None, seconds: float | None) -> None:
    headers = {} if header is None else {"Retry-After": header}
    assert ss.RateLimitError("slow down", headers=headers).retry_after == seconds


# An API key the masking pattern cannot see (Stripe's keys are alphanumeric after the
# prefix; this one is not), so only the client's own list of secrets masks it.
ODD_KEY = "sk_test_a/b"


async def test_the_clients_own_key_is_masked_where_the_pattern_cannot_see_it(
    fake: FakeStripe,
) -> None:
    body = (
        b'{"error": {"type": "invalid_request_error", "message": "m", '
        b'"sk_test_a\\/b": ["x", "sk_test_abcdef", "cuss_secret_abc"]}}'
    )
    async with ss.AsyncClient(api_key=ODD_KEY, base_url=fake.url) as client:
        fake.fail_next(
            400, body=body, headers={"Request-Id": f"id {ODD_KEY}", "X-Echo": f"<{ODD_KEY}>"}
        )
        error = await _error(client)
    assert error.request_id == "id ****"
    assert error.headers["X-Echo"] == "<****>"
    assert error.json_body == {
        "error": {
            "type": "invalid_request_error",
            "message": "m",
            "****": ["x", "sk_test_****", "<client secret>"],
        }
    }


async def test_json_escapes_are_written_as_themselves_where_json_allows(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    """A server's escaped text is kept unescaped (so a masked key cannot hide in escapes),
    except a quote, a backslash, a control character and a lone surrogate."""
    escaped = r"\u001f \u0020 \u0022 \u0023 \u005c \u005d \u005f \ud800 \udfff \ue000 \u00e9"
    body = '{"error": {"type": "invalid_request_error", "message": "ESCAPED"}}'
    body = body.replace("ESCAPED", escaped)
    fake.fail_next(400, body=body.encode())
    error = await _error(client)
    kept = r"\u001f" + "   " + r"\u0022" + " # " + r"\u005c" + " ] _ " + r"\ud800 \udfff"
    assert error.body == body.replace(escaped, kept + " \ue000 \u00e9")


@pytest.mark.parametrize(
    ("code", "kept"),
    [
        ("c" * 200, "c" * 200),  # at the limit: whole
        ("\x1b" + "c" * 196, "\\x1b" + "c" * 196),  # escaped to exactly the limit: whole
        ("\x1b" * 60, "\\x1b" * 50 + "..."),  # escaped beyond the limit: cut and marked
        ("café ü", "café ü"),  # printable text stays as it is
        ("café\x1b", "café\\x1b"),  # beside an unprintable character too
    ],
)
async def test_a_field_is_cut_only_beyond_its_limit_and_escaped_only_where_unprintable(
    client: ss.AsyncClient, fake: FakeStripe, code: str, kept: str
) -> None:
    fake.fail_next(
        400, body={"error": {"type": "invalid_request_error", "message": code, "code": code}}
    )
    error = await _error(client)
    assert error.code == kept


@pytest.mark.parametrize("cut", [False, True])
async def test_an_error_body_is_parsed_up_to_64_kib(
    client: ss.AsyncClient, fake: FakeStripe, cut: bool
) -> None:
    stripe_error = b'{"error": {"type": "invalid_request_error", "message": "m"}}'
    size = 64 * 1024 + (1 if cut else 0)
    fake.fail_next(400, body=stripe_error + b" " * (size - len(stripe_error)))
    error = await _error(client)
    if cut:  # the first 64 KiB would parse: the body is still not read as Stripe's error
        assert error.message.startswith("Stripe answered HTTP 400 with a body that is not")
        assert error.json_body is None
    else:
        assert error.message == "m"
        assert error.json_body == {"error": {"type": "invalid_request_error", "message": "m"}}


async def test_a_body_not_read_says_why_and_keeps_the_headers(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(400, headers={"Content-Encoding": "gzip"}, body=b"xx")
    error = await _error(client)
    assert error.message == (
        "Stripe answered HTTP 400 with a 'gzip'-encoded body although only identity "
        "encoding was asked for"
    )
    assert error.headers["Content-Encoding"] == "gzip"
    assert error.headers["Request-Id"] == error.request_id == fake.requests[-1].request_id


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"7"])
async def test_json_that_is_not_an_object_is_quoted_not_kept_as_json_body(
    client: ss.AsyncClient, fake: FakeStripe, body: bytes
) -> None:
    fake.fail_next(400, body=body)
    error = await _error(client)
    assert error.json_body is None
    assert error.body == body.decode()
    assert error.message == (
        f"Stripe answered HTTP 400 with a body that is not a Stripe error: {body.decode()!r}"
    )
    assert error.headers["Request-Id"] == error.request_id


async def test_the_quote_folds_whitespace_within_the_first_800_characters(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    fake.fail_next(400, body="a" + " " * 900 + "b")
    error = await _error(client)
    assert error.message == "Stripe answered HTTP 400 with a body that is not a Stripe error: 'a'"


async def test_a_stripe_error_keeps_its_headers(client: ss.AsyncClient, fake: FakeStripe) -> None:
    fake.fail_next(400, body=_card_declined(), headers={"X-Extra": "1"})
    error = await _error(client)
    assert error.headers["X-Extra"] == "1"
    assert error.headers["Request-Id"] == error.request_id


def test_an_error_carries_its_message_as_args_and_its_batch_key() -> None:
    error = ss.APIError("m", batch_key="b")
    assert error.args == ("m",)
    assert error.batch_key == "b"
    assert ss.APIError("m").batch_key is None
