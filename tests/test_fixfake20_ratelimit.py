"""The fake's token bucket admits requests at any rate, also below one a second (R2)."""

from __future__ import annotations

import aiohttp
from hypothesis import given
from hypothesis import strategies as st

from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing._ratelimit import TokenBucket

RATES = st.floats(min_value=1e-6, max_value=1000, allow_nan=False, exclude_min=False)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(rate=RATES, idle=st.floats(min_value=0, max_value=1e7))
def test_a_first_request_after_a_long_idle_is_admitted(rate: float, idle: float) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, clock=clock)
    assert bucket.take()  # a fresh bucket is full
    clock.now += idle + 2 / rate  # long enough for a whole token at this rate
    assert bucket.take()


@given(rate=st.floats(min_value=1e-3, max_value=0.999))
def test_a_rate_below_one_lets_one_through_per_period(rate: float) -> None:
    clock = Clock()
    bucket = TokenBucket(rate, clock=clock)
    admitted = 0
    for _ in range(100):  # 100 periods of 1/rate seconds, a request every half period
        admitted += bucket.take()
        clock.now += 0.5 / rate
        admitted += bucket.take()
        clock.now += 0.5 / rate
    assert 99 <= admitted <= 101


async def test_a_fake_at_half_a_request_a_second_answers_the_first() -> None:
    async with FakeStripe(rate_limit=0.5) as fake, aiohttp.ClientSession() as http:
        data = {"customer": "cus_1", "components[pricing_table][enabled]": "true"}
        headers = {"Authorization": f"Bearer {fake.api_key}"}
        async with http.post(
            f"{fake.url}/v1/customer_sessions", data=data, headers=headers
        ) as resp:
            assert resp.status == 200
        async with http.post(
            f"{fake.url}/v1/customer_sessions", data=data, headers=headers
        ) as resp:
            assert resp.status == 429
