"""Red team (#21): a key in the base URL's path (a gateway's) is masked in ``url.full``.

Errors already mask it (``POST: /****/v1/...``); a span exported to a tracing backend
must not carry it either.
"""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions._observe.otel import Telemetry, load
from stripe_sessions._observe.spans import start_attempt
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, examples
from tests.observe_support import installed

KEY = "sk_live_RedTeam21GatewayKey0123456789"


async def test_a_key_in_the_base_url_path_is_masked_in_url_full(fake: FakeStripe) -> None:
    with installed() as otel:
        async with ss.AsyncClient(api_key=KEY, base_url=f"{fake.url}/gw/{KEY}") as client:
            with contextlib.suppress(ss.StripeError):
                await client.customer_sessions.create(
                    customer="cus_1", components=PRICING, max_retries=0
                )
        urls = [s.attributes["url.full"] for s in otel.spans() if "url.full" in s.attributes]
    assert urls
    for url in urls:
        assert KEY not in url and "RedTeam21" not in url, url
        assert url.endswith("/v1/customer_sessions")


class _Request:
    def __init__(self, url: str) -> None:
        self.url = url


@settings(max_examples=examples(50), deadline=None)
@given(
    kind=st.sampled_from(["sk_live_", "sk_test_", "rk_live_", "sk_", "cuss_secret_"]),
    body=st.text("abcdefXYZ0123456789", min_size=8, max_size=40),
    before=st.text("abc/-.", max_size=10),
)
def test_url_full_never_holds_a_key_shape(kind: str, body: str, before: str) -> None:
    secret = kind + body
    url = f"https://gw.example/{before}{secret}/v1/customer_sessions"
    with installed() as otel:
        api = load()
        assert api is not None
        telemetry = Telemetry(api, "https://gw.example")
        described = {
            "path": "/v1/customer_sessions",
            "idempotency_key": "k",
            "api_version": "v",
            "attempt": 1,
            "stripe_account": None,
        }
        span, token = start_attempt(telemetry, _Request(url), described)
        api.context.detach(token)
        span.end()
        (exported,) = otel.spans()
    assert body not in str(exported.attributes["url.full"])
