"""A key of any shape in the base URL's path is masked in ``url.full`` (the client's own secrets).

A key shape's regex masks ``sk_test_fake`` but not the ``_0123...`` after it: the
telemetry masks the base URL with the client's exact secrets, once.
"""

from __future__ import annotations

import contextlib

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.observe_support import installed


async def test_no_part_of_an_unusual_key_in_any_span_attribute(fake: FakeStripe) -> None:
    api_key = "sk_test_fake_0123456789abcdef"
    with installed() as otel:
        async with ss.AsyncClient(api_key=api_key, base_url=f"{fake.url}/{api_key}") as client:
            with contextlib.suppress(ss.StripeError):
                await client.customer_sessions.create(
                    customer="cus_1", components=PRICING, max_retries=0
                )
        spans = otel.spans()
    urls = [s.attributes["url.full"] for s in spans if "url.full" in s.attributes]
    assert urls
    for url in urls:
        assert url.endswith("/v1/customer_sessions"), url
    parts = ("fake_0123", "0123456789abcdef", api_key)
    for span in spans:
        for name, value in span.attributes.items():
            for part in parts:
                assert part not in str(value), (name, value)
