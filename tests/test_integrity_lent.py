"""A lent aiohttp.ClientSession (``session=``) cannot change what the SDK does.

Each test lends a session configured one hostile way: what aiohttp lets a request
override is overridden on every request; what it does not is refused at construction
with a ValidationError naming it.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING
from tests.hostile_tcp import Conn, ScriptedServer, response

trustme = pytest.importorskip("trustme")

KEY = "sk_test_lent0123456789abcdefgh"
MISSING = {
    "error": {
        "type": "invalid_request_error",
        "code": "resource_missing",
        "message": "No such customer: 'cus_gone'",
        "param": "customer",
    }
}


@pytest.fixture
async def missing() -> AsyncIterator[ScriptedServer]:
    """Answers every request with Stripe's 400 resource_missing."""

    async def script(conn: Conn) -> None:
        while await conn.read_request() is not None:
            conn.write(response(400, MISSING, {"Request-Id": "req_missing"}))

    async with ScriptedServer(script) as server:
        yield server


async def create_with(own: aiohttp.ClientSession, url: str, **kwargs: Any) -> ss.CustomerSession:
    client = ss.AsyncClient(api_key=KEY, base_url=url, session=own, **kwargs)
    return await client.customer_sessions.create(customer="cus_gone", components=PRICING)


async def raise_always(resp: aiohttp.ClientResponse) -> None:
    raise RuntimeError("the caller's raise_for_status ran")


@pytest.mark.parametrize("raise_for_status", [True, raise_always], ids=["true", "callable"])
async def test_raise_for_status_does_not_apply(
    missing: ScriptedServer, raise_for_status: Any
) -> None:
    async with aiohttp.ClientSession(raise_for_status=raise_for_status) as own:
        with pytest.raises(ss.InvalidRequestError) as info:
            await create_with(own, missing.url)
    error = info.value
    assert error.http_status == 400 and error.code == "resource_missing"
    assert error.request_id == "req_missing" and error.param == "customer"
    assert len(missing.requests) == 1, "a 400 is not retried"


async def test_middlewares_do_not_apply(missing: ScriptedServer) -> None:
    ran: list[str] = []

    async def meddle(request: aiohttp.ClientRequest, handler: Any) -> aiohttp.ClientResponse:
        ran.append(str(request.url))
        request.headers["X-Meddled"] = "yes"
        return await handler(request)

    async with aiohttp.ClientSession(middlewares=(meddle,)) as own:
        with pytest.raises(ss.InvalidRequestError):
            await create_with(own, missing.url)
        async with own.get(missing.url) as _:  # the caller's own requests still get it
            pass
    assert missing.requests[0].header("X-Meddled") is None
    assert missing.requests[1].header("X-Meddled") == "yes"
    assert ran == [missing.url]


async def test_the_jars_cookies_are_never_sent(fake: FakeStripe) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # unsafe: it keeps cookies for an IP address
    jar.update_cookies({"tracker": "abc", "session": "theirs"}, URL(fake.url))
    async with aiohttp.ClientSession(cookie_jar=jar) as own:
        client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own)
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert len(own.cookie_jar.filter_cookies(URL(fake.url))) == 2  # the jar is theirs
    assert fake.requests[-1].headers.get("Cookie") is None


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # aiohttp deprecates auth=
async def test_auth_is_refused_at_construction() -> None:
    async with aiohttp.ClientSession(auth=aiohttp.BasicAuth("user", "hunter2")) as own:
        with pytest.raises(ss.ValidationError, match=r"session: .*\bauth\b") as info:
            ss.AsyncClient(api_key=KEY, session=own)
    assert info.value.param == "session"
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "headers",
    [
        {"Stripe-Account": "acct_someone"},
        {"stripe-context": "ctx_1"},
        {"Cookie": "a=b"},
        {"Content-Encoding": "gzip"},
        {"Transfer-Encoding": "chunked"},
    ],
)
async def test_default_headers_the_sdk_does_not_send_are_refused(headers: dict[str, str]) -> None:
    async with aiohttp.ClientSession(headers=headers) as own:
        with pytest.raises(ss.ValidationError) as info:
            ss.AsyncClient(api_key=KEY, session=own)
    name = next(iter(headers))
    assert f"default headers {name}" in str(info.value)
    assert headers[name] not in str(info.value)


async def test_headers_added_after_lending_are_refused_at_first_use(fake: FakeStripe) -> None:
    async with aiohttp.ClientSession() as own:
        client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own)
        own.headers["Stripe-Account"] = "acct_someone"
        with pytest.raises(ss.ValidationError, match="Stripe-Account"):
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert fake.requests == []


async def test_harmless_defaults_are_kept(fake: FakeStripe) -> None:
    # Headers the SDK always sends itself are overridden, others pass through.
    headers = {"User-Agent": "theirs", "Authorization": "Bearer other", "X-Trace": "t1"}
    async with aiohttp.ClientSession(headers=headers) as own:
        client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own)
        await client.customer_sessions.create(customer="cus_1", components=PRICING)
    sent = fake.requests[-1].headers
    assert sent["Authorization"] == f"Bearer {fake.api_key}"
    assert sent["User-Agent"].startswith("stripe-sessions/")
    assert sent["X-Trace"] == "t1"


async def test_skipped_host_is_refused() -> None:
    async with aiohttp.ClientSession(skip_auto_headers=("Host",)) as own:
        with pytest.raises(ss.ValidationError, match="skip_auto_headers Host"):
            ss.AsyncClient(api_key=KEY, session=own)


async def test_a_connector_that_does_not_verify_tls_still_verifies(tmp_path: Path) -> None:
    ca = trustme.CA()  # a CA nobody trusts
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    async with FakeStripe(ssl_context=server_ctx) as fake:
        connector = aiohttp.TCPConnector(ssl=False)
        async with aiohttp.ClientSession(connector=connector) as own:
            client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own)
            with pytest.raises(ss.APIConnectionError, match="certificate verify failed") as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
            assert info.value.reached is False
            # With the CA given to the client, it works through the same lent session.
            trusted = ssl.create_default_context()
            ca.configure_trust(trusted)
            client = ss.AsyncClient(
                api_key=fake.api_key, base_url=fake.url, session=own, ssl=trusted
            )
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("lent", [False, True], ids=["own session", "lent session"])
async def test_a_netrc_entry_is_a_validation_error_not_a_bare_value_error(
    fake: FakeStripe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lent: bool
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("default login someone password hunter2\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    if lent:
        async with aiohttp.ClientSession(trust_env=True) as own:
            client = ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, session=own)
            with pytest.raises(ss.ValidationError) as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
    else:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url, trust_env=True) as c:
            with pytest.raises(ss.ValidationError) as info:
                await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert "netrc" in str(info.value)
    assert "hunter2" not in str(info.value) and info.value.__cause__ is None
    assert fake.requests == []
