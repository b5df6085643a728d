"""FakeStripe spoken to by Stripe's own Python library, with the key its docs use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from stripe_sessions.testing import FakeStripe

stripe = pytest.importorskip("stripe")

COMPONENTS = {"pricing_table": {"enabled": True}}


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe.running(customers=["cus_123"]) as fake:
        yield fake


def client(fake: FakeStripe, key: str = "sk_test_123") -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": fake.url}, max_network_retries=0)


def test_stripe_python_creates_a_session_with_sk_test_123(fake: FakeStripe) -> None:
    session = client(fake).v1.customer_sessions.create(
        params={"customer": "cus_123", "components": COMPONENTS}  # type: ignore[typeddict-item]
    )
    assert session.object == "customer_session"
    assert session.client_secret.startswith("cuss_secret_")
    assert session.customer == "cus_123"
    assert session.components.pricing_table.enabled is True
    assert fake.requests[0].headers["Authorization"] == "Bearer sk_test_123"


def test_stripe_python_maps_the_fakes_errors_as_stripes(fake: FakeStripe) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client(fake).v1.customer_sessions.create(
            params={"customer": "cus_nope", "components": COMPONENTS}  # type: ignore[typeddict-item]
        )
    assert missing.value.code == "resource_missing"
    assert missing.value.param == "customer"
    assert missing.value.user_message == "No such customer: 'cus_nope'"

    with pytest.raises(stripe.AuthenticationError, match="test-mode keys only"):
        client(fake, "sk_live_0123456789abcdef").v1.customer_sessions.create(
            params={"customer": "cus_123", "components": COMPONENTS}  # type: ignore[typeddict-item]
        )

    fake.fail_next(429)
    with pytest.raises(stripe.RateLimitError) as limited:
        client(fake).v1.customer_sessions.create(
            params={"customer": "cus_123", "components": COMPONENTS}  # type: ignore[typeddict-item]
        )
    assert limited.value.json_body["error"]["code"] == "rate_limit"
    assert "Retry-After" not in (limited.value.headers or {})
    assert fake.created == 0
