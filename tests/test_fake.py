"""FakeStripe as a server, spoken to with raw aiohttp: Stripe's shapes, rules and faults."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, FaultMix
from tests.helpers import fixture_json

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    fake: FakeStripe,
    params: dict[str, Any] | str,
    *,
    key: str | None = None,
    auth: str | None = None,
    path: str = "/v1/customer_sessions",
) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers["Authorization"] = auth if auth is not None else f"Bearer {fake.api_key}"
    if key:
        headers["Idempotency-Key"] = key
    body = params if isinstance(params, str) else encode(params)
    async with http.post(fake.url + path, data=body, headers=headers) as resp:
        return resp.status, await resp.json(), resp.headers


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:".encode()).decode()


def keys_of(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: keys_of(v) for k, v in value.items() if not isinstance(v, list)}
    return None


async def test_session_body_has_the_shape_of_stripes(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, body, headers = await post(http, fake, GOOD)
    assert status == 200
    assert headers["Request-Id"].startswith("req_")
    example = fixture_json("customer_session.json")
    assert keys_of(body) == keys_of(example)
    assert body["client_secret"].startswith("cuss_secret_")
    assert body["expires_at"] - body["created"] == 1800
    assert body["components"]["pricing_table"] == {"enabled": True}


async def test_expanded_customer_has_the_shape_of_stripes(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await post(http, fake, {**GOOD, "expand": ["customer"]})
    assert status == 200
    example = fixture_json("customer_session.expanded_customer.json")["customer"]
    assert set(body["customer"]) == set(example)
    assert body["customer"]["id"] == "cus_1"


async def test_each_session_is_unique(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    secrets = {(await post(http, fake, GOOD))[1]["client_secret"] for _ in range(20)}
    assert len(secrets) == 20
    assert fake.created == 20


async def test_unknown_parameter_like_stripe(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    params = {
        **GOOD,
        "components": {"bogus": {"enabled": True}, "pricing_table": {"enabled": True}},
    }
    status, body, _ = await post(http, fake, params)
    example = fixture_json("error.unknown_parameter.json")["error"]
    assert status == 400
    for field in ("code", "message", "param", "type", "doc_url"):
        assert body["error"][field] == example[field]


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"customer": "cus_1"}, "components", "parameter_missing"),
        (
            {**GOOD, "components": {"pricing_table": {"enabled": False}}},
            "components",
            "parameter_invalid",
        ),
        (
            {**GOOD, "components": {"pricing_table": {}}},
            "components[pricing_table]",
            "parameter_invalid",
        ),
        (
            {**GOOD, "components": {"pricing_table": {"enabled": "maybe"}}},
            "components[pricing_table][enabled]",
            "parameter_invalid_boolean",
        ),
        (
            {
                **GOOD,
                "components": {
                    "payment_element": {"enabled": True, "features": {"payment_method_save": "on"}}
                },
            },
            "components[payment_element][features][payment_method_save]",
            "parameter_invalid",
        ),
        (
            {
                **GOOD,
                "components": {
                    "payment_element": {
                        "enabled": True,
                        "features": {"payment_method_redisplay_limit": "x"},
                    }
                },
            },
            "components[payment_element][features][payment_method_redisplay_limit]",
            "parameter_invalid_integer",
        ),
        (
            {
                **GOOD,
                "components": {
                    "customer_sheet": {
                        "enabled": True,
                        "features": {"payment_method_allow_redisplay_filters": ["never"]},
                    }
                },
            },
            "components[customer_sheet][features][payment_method_allow_redisplay_filters][0]",
            "parameter_invalid",
        ),
        ({"components": {"pricing_table": {"enabled": True}}}, "customer", "parameter_missing"),
        ({**GOOD, "colour": "red"}, "colour", "parameter_unknown"),
        ({**GOOD, "customer": "x" * 5001}, "customer", "parameter_invalid"),
    ],
)
async def test_validation_names_the_param(
    fake: FakeStripe, http: aiohttp.ClientSession, params: dict[str, Any], param: str, code: str
) -> None:
    status, body, _ = await post(http, fake, params)
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == param
    assert body["error"]["code"] == code
    assert fake.created == 0


async def test_malformed_form_is_a_400(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    status, body, _ = await post(http, fake, "customer=c&customer[x]=1")
    assert status == 400
    assert "Invalid request body" in body["error"]["message"]


@pytest.mark.parametrize(
    ("auth", "shown"),
    [
        ("", "You did not provide an API key"),
        ("Basic abc", "Invalid API Key provided: ****"),
        ("Bearer pk_test_0123456789abcdef", "Invalid API Key provided: pk_test_****cdef"),
        ("Bearer sk_test_", "Invalid API Key provided: sk_test_****"),
        ("Token sk_test_0123456789abcdef", "Invalid API Key provided: ****"),
        ("Bearer nonsense", "Invalid API Key provided: ****"),
    ],
)
async def test_bad_authorization_is_a_401_masked_like_stripe(
    fake: FakeStripe, http: aiohttp.ClientSession, auth: str, shown: str
) -> None:
    status, body, _ = await post(http, fake, GOOD, auth=auth)
    example = fixture_json("error.authentication.json")["error"]
    assert status == 401
    assert body["error"]["type"] == example["type"]
    assert body["error"]["message"].startswith(shown)
    assert "0123456789ab" not in body["error"]["message"]
    assert fake.created == 0


@pytest.mark.parametrize("key", ["sk_live_0123456789abcdef", "rk_live_0123456789abcdef"])
async def test_live_keys_are_refused_with_a_message_saying_why(
    fake: FakeStripe, http: aiohttp.ClientSession, key: str
) -> None:
    status, body, _ = await post(http, fake, GOOD, auth=f"Bearer {key}")
    assert status == 401
    message = body["error"]["message"]
    assert "test-mode keys only" in message
    assert f"{key[:8]}****cdef" in message and "0123456789ab" not in message
    assert fake.created == 0


@pytest.mark.parametrize(
    "key", ["sk_test_123", "sk_test_1", "rk_test_0123456789abcdef", "sk_test_" + "x" * 200]
)
async def test_any_test_key_of_any_length_is_accepted(
    fake: FakeStripe, http: aiohttp.ClientSession, key: str
) -> None:
    status, body, _ = await post(http, fake, GOOD, auth=f"Bearer {key}")
    assert status == 200, body
    assert fake.created == 1


async def test_basic_auth_with_the_key_as_user_name(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    # What `curl -u sk_test_123:` sends.
    status, _, _ = await post(http, fake, GOOD, auth=basic("sk_test_123"))
    assert status == 200
    status, body, _ = await post(http, fake, GOOD, auth=basic("sk_live_0123456789abcdef"))
    assert status == 401 and "test-mode keys only" in body["error"]["message"]
    assert fake.created == 1


def test_recorded_request_repr_masks_the_key() -> None:
    with FakeStripe.running() as fake:
        request = urllib.request.Request(
            fake.url + "/v1/customer_sessions",
            data=encode(GOOD).encode(),
            headers={"Authorization": "Bearer sk_test_0123456789abcdef"},
        )
        with urllib.request.urlopen(request) as resp:
            assert resp.status == 200
        recorded = fake.requests[0]
    assert recorded.headers["Authorization"] == "Bearer sk_test_0123456789abcdef"
    assert "0123456789ab" not in repr(recorded)
    assert "'Authorization': 'Bearer sk_test_****cdef'" in repr(recorded)


async def test_other_paths_and_methods_are_404(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await post(http, fake, GOOD, path="/v1/customers")
    assert status == 404
    assert "Unrecognized request URL (POST: /v1/customers)" in body["error"]["message"]
    async with http.get(fake.url + "/v1/customer_sessions") as resp:
        assert resp.status == 404
        assert resp.headers["Request-Id"].startswith("req_")


async def test_idempotent_replay(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    _, first, h1 = await post(http, fake, GOOD, key="k1")
    status, second, h2 = await post(http, fake, GOOD, key="k1")
    assert status == 200
    assert second == first
    assert h2["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in h1
    assert fake.created == 1


async def test_idempotency_conflict_like_stripe(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    await post(http, fake, GOOD, key="k2")
    status, body, _ = await post(http, fake, {**GOOD, "customer": "cus_2"}, key="k2")
    assert status == 400
    assert body["error"]["type"] == fixture_json("error.idempotency.json")["error"]["type"]
    assert "'k2'" in body["error"]["message"]
    assert fake.created == 1


async def test_key_in_flight_is_a_409(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(latency=0.3) as fake:
        results = await asyncio.gather(
            post(http, fake, GOOD, key="k3"), post(http, fake, GOOD, key="k3")
        )
        statuses = sorted(r[0] for r in results)
        assert statuses == [200, 409]
        conflict = next(r for r in results if r[0] == 409)
        assert conflict[1]["error"]["type"] == "idempotency_error"
        assert fake.created == 1


async def test_rate_limit_answers_429_like_stripe_without_retry_after(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeStripe(rate_limit=5) as fake:
        results = await asyncio.gather(*(post(http, fake, GOOD) for _ in range(15)))
        limited = [r for r in results if r[0] == 429]
        assert 5 <= len(limited) <= 11
        example = fixture_json("error.rate_limit.json")["error"]
        for _, body, headers in limited:
            assert body["error"]["type"] == example["type"] == "invalid_request_error"
            assert body["error"]["code"] == example["code"] == "rate_limit"
            assert body["error"]["message"] == example["message"]
            assert "Retry-After" not in headers
        assert fake.created == 15 - len(limited)
        fake.fail_next(429)
        status, _, headers = await post(http, fake, GOOD)
        assert status == 429 and "Retry-After" not in headers


async def test_retry_after_is_an_option(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(rate_limit=1, retry_after=2.5) as fake:
        got = [await post(http, fake, GOOD) for _ in range(3)]
        assert [g[0] for g in got] == [200, 429, 429]
        assert all(g[2]["Retry-After"] == "2.5" for g in got[1:])
        fake.fail_next(429, headers={"Retry-After": "7"})
        assert (await post(http, fake, GOOD))[2]["Retry-After"] == "7"
    with pytest.raises(ValueError, match="retry_after"):
        FakeStripe(retry_after=float("nan"))


async def test_unknown_customers_are_resource_missing_when_customers_are_given(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeStripe(customers=["cus_1"]) as fake:
        assert (await post(http, fake, GOOD))[0] == 200
        status, body, _ = await post(http, fake, {**GOOD, "customer": "cus_missing"})
        example = fixture_json("error.invalid_request.json")["error"]
        assert status == 400
        for field in ("type", "code", "param", "message", "doc_url"):
            assert body["error"][field] == example[field], field
        fake.add_customer("cus_missing")
        assert (await post(http, fake, {**GOOD, "customer": "cus_missing"}))[0] == 200
        assert fake.created == 2


async def test_every_customer_exists_by_default_until_one_is_added(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    assert fake.customers is None
    assert (await post(http, fake, {**GOOD, "customer": "cus_anything"}))[0] == 200
    fake.add_customer("cus_1")
    assert (await post(http, fake, {**GOOD, "customer": "cus_anything"}))[0] == 400
    assert (await post(http, fake, GOOD))[0] == 200


@pytest.mark.parametrize(
    ("status", "code", "fixture"),
    [(429, "lock_timeout", "error.lock_timeout.json"), (500, None, "error.api_error.json")],
)
async def test_injected_errors_have_stripes_bodies(
    fake: FakeStripe, http: aiohttp.ClientSession, status: int, code: str | None, fixture: str
) -> None:
    fake.fail_next(status, code=code)
    got, body, _ = await post(http, fake, GOOD)
    example = fixture_json(fixture)["error"]
    assert got == status
    assert body["error"]["type"] == example["type"]
    assert body["error"].get("code") == example.get("code")
    assert fake.created == 0


async def test_seeded_fault_mix_is_reproducible(http: aiohttp.ClientSession) -> None:
    mix = FaultMix(server_error=0.3, conflict=0.2)
    seen = []
    for _ in range(2):
        async with FakeStripe(faults=mix, seed=42) as fake:
            for _ in range(30):
                await post(http, fake, GOOD)
            seen.append([r.status for r in fake.requests])
    assert seen[0] == seen[1]
    assert {500, 502, 503, 409} & set(seen[0])
    assert 200 in seen[0]


async def test_requests_are_recorded(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    await post(http, fake, {**GOOD, "expand": ["customer"]}, key="rec")
    rec = fake.requests[-1]
    assert (rec.method, rec.path, rec.status) == ("POST", "/v1/customer_sessions", 200)
    assert rec.form == {
        "components": {"pricing_table": {"enabled": "true"}},
        "customer": "cus_1",
        "expand": ["customer"],
    }
    assert rec.idempotency_key == "rec"
    assert fake.session_keys == ["rec"]
    fake.reset()
    assert fake.requests == [] and fake.sessions == []


def test_thread_backed_fake_serves_sync_code() -> None:
    with FakeStripe.running() as fake:
        req = urllib.request.Request(
            fake.url + "/v1/customer_sessions",
            data=encode(GOOD).encode(),
            headers={"Authorization": f"Bearer {fake.api_key}"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read())["object"] == "customer_session"
        assert fake.created == 1
