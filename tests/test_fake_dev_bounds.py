"""The fake over a long run: stores stay at their caps; customer ids, 429 reasons, knobs."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
import stripe_sessions.testing as testing
from stripe_sessions._cli import fake_args
from stripe_sessions._cli.args import build_parser
from stripe_sessions._cli.main import COMMANDS
from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, FaultMix
from stripe_sessions.testing._faults import RATE_LIMITED_REASONS
from tests.helpers import examples

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession, fake: FakeStripe, form: Any = GOOD, key: str | None = None
) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    async with http.post(
        fake.url + "/v1/customer_sessions", data=encode(form), headers=headers
    ) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


async def test_every_store_stays_at_its_cap_over_a_long_mixed_run(
    http: aiohttp.ClientSession,
) -> None:
    # What grew per request: the records, the sessions with their keys, and the answers
    # remembered per idempotency key. Each is capped; over a run ten times the caps of
    # creates, replays, conflicts, faults and refusals, each ends at its cap, exactly.
    mix = FaultMix(server_error=0.1, rate_limit=0.05, reset_after=0.05)
    async with FakeStripe(max_records=20, max_idempotency_keys=30, faults=mix, seed=7) as fake:
        rng = random.Random(3)
        for i in range(300):
            form = {**GOOD, "customer": rng.choice(["cus_1", "cus_2", "bad id"])}
            key = f"k{rng.randrange(400)}" if i % 3 else None
            with contextlib.suppress(aiohttp.ClientError):  # reset_after
                await post(http, fake, form, key)
            assert len(fake.requests) <= 20 and len(fake.sessions) <= 20
            assert len(fake.session_keys) == len(fake.sessions)
            assert fake.remembered_keys <= 30
        assert len(fake.requests) == 20
        assert len(fake.sessions) == 20
        assert fake.remembered_keys == 30
        assert fake.created > 30


def test_the_dev_server_keeps_fewer_records_by_default() -> None:
    args = build_parser(COMMANDS).parse_args(["fake-server"])
    assert (args.max_records, args.max_idempotency_keys) == (1000, 10_000)
    assert (args.fault_rate, args.latency, args.customer, args.no_control) == (0, 0, None, False)


@pytest.mark.parametrize(
    "customer",
    ["not a customer id", "c", "cus_", "cus_a b", "cus_\u00e9t\u00e9", "cus_\u00b2", "acct_1"],
)
async def test_the_default_fake_refuses_what_cannot_be_a_customer_id(
    http: aiohttp.ClientSession, customer: str
) -> None:
    async with FakeStripe() as fake:
        status, body, _ = await post(http, fake, {**GOOD, "customer": customer})
        assert status == 400, body
        assert body["error"] == {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "param": "customer",
            "message": f"No such customer: '{customer}'",
            "doc_url": "https://stripe.com/docs/error-codes/resource-missing",
        }
        assert fake.created == 0


@settings(max_examples=examples(60), deadline=None)
@given(suffix=st.text(st.sampled_from("abcXYZ019_"), min_size=1, max_size=40))
async def test_any_id_of_stripes_shape_exists_by_default(suffix: str) -> None:
    async with FakeStripe() as fake, aiohttp.ClientSession() as http:
        status, body, _ = await post(http, fake, {**GOOD, "customer": "cus_" + suffix})
        assert status == 200 and body["customer"] == "cus_" + suffix


async def test_the_sdk_sees_a_malformed_customer_as_invalid_request(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            with pytest.raises(ss.InvalidRequestError) as caught:
                await client.customer_sessions.create(
                    customer="not a customer id", components={"pricing_table": {"enabled": True}}
                )
        assert caught.value.code == "resource_missing" and caught.value.param == "customer"


async def test_strict_customers_refuse_well_formed_unknown_ones(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeStripe(customers=["cus_known", "legacy"]) as fake:
        assert (await post(http, fake, {**GOOD, "customer": "cus_known"}))[0] == 200
        assert (await post(http, fake, {**GOOD, "customer": "legacy"}))[0] == 200  # added
        status, body, _ = await post(http, fake, {**GOOD, "customer": "cus_other"})
        assert status == 400 and body["error"]["message"] == "No such customer: 'cus_other'"


async def test_the_rate_limiter_names_its_reason(http: aiohttp.ClientSession) -> None:
    for reason in (None, "endpoint-rate"):
        kwargs: dict[str, Any] = {} if reason is None else {"rate_limit_reason": reason}
        async with FakeStripe(rate_limit=1, **kwargs) as fake:
            got = [await post(http, fake) for _ in range(3)]
            limited = [headers for status, _, headers in got if status == 429]
            assert limited, got
            for headers in limited:
                assert headers["Stripe-Rate-Limited-Reason"] == (reason or "global-rate")
                assert "Retry-After" not in headers


async def test_a_queued_429_chooses_its_reason_and_the_sdk_gets_it(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeStripe() as fake:
        fake.fail_next(429, reason="global-concurrency")
        fake.fail_next(429)  # no reason: no header, as a Stripe 429 may come
        first, second = await post(http, fake), await post(http, fake)
        assert first[0] == second[0] == 429
        assert first[2]["Stripe-Rate-Limited-Reason"] == "global-concurrency"
        assert "Stripe-Rate-Limited-Reason" not in second[2]
        assert "Retry-After" not in first[2] and "Retry-After" not in second[2]
        with pytest.raises(ValueError, match="reason: must be one of global-rate"):
            fake.fail_next(429, reason="bogus")
        with pytest.raises(ValueError, match="reason: must be one of"):
            FakeStripe(rate_limit_reason="bogus")


async def test_latency_jitter_is_seeded_and_within_bounds(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(latency=0.01, latency_jitter=0.04, seed=5) as fake:
        for _ in range(5):
            assert (await post(http, fake))[0] == 200
        took = [r.answered_at - r.at for r in fake.requests if r.answered_at is not None]
        assert len(took) == 5 and all(t >= 0.01 for t in took)
    for bad in ({"latency": -1}, {"latency_jitter": float("nan")}, {"rate_limit": -2}):
        with pytest.raises(ValueError):
            FakeStripe(**bad)


def test_fault_mix_refuses_what_its_docstring_rules_out() -> None:
    for bad in (
        {"server_error": 1.5},
        {"slow": -0.1},
        {"rate_limit": float("nan")},
        {"server_error": 0.6, "rate_limit": 0.6},
        {"slow_seconds": float("inf")},
    ):
        with pytest.raises(ValueError):
            FaultMix(**bad)
    mix = FaultMix.spread(0.3, ["server_error", "reset_before", "truncated"])
    assert (mix.server_error, mix.reset_before, mix.truncated) == pytest.approx((0.1,) * 3)
    with pytest.raises(ValueError, match="fault kinds"):
        FaultMix.spread(0.1, ["500"])
    draws = [FaultMix(truncated=1.0).draw(random.Random(i)) for i in range(5)]
    assert draws == ["truncated"] * 5


async def test_a_drawn_truncated_fault_cuts_the_body(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(faults=FaultMix(truncated=1.0)) as fake:
        with pytest.raises(aiohttp.ClientPayloadError):
            await post(http, fake)
        assert fake.requests[-1].fault == "truncated"


def test_the_clis_reason_names_are_the_fakes() -> None:
    assert fake_args.RATE_LIMITED_REASONS == RATE_LIMITED_REASONS


def test_every_public_docstring_of_the_fake_is_there() -> None:
    # The public surface of stripe_sessions.testing has docstrings; fail_next's no
    # longer promises the Retry-After: 1 the fake stopped sending.
    for name in testing.__all__:
        obj = getattr(testing, name)
        assert inspect.getdoc(obj), name
        for attr, member in vars(obj).items():
            if not attr.startswith("_") and (callable(member) or isinstance(member, property)):
                assert inspect.getdoc(member), f"{name}.{attr}"
    doc = inspect.getdoc(FakeStripe.fail_next) or ""
    assert "Retry-After: 1" not in doc and "no ``Retry-After``" in " ".join(doc.split())


async def test_the_sdk_is_not_retried_into_a_loop_by_a_drawn_slow_fault() -> None:
    # A slow fault makes the request late, not lost: the session is created once.
    async with FakeStripe(faults=FaultMix(slow=1.0, slow_seconds=0.01)) as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            await asyncio.gather(
                *(
                    client.customer_sessions.create(
                        customer=f"cus_{i}", components={"pricing_table": {"enabled": True}}
                    )
                    for i in range(3)
                )
            )
        assert fake.created == 3 and {r.fault for r in fake.requests} == {"slow"}
