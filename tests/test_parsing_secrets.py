"""A key or client secret the server JSON-escapes is masked as well as a plain one.

Masking runs on the server's text before it is decoded and on every string after: so
``sk\\u005ftest\\u005f...`` (any of its characters escaped, in any field, in keys of
objects too) never survives in ``str``, ``repr``, ``message``, ``body``, ``json_body``.
"""

from __future__ import annotations

import contextlib
import json
import random

import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._http.error_answer import error_from_response
from stripe_sessions._safe_text import redact, unescape_json
from tests.helpers import PRICING, examples
from tests.hostile import Hostile, serve

FIELDS = ("message", "type", "code", "param", "doc_url", "decline_code", "charge", "extra")


def escaped(text: str, chosen: list[bool]) -> str:
    """``text`` as JSON string content, each character whose ``chosen`` is true \\u-escaped."""
    out = []
    for char, escape in zip(text, chosen, strict=True):
        if escape:
            code = f"{ord(char):04x}"
            out.append("\\u" + (code.upper() if ord(char) % 2 else code))
        else:
            out.append(json.dumps(char)[1:-1])
    return "".join(out)


def error_body(secret_json: str, around: tuple[str, str]) -> bytes:
    """A Stripe error body with the (escaped) secret in every field, a key and a list."""
    before, after = (json.dumps(t)[1:-1] for t in around)
    value = f'"{before}{secret_json}{after}"'
    fields = ", ".join(f'"{name}": {value}' for name in FIELDS)
    return (
        f'{{"error": {{{fields}, "nested": {{"{secret_json}": [{value}, {{"x": {value}}}]}}}},'
        f' "echo": {value}}}'
    ).encode()


def assert_absent(secret: str, err: ss.StripeError) -> None:
    texts = [str(err), repr(err), str(err.message), str(err.body), str(err.json_body)]
    texts += [str(getattr(err, name)) for name in ("type", "code", "param", "doc_url")]
    texts += [str(dict(err.headers))]
    if err.body:
        with contextlib.suppress(ValueError):
            texts.append(str(json.loads(err.body)))  # the kept body, decoded once more
    for text in texts:
        assert secret not in text, text[:500]


_alnum = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=8)
_secrets = st.tuples(
    st.sampled_from(["sk_test_", "sk_live_", "rk_test_", "rk_live_", "cuss_secret_"]),
    _alnum.filter(lambda s: len(s) <= 60),
).map("".join)
_around = st.tuples(st.text(max_size=6), st.text(max_size=6))


@settings(max_examples=examples(300))
@given(secret=_secrets, seed=st.integers(0, 2**32), around=_around, known=st.booleans())
def test_an_escaped_secret_in_every_field_never_survives(
    secret: str, seed: int, around: tuple[str, str], known: bool
) -> None:
    rng = random.Random(seed)
    chosen = [rng.random() < 0.3 for _ in secret]
    body = error_body(escaped(secret, chosen), around)
    assert secret in str(json.loads(body))  # the server really sent it
    for status in (400, 401, 402, 403, 404, 409, 429, 500, 502):
        err = error_from_response(
            status,
            {"Request-Id": "req_1", "X-Echo": secret},
            body,
            idempotency_key="k",
            secrets=(secret,) if known else (),
        )
        assert_absent(secret, err)


@given(text=st.text(max_size=200))
def test_unescaping_keeps_json_the_same(text: str) -> None:
    """The text masked is the same JSON: it decodes to the same value, escaped or not."""
    for dumped in (json.dumps(text), json.dumps(text, ensure_ascii=False)):
        assert json.loads(unescape_json(dumped)) == text
    assert json.loads(unescape_json(json.dumps({text: [text]}))) == {text: [text]}


@pytest.mark.parametrize(
    "text",
    [
        "token_sk_live_abcdef123456",
        "sk_live_abcdef123456_suffix",
        "Bearer sk_test_abcdef123456",
        "xsk_test_abcdef123456",
    ],
)
def test_a_key_glued_to_other_text_is_masked(text: str) -> None:
    assert "abcdef123456" not in redact(text)


@pytest.mark.parametrize("text", ["sk_test_****1234", "Invalid API Key provided: sk_live_***abcd"])
def test_a_masked_key_stays_as_stripe_wrote_it(text: str) -> None:
    assert redact(text) == text


KEY = "sk_test_parsingsecrets0123456789"


async def test_the_reported_401_with_an_escaped_key_end_to_end() -> None:
    escaped_key = KEY.replace("_", "\\u005f")
    body = (
        '{"error": {"type": "invalid_request_error", '
        f'"message": "Invalid API Key provided: {escaped_key}"}}}}'
    )

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=401, text=body, content_type="application/json")

    hostile = Hostile()
    hostile.default = handler
    async with serve(hostile) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            with pytest.raises(ss.AuthenticationError) as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert_absent(KEY, info.value)
    assert_absent("parsingsecrets0123456789", info.value)
    assert "Invalid API Key provided: ****" in str(info.value)


def test_masking_after_decoding_alone_catches_what_the_text_pass_cannot() -> None:
    """A secret the exact-match pass cannot see in the text is masked once decoded."""
    secret = 'pa"ss_word'  # a proxy password with a quote: escaped as pa\\"ss in JSON
    body = json.dumps({"error": {"message": f"proxy said {secret}"}}).encode()
    err = error_from_response(407, {}, body, idempotency_key="k", secrets=(secret,))
    assert secret not in str(err) and secret not in str(err.json_body)
