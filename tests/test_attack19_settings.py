"""Client and batch settings a hostile caller or operator gives (redteam19).

Each test here is a fault found by the redteam19 pass (first marked
``xfail(strict=True)``, now fixed: see tests/test_fixes_settings.py for the classes):
the README promises that a bad setting is a ``ValidationError`` naming it, raised
before anything is sent, and that the API key is in no traceback rendered with its
locals. All of them behaved the same on the code before the redesign (1a21e24): none
was a regression of the restructuring.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.leaks import KEY, rendered


@pytest.mark.parametrize("session", [5, "http://127.0.0.1:1", object()])
def test_a_session_that_is_no_aiohttp_session_is_refused_by_name(session: Any) -> None:
    # Was: AttributeError: 'int' object has no attribute 'auth' (no StripeError at all).
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(api_key=KEY, base_url="http://127.0.0.1:1", session=session)
    assert info.value.param == "session"


@pytest.mark.parametrize(
    "headers",
    [{"Content-Length": "5"}, {"Transfer-Encoding": "chunked"}, {"Host": "evil.example"}],
)
async def test_default_headers_that_would_change_the_requests_framing_are_refused(
    fake: FakeStripe, headers: dict[str, str]
) -> None:
    # Was: Content-Length: 5 sent the body cut to "compo" (the rest of it left on the
    # kept-alive connection as the start of another request), Transfer-Encoding got
    # the server's 400 and Host reached the server as given. A lent session's default
    # headers of these names are refused already (README, "Lending your own aiohttp
    # session"); the client's own default_headers= are not.
    with pytest.raises(ss.ValidationError) as info:
        async with ss.AsyncClient(
            api_key=fake.api_key, base_url=fake.url, default_headers=headers, max_retries=0
        ) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert info.value.param is not None and info.value.param.startswith("default_headers")
    assert fake.requests == []


def _client_with_key_in_headers(fake: FakeStripe) -> ss.AsyncClient:
    # Built here, so that no frame of the failing call holds the key in a local of its own.
    return ss.AsyncClient(
        api_key=fake.api_key,
        base_url=fake.url,
        default_headers={"Authorization": f"Bearer {KEY}"},
        max_retries=0,
    )


async def test_a_key_given_in_default_headers_is_refused_or_never_shown(fake: FakeStripe) -> None:
    # Was: accepted, sent instead of api_key, and kept as a plain str: a failing call's
    # traceback rendered with locals shows it (Transport._attempt's ``request``).
    try:
        client = _client_with_key_in_headers(fake)
    except ss.ValidationError as e:
        assert e.param is not None and e.param.startswith("default_headers")
        assert KEY not in rendered(e)
        return
    fake.fail_next(400)
    async with client:
        with pytest.raises(ss.InvalidRequestError) as info:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert KEY not in rendered(info.value)


_HUGE_CONCURRENCY = textwrap.dedent(
    """
    import asyncio, resource, sys
    # Bounded, so that the fault costs this child a MemoryError, not the machine its RAM.
    resource.setrlimit(resource.RLIMIT_AS, (384 << 20, 384 << 20))
    import stripe_sessions as ss
    from stripe_sessions.testing import FakeStripe

    async def main() -> None:
        async with FakeStripe() as fake:
            async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
                try:
                    results = await client.customer_sessions.create_many(
                        [{"customer": "cus_1", "components": {"pricing_table": {"enabled": True}}}],
                        concurrency=10**30,
                        rate_limit=None,
                    )
                except ss.ValidationError as e:
                    print("refused", e.param, fake.created)
                else:
                    print("created", [r.ok for r in results])

    asyncio.run(main())
    """
)


def test_a_huge_concurrency_is_refused_or_costs_no_more_than_the_items() -> None:
    # Was: one task per unit of concurrency, created in one synchronous loop before
    # anything is read (the event loop blocked; no wait_for can end it): 10**6 over one
    # item took 30 s and 1 GB; 10**30 runs until memory is exhausted.
    done = subprocess.run(
        [sys.executable, "-c", _HUGE_CONCURRENCY],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() in ("refused concurrency 0", "created [True]")
