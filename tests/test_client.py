"""AsyncClient: configuration, headers, per-call options, pool sharing and lifecycle."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
from collections.abc import Mapping

import aiohttp
import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING, dev_stderr


async def _create(client: ss.AsyncClient, **kw: object) -> ss.CustomerSession:
    return await client.customer_sessions.create(customer="cus_1", components=PRICING, **kw)  # type: ignore[arg-type]


async def test_stripe_headers_are_sent(client: ss.AsyncClient, fake: FakeStripe) -> None:
    await _create(client)
    headers = fake.requests[-1].headers
    assert headers["Authorization"] == f"Bearer {fake.api_key}"
    assert headers["Stripe-Version"] == ss.STRIPE_API_VERSION == "2026-10-28.endive"
    assert headers["User-Agent"].startswith(f"stripe-sessions/{ss.__version__}")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert len(headers["Idempotency-Key"]) <= 255
    assert "Stripe-Account" not in headers


async def test_client_settings_become_headers(fake: FakeStripe) -> None:
    async with ss.AsyncClient(
        api_key=fake.api_key,
        base_url=fake.url + "/",
        stripe_account="acct_1",
        stripe_context="ctx_1",
        stripe_version="2025-01-01.test",
        default_headers={"X-Trace": "t1"},
    ) as c:
        await _create(c)
    headers = fake.requests[-1].headers
    assert headers["Stripe-Account"] == "acct_1"
    assert headers["Stripe-Context"] == "ctx_1"
    assert headers["Stripe-Version"] == "2025-01-01.test"
    assert headers["X-Trace"] == "t1"


async def test_per_call_options_override(client: ss.AsyncClient, fake: FakeStripe) -> None:
    await _create(client, stripe_account="acct_2", stripe_version="2024-06-20")
    headers = fake.requests[-1].headers
    assert headers["Stripe-Account"] == "acct_2"
    assert headers["Stripe-Version"] == "2024-06-20"
    await _create(client)
    assert "Stripe-Account" not in fake.requests[-1].headers


async def test_with_options_shares_the_pool_and_changes_settings(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    await _create(client)
    other = client.with_options(stripe_account="acct_3", max_retries=0)
    await _create(other)
    assert fake.requests[1].peer == fake.requests[0].peer  # the same pooled connection
    assert other.config.max_retries == 0
    assert client.config.max_retries == 2
    fake.fail_next(500)
    with pytest.raises(ss.APIError):
        await _create(other)
    assert fake.requests[-1].headers["Stripe-Account"] == "acct_3"
    await other.aclose()  # a copy does not close the shared pool
    await _create(client)
    assert fake.requests[-1].status == 200


def _sdk_headers(headers: Mapping[str, str]) -> list[str | None]:
    return [headers.get(name) for name in ("Content-Type", "Accept", "Accept-Encoding")]


async def test_callers_session_is_used_and_never_closed(fake: FakeStripe) -> None:
    async with aiohttp.ClientSession(headers={"X-Mine": "yes"}) as own:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own) as c:
            await _create(c)
        assert not own.closed
        headers = fake.requests[-1].headers
        assert headers["X-Mine"] == "yes"
        # The SDK's own session sends these as its defaults; a lent one gets them per call.
        assert headers["User-Agent"].startswith("stripe-sessions/")
        assert _sdk_headers(headers) == [
            "application/x-www-form-urlencoded",
            "application/json",
            "identity",
        ]


async def test_default_headers_override_the_sdks_own(fake: FakeStripe) -> None:
    mine = {"user-agent": "my-app/1.0", "Accept": "application/json; charset=utf-8"}
    async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, default_headers=mine) as c:
        await _create(c)
        async with c.with_options(max_retries=0) as copy:  # shares the pooled session
            await _create(copy)
    for request in fake.requests[-2:]:
        assert request.headers["User-Agent"] == "my-app/1.0"
        assert request.headers["Accept"] == "application/json; charset=utf-8"


def test_client_can_be_built_without_a_loop_and_used_in_one_later() -> None:
    client = ss.AsyncClient(api_key="sk_test_0123456789abc", base_url="http://127.0.0.1:9")
    assert not client.closed

    async def use() -> None:
        async with FakeStripe() as fake:
            async with client.with_options(max_retries=0) as copy:
                assert copy.config.base_url == "http://127.0.0.1:9"
            local = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
            async with local:
                await _create(local)
        await client.aclose()

    asyncio.run(use())
    assert client.closed


async def test_closed_client_refuses_to_send(fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    await _create(client)
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await _create(client)


async def test_unreachable_server_is_a_connection_error() -> None:
    async with FakeStripe() as dead:
        url = dead.url
    async with ss.AsyncClient(api_key="sk_test_0123456789abc", base_url=url) as c:
        with pytest.raises(ss.APIConnectionError) as info:
            await _create(c, max_retries=1)
    assert url in str(info.value)
    assert "sk_test_0123456789abc" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": "80"}, "timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_connections": 0}, "max_connections"),
        ({"base_url": "api.stripe.com"}, "base_url"),
    ],
)
def test_bad_settings_are_named(kwargs: dict[str, object], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        ss.AsyncClient(api_key="sk_test_0123456789abc", **kwargs)  # type: ignore[arg-type]


def test_defaults_match_stripes() -> None:
    config = ss.AsyncClient(api_key="sk_test_0123456789abc").config
    assert config.base_url == "https://api.stripe.com"
    assert config.timeout == 80.0
    assert config.max_retries == 2
    assert "sk_test_0123456789abc" not in repr(config)


async def test_concurrent_creates_share_one_client(
    client: ss.AsyncClient, fake: FakeStripe
) -> None:
    sessions = await asyncio.gather(*(_create(client) for _ in range(50)))
    assert len({s.client_secret for s in sessions}) == 50
    assert fake.created == 50


async def test_no_unclosed_session_warning_after_aclose(fake: FakeStripe) -> None:
    client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url)
    await _create(client)
    await client.aclose()
    del client
    gc.collect()  # pytest turns an unraisable ResourceWarning into a failure


def test_exit_without_close_leaves_no_warning() -> None:
    """A script that never closes its client still exits without 'Unclosed client session'."""
    code = textwrap.dedent(
        """
        import asyncio, stripe_sessions as ss
        from stripe_sessions.testing import FakeStripe
        async def main():
            async with FakeStripe() as fake:
                async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as c:
                    await c.customer_sessions.create(
                        customer="cus_1", components={"pricing_table": {"enabled": True}})
        asyncio.run(main())
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-X", "dev", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
    assert dev_stderr(out.stderr) == ""  # no warning, no "Unclosed ...", nothing ignored
