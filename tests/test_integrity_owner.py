"""An answer names the owner that was asked for, a real client secret, and the key's mode.

A raw-TCP server echoes the request's ``Idempotency-Key`` (so that check passes) and
answers a session whose ``customer``/``customer_account`` differ from what was asked
(null, the other field, another id, an expanded Customer with another id or none),
whose ``client_secret`` could never be one (an API key the SDK would hand to a browser,
whitespace, a newline, non-ASCII), or whose ``livemode`` is not the API key's mode.
Each is refused with an APIError that shows no secret; what Stripe would send is read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import stripe_sessions as ss
from tests.helpers import PRICING
from tests.hostile import session_body
from tests.hostile_tcp import Conn, Request, ScriptedServer, form_of, response
from tests.leaks import KEY, assert_clean, rendered

SECRET = "cuss_secret_OwnerCheck0123456789abcdefXYZ"


def sdk_rendered(error: BaseException) -> str:
    """``rendered(error)`` from the SDK's first frame on: this module's frames hold the
    key and the values under test as locals of their own."""
    tb = error.__traceback__
    while tb is not None and "/stripe_sessions/" not in tb.tb_frame.f_code.co_filename:
        tb = tb.tb_next
    return rendered(error.with_traceback(tb))


def answering(changes: dict[str, Any], echo: bool = True) -> Callable[[Conn], Awaitable[None]]:
    """A server answering the asked owner's session with ``changes``, its key echoed."""

    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            conn.write(answer(request, changes, echo))
            await conn.drain()

    return script


def answer(request: Request, changes: dict[str, Any], echo: bool) -> bytes:
    form = form_of(request)
    body = session_body(
        customer=form.get("customer"),
        customer_account=form.get("customer_account"),
        client_secret=SECRET,
        livemode=False,
    )
    if form.get("expand[0]") == "customer":
        body["customer"] = {"id": form["customer"], "object": "customer"}
    body.update(changes)
    headers = {"Request-Id": "req_1"}
    if echo:
        headers["Idempotency-Key"] = request.header("Idempotency-Key") or ""
    return response(200, json.dumps(body), headers)


async def create(
    changes: dict[str, Any], *, key: str = KEY, echo: bool = True, **asked: Any
) -> ss.CustomerSession:
    async with ScriptedServer(answering(changes, echo)) as server:
        async with ss.AsyncClient(api_key=key, base_url=server.url, max_retries=0) as client:
            return await client.customer_sessions.create(components=PRICING, **asked)


CUS = {"customer": "cus_123"}
ACCT = {"customer_account": "acct_123"}
EXPAND = {"customer": "cus_123", "expand": ["customer"]}

#: (what was asked, what the answer changes, what the refusal names)
OTHER_OWNERS = [
    (CUS, {"customer": None}, "customer null where 'cus_123'"),
    (CUS, {"customer": None, "customer_account": "acct_other"}, "customer null where"),
    (CUS, {"customer_account": "acct_other"}, "customer_account 'acct_other' where none"),
    (CUS, {"customer": "cus_other"}, "customer 'cus_other' where 'cus_123'"),
    (ACCT, {"customer": "cus_zzz"}, "customer 'cus_zzz' where none"),
    (ACCT, {"customer_account": None}, "customer_account null where 'acct_123'"),
    (ACCT, {"customer_account": None, "customer": "cus_zzz"}, "customer 'cus_zzz'"),
    (ACCT, {"customer_account": "acct_other"}, "customer_account 'acct_other'"),
    (EXPAND, {"customer": {"id": "cus_other", "object": "customer"}}, "customer 'cus_other'"),
]


@pytest.mark.parametrize("customer", [{"object": "customer"}, {"id": None}, {"id": 123}])
async def test_an_expanded_customer_without_a_string_id_is_refused(
    customer: dict[str, Any],
) -> None:
    with pytest.raises(ss.APIError, match="could not read") as info:
        await create({"customer": customer}, **EXPAND)
    assert_clean(sdk_rendered(info.value))


@pytest.mark.parametrize(("asked", "changes", "named"), OTHER_OWNERS)
async def test_a_session_for_another_owner_is_refused(
    asked: dict[str, Any], changes: dict[str, Any], named: str
) -> None:
    with pytest.raises(ss.APIError, match="Refused an answer to another request") as info:
        await create(changes, **asked)
    assert named in str(info.value)
    assert info.value.should_retry
    assert_clean(sdk_rendered(info.value))
    assert SECRET not in sdk_rendered(info.value)


@pytest.mark.parametrize(
    "asked", [CUS, ACCT, EXPAND, {"customer": "cus_123", "customer_account": "acct_123"}]
)
@pytest.mark.parametrize("echo", [True, False], ids=["echoed", "no-echo"])
async def test_the_asked_owners_session_is_read(asked: dict[str, Any], echo: bool) -> None:
    # A missing Idempotency-Key echo is accepted: proxies may strip headers.
    session = await create({}, echo=echo, **asked)
    assert session.client_secret == SECRET
    assert session.customer_account == asked.get("customer_account")
    customer = session.customer
    assert (customer if customer is None or isinstance(customer, str) else customer.id) == (
        asked.get("customer")
    )


NOT_SECRETS = [
    KEY,
    "sk_test_A_SECRET_KEY_NOT_A_SESSION",
    "rk_live_0123456789abcdefXYZ",
    "pk_test_0123456789",
    "cuss_secret_",
    "cuss_secret_ with space",
    "cuss_secret_abc\ndef",
    "cuss_secret_abc\tdef",
    "cuss_secret_abc\x7f",
    "cuss_secret_\u00e9t\u00e9",
    " cuss_secret_abc",
    "cuss_secret_abc\r\n",
    "CUSS_SECRET_abc",
]


@pytest.mark.parametrize("secret", NOT_SECRETS)
async def test_a_client_secret_that_is_not_one_is_refused(secret: str) -> None:
    with pytest.raises(ss.APIError, match="client_secret: expected a client secret") as info:
        await create({"client_secret": secret}, **CUS)
    text = sdk_rendered(info.value)
    assert_clean(text)
    assert secret.strip() not in text
    assert info.value.idempotency_key is not None


@pytest.mark.parametrize(
    ("key", "livemode"),
    [
        (KEY, True),
        ("rk_test_0123456789abcdefXYZ", True),
        ("sk_live_0123456789abcdefXYZ", False),
        ("rk_live_0123456789abcdefXYZ", False),
    ],
)
async def test_a_session_of_the_other_mode_is_refused(key: str, livemode: bool) -> None:
    with pytest.raises(ss.APIError, match="Refused an answer to another request") as info:
        await create({"livemode": livemode}, key=key, **CUS)
    assert f"livemode {str(livemode).lower()} where a" in str(info.value)
    assert key not in sdk_rendered(info.value)


@pytest.mark.parametrize(("key", "livemode"), [(KEY, False), ("sk_live_0123456789abcdefXYZ", True)])
async def test_a_session_of_the_keys_mode_is_read(key: str, livemode: bool) -> None:
    assert (await create({"livemode": livemode}, key=key, **CUS)).livemode is livemode
