"""A batch's keywords are one checked value: each bad one refused, by name, before anything runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._batch.options import MAX_CONCURRENCY, BatchOptions
from stripe_sessions.testing import FakeStripe
from tests.helpers import Api, examples, items

#: One bad value per keyword, and the name the error must carry.
BAD: list[tuple[dict[str, Any], str]] = [
    ({"concurrency": True}, "concurrency"),
    ({"concurrency": 2.0}, "concurrency"),
    ({"rate_limit": float("nan")}, "rate_limit"),
    ({"rate_limit": -1}, "rate_limit"),
    ({"rate_limit": "20"}, "rate_limit"),
    ({"rate_limit": 10**400}, "rate_limit"),  # was a bare OverflowError
    ({"on_progress": "print"}, "on_progress"),
    ({"fail_fast": "yes"}, "fail_fast"),
    ({"batch_key": "caf\u00e9"}, "batch_key"),
    ({"max_retries": 101}, "max_retries"),
    ({"stripe_account": "acct_1\r\nX-Evil: 1"}, "stripe_account"),
    ({"stripe_version": ""}, "stripe_version"),
    ({"timeout": float("inf")}, "timeout"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD)
async def test_a_bad_keyword_is_a_validation_error_naming_it_and_nothing_is_read_or_sent(
    api: Api, kwargs: dict[str, Any], name: str
) -> None:
    read = 0

    def counted() -> Any:
        nonlocal read
        for item in items(3):
            read += 1
            yield item

    for method in ("create_many", "stream_many"):
        with pytest.raises(ss.ValidationError) as info:
            await api.call(method, counted(), **kwargs)
        assert info.value.param == name
        assert isinstance(info.value, ValueError)
    assert read == 0
    assert api.fake.requests == []


async def test_stream_many_checks_at_the_call_before_it_is_iterated(client: ss.AsyncClient) -> None:
    with pytest.raises(ss.ValidationError, match="concurrency"):
        client.customer_sessions.stream_many(items(3), concurrency=0)


async def test_every_item_is_sent_with_the_batch_options(fake: FakeStripe) -> None:
    # stripe_account and stripe_version go on every item's request, the item keys are
    # f"{batch_key}-{index}", and the client's own retries do not apply: the batch's do.
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, max_retries=0) as c:
        fake.fail_next(500)
        results = await c.customer_sessions.create_many(
            items(4),
            batch_key="opts",
            stripe_account="acct_123",
            stripe_version="2026-09-30.endive",
            max_retries=1,
            rate_limit=None,
            concurrency=1,
        )
    assert all(r.ok for r in results), [r.error for r in results]
    assert [r.idempotency_key for r in results] == [f"opts-{i}" for i in range(4)]
    assert results[0].attempts == 2
    sent = fake.requests
    assert len(sent) == 5
    assert {r.headers.get("Stripe-Account") for r in sent} == {"acct_123"}
    assert {r.headers.get("Stripe-Version") for r in sent} == {"2026-09-30.endive"}


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)))
def test_concurrency_is_a_whole_number_of_at_least_one_or_refused(value: Any) -> None:
    # At most MAX_CONCURRENCY (10,000): 10**30 blocked the loop creating tasks (redteam19).
    ok = type(value) is int and 1 <= value <= MAX_CONCURRENCY
    if ok:
        assert BatchOptions(concurrency=value).concurrency == value
    else:
        with pytest.raises(ss.ValidationError) as info:
            BatchOptions(concurrency=value)
        assert info.value.param == "concurrency"
