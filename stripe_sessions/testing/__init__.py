"""An embedded Stripe-compatible fake server for tests and demos: no network, no account.

::

    from stripe_sessions.testing import FakeStripe

    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as stripe:
            ...
"""

from ._fake import FakeStripe, FaultMix, RecordedRequest

__all__ = ["FakeStripe", "FaultMix", "RecordedRequest"]
