"""The control endpoint under /_fake/: faults, reset, customers, listings; bad input, a 400."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe
from tests.helpers import examples

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def fake() -> AsyncIterator[FakeStripe]:
    async with FakeStripe() as running:
        yield running


async def control(
    http: aiohttp.ClientSession, fake: FakeStripe, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    data = body if isinstance(body, (bytes, str)) or body is None else json.dumps(body)
    async with http.request(method, fake.url + "/_fake/" + path, data=data) as resp:
        assert resp.content_type == "application/json"
        return resp.status, await resp.json()


async def create(
    http: aiohttp.ClientSession, fake: FakeStripe, form: dict[str, Any] = GOOD, key: str = "k"
) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {fake.api_key}", "Idempotency-Key": key}
    data = encode(form)
    async with http.post(fake.url + "/v1/customer_sessions", data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_health_needs_no_key_and_is_not_recorded(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, body = await control(http, fake, "GET", "health")
    assert status == 200
    assert body == {
        "ok": True,
        "created": 0,
        "queued_faults": 0,
        "recorded_requests": 0,
        "strict_customers": False,
    }
    assert fake.requests == []


@pytest.mark.parametrize(
    ("fault", "status", "check"),
    [
        ({"kind": "status", "status": 503}, 503, lambda b, h: b["error"]["type"] == "api_error"),
        ({"kind": "server_error"}, 500, lambda b, h: b["error"]["type"] == "api_error"),
        (
            {"kind": "rate_limit", "reason": "endpoint-concurrency"},
            429,
            lambda b, h: (
                h["Stripe-Rate-Limited-Reason"] == "endpoint-concurrency"
                and b["error"]["code"] == "rate_limit"
                and "Retry-After" not in h
            ),
        ),
        (
            {"kind": "status", "status": 429, "reason": "resource-specific"},
            429,
            lambda b, h: h["Stripe-Rate-Limited-Reason"] == "resource-specific",
        ),
        (
            {"kind": "lock_timeout"},
            429,
            lambda b, h: (
                b["error"]["code"] == "lock_timeout" and "Stripe-Rate-Limited-Reason" not in h
            ),
        ),
        ({"kind": "conflict"}, 409, lambda b, h: b["error"]["type"] == "idempotency_error"),
        (
            {"kind": "status", "status": 402, "code": "card_declined"},
            402,
            lambda b, h: b["error"]["code"] == "card_declined",
        ),
    ],
    ids=["503", "server_error", "rate_limit", "429-reason", "lock_timeout", "409", "402"],
)
async def test_a_queued_fault_answers_the_next_request_then_it_succeeds(
    fake: FakeStripe, http: aiohttp.ClientSession, fault: Any, status: int, check: Any
) -> None:
    got, body = await control(http, fake, "POST", "faults", {**fault, "count": 2})
    assert got == 200 and body["queued_faults"] == 2
    for _ in range(2):
        answer = await create(http, fake)
        assert answer[0] == status and check(answer[1], answer[2]), answer
    assert (await create(http, fake))[0] == 200
    assert fake.created == 1


async def test_resets_slow_malformed_and_truncated_faults_reach_the_client(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    for fault in (
        {"kind": "reset_before"},
        {"kind": "reset_after"},
        {"kind": "malformed"},
        {"kind": "truncated"},
        {"kind": "slow", "seconds": 0.05},
    ):
        assert (await control(http, fake, "POST", "faults", fault))[0] == 200
    assert fake.queued_faults == 5
    for _ in range(2):
        with pytest.raises(aiohttp.ClientError):
            await create(http, fake, key="reset")
    assert fake.created == 1  # reset_after created it
    async with http.post(
        fake.url + "/v1/customer_sessions",
        data=encode(GOOD),
        headers={"Authorization": f"Bearer {fake.api_key}"},
    ) as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
    with pytest.raises(aiohttp.ClientError):
        await create(http, fake, key="cut")
    status, _, _ = await create(http, fake, key="slow")
    assert status == 200
    assert [r.fault for r in fake.requests] == [
        "reset_before", "reset_after", "malformed", "truncated", "slow"
    ]  # fmt: skip


async def test_the_sdk_retries_a_fault_queued_through_the_endpoint(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    await control(http, fake, "POST", "faults", {"kind": "status", "status": 502, "count": 1})
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
        session = await client.customer_sessions.create(
            customer="cus_1", components={"pricing_table": {"enabled": True}}
        )
    assert [r.status for r in fake.requests] == [502, 200]
    status, listed = await control(http, fake, "GET", "sessions")
    assert status == 200 and listed["created"] == 1
    assert listed["data"][-1]["session"]["client_secret"] == session.client_secret
    assert listed["data"][-1]["idempotency_key"] == fake.requests[0].idempotency_key


async def test_sessions_and_requests_are_bounded_and_newest_last(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    for i in range(5):
        assert (await create(http, fake, {**GOOD, "customer": f"cus_{i}"}, key=f"k{i}"))[0] == 200
    _, listed = await control(http, fake, "GET", "sessions?limit=3")
    assert [e["session"]["customer"] for e in listed["data"]] == ["cus_2", "cus_3", "cus_4"]
    assert [e["idempotency_key"] for e in listed["data"]] == ["k2", "k3", "k4"]
    _, requests = await control(http, fake, "GET", "requests?limit=2")
    assert [r["form"]["customer"] for r in requests["data"]] == ["cus_3", "cus_4"]
    assert all(
        r["status"] == 200 and r["path"] == "/v1/customer_sessions" for r in requests["data"]
    )
    assert "Authorization" not in json.dumps(requests)  # no key in the listing


async def test_reset_forgets_everything_but_the_customers(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(customers=["cus_1"]) as fake:
        await create(http, fake)
        await control(http, fake, "POST", "faults", {"kind": "server_error", "count": 3})
        status, body = await control(http, fake, "POST", "reset")
        assert status == 200
        assert (body["created"], body["queued_faults"], body["recorded_requests"]) == (0, 0, 0)
        assert (fake.created, fake.requests, fake.sessions, fake.queued_faults) == (0, [], [], 0)
        assert body["strict_customers"] is True and fake.customers == {"cus_1"}
        # The idempotency key was forgotten too: the same key creates again.
        assert (await create(http, fake))[2].get("Idempotent-Replayed") is None
        assert fake.created == 1


async def test_customers_added_through_the_endpoint_make_the_fake_strict(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    status, made = await control(http, fake, "POST", "customers", {})
    assert status == 200 and made["id"].startswith("cus_") and len(made["id"]) == 18
    assert (await control(http, fake, "POST", "customers", {"id": "cus_alice"}))[0] == 200
    assert fake.customers == {made["id"], "cus_alice"}
    assert (await create(http, fake, {**GOOD, "customer": "cus_alice"}, key="a"))[0] == 200
    assert (await create(http, fake, {**GOOD, "customer": made["id"]}, key="b"))[0] == 200
    status, body, _ = await create(http, fake, {**GOOD, "customer": "cus_bob"}, key="c")
    assert status == 400 and body["error"]["code"] == "resource_missing"
    assert body["error"]["message"] == "No such customer: 'cus_bob'"


async def test_control_can_be_turned_off(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(control=False) as fake:
        async with http.get(fake.url + "/_fake/health") as resp:
            assert resp.status == 404
            assert "Unrecognized request URL" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "words", "param"),
    [
        ("POST", "faults", {"kind": "explode"}, 400, "kind: must be one of status,", "kind"),
        ("POST", "faults", {}, 400, "kind: must be one of", "kind"),
        ("POST", "faults", {"kind": "status"}, 400, "status: must be an integer", "status"),
        ("POST", "faults", {"kind": "status", "status": 200}, 400, "from 400 to 599", "status"),
        ("POST", "faults", {"kind": "server_error", "status": 404}, 400, "from 500", "status"),
        ("POST", "faults", {"kind": "conflict", "count": 0}, 400, "count: must be", "count"),
        ("POST", "faults", {"kind": "conflict", "count": True}, 400, "count: must be", "count"),
        ("POST", "faults", {"kind": "conflict", "count": 1.5}, 400, "count: must be", "count"),
        ("POST", "faults", {"kind": "conflict", "cout": 2}, 400, "unknown field 'cout'", "cout"),
        ("POST", "faults", {"kind": "rate_limit", "reason": "x"}, 400, "reason: must be", "reason"),
        (
            "POST", "faults", {"kind": "status", "status": 503, "reason": "global-rate"},
            400, "only a 429", "reason",
        ),
        ("POST", "faults", {"kind": "slow"}, 400, "seconds: must be a number", "seconds"),
        ("POST", "faults", {"kind": "slow", "seconds": 1e9}, 400, "from 0 to 3600", "seconds"),
        ("POST", "faults", "NaN", 400, "not valid UTF-8 JSON", None),
        ("POST", "faults", '{"kind": "slow", "seconds": NaN}', 400, "not valid", None),
        ("POST", "faults", "[1, 2]", 400, "must be a JSON object, got list", None),
        ("POST", "faults", b"\xff\xfe{}", 400, "not valid UTF-8 JSON", None),
        ("POST", "faults", "{" * 100_000, 400, "larger than 65536 bytes", None),
        ("POST", "faults", "[" * 60_000, 400, "not valid UTF-8 JSON", None),
        ("POST", "faults", '{"count": ' + "9" * 5000 + "}", 400, "not valid UTF-8 JSON", None),
        ("POST", "customers", {"id": "not a customer id"}, 400, "id: must be cus_", "id"),
        ("POST", "customers", {"name": "x"}, 400, "unknown field 'name'", "name"),
        ("GET", "sessions?limit=0", None, 400, "limit: must be", "limit"),
        ("GET", "sessions?limit=1001", None, 400, "limit: must be", "limit"),
        ("GET", "requests?limit=%C2%B2", None, 400, "limit: must be", "limit"),
        ("GET", "faults", None, 405, "use POST for /_fake/faults", None),
        ("DELETE", "reset", None, 405, "use POST", None),
        ("GET", "nothing", None, 404, "no such control path", None),
    ],
)  # fmt: skip
async def test_bad_control_input_is_a_clear_json_error(
    fake: FakeStripe,
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
    param: str | None,
) -> None:
    got, answer = await control(http, fake, method, path, body)
    assert got == status, answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert words in answer["error"]["message"], answer
    assert answer["error"].get("param") == param
    assert fake.queued_faults == 0 and fake.customers is None
    assert (await control(http, fake, "GET", "health"))[0] == 200  # still serving


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
FAULTISH = st.fixed_dictionaries(
    {},
    optional={
        "kind": st.sampled_from(["status", "server_error", "rate_limit", "slow", "x"]) | JSON,
        "count": st.integers(-2, 20_000) | JSON,
        "status": st.integers(0, 1000) | JSON,
        "code": JSON,
        "reason": st.sampled_from(["global-rate", "x\r\ny"]) | JSON,
        "seconds": st.floats() | JSON,
    },
)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=FAULTISH | JSON, path=st.sampled_from(["faults", "customers", "reset"]))
async def test_any_json_body_is_a_200_or_a_400_never_a_crash(body: Any, path: str) -> None:
    # A property over the class of inputs, not the examples above: whatever JSON a
    # client sends, the endpoint answers 200 or a JSON 400 and the fake keeps serving.
    async with FakeStripe() as fake, aiohttp.ClientSession() as http:
        status, answer = await control(http, fake, "POST", path, body)
        assert status in (200, 400), answer
        if status == 400:
            assert set(answer["error"]) >= {"type", "message"}
        else:
            assert answer["ok"] is True
        fake.faults = None
        fake.reset()
        fake.customers = None
        assert (await create(http, fake))[0] == 200
