"""Networks users have: an HTTP(S) proxy (proxy.py, a real forwarding proxy on 127.0.0.1)
and TLS with a private CA (trustme), through both clients and their with_options copies."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING

trustme = pytest.importorskip("trustme")
pytest.importorskip("proxy")

USER, PASSWORD = "relay", "pr0xy-s3cret-pw"


@attrs.frozen
class Proxy:
    """A running proxy.py: its URL with credentials, and its access log."""

    host_port: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://{USER}:{PASSWORD}@{self.host_port}"

    def lines(self) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if "access_log" in line]


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    work = tmp_path_factory.mktemp("proxy")
    port_file, log = work / "port", work / "proxy.log"
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "proxy", "--hostname", "127.0.0.1", "--port", "0",
            "--port-file", str(port_file), "--basic-auth", f"{USER}:{PASSWORD}",
            "--num-workers", "1", "--num-acceptors", "1",
            "--log-file", str(log), "--log-level", "INFO",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "proxy.py did not start"
            time.sleep(0.05)
        yield Proxy(f"127.0.0.1:{port_file.read_text().strip()}", log)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@attrs.frozen
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


def passed_through(proxy: Proxy, request: str, fake: FakeStripe, before: int) -> bool:
    """Whether the proxy logged ``request`` ("POST" or "CONNECT") to the fake since ``before``."""
    target = fake.url.split("://")[1]
    return any(f"{request} {target}" in line for line in proxy.lines()[before:])


async def wait_for_log(proxy: Proxy, count: int) -> None:
    for _ in range(100):  # the proxy writes its access log once the exchange is over
        if len(proxy.lines()) >= count:
            return
        await asyncio.sleep(0.02)


async def test_create_through_a_proxy_with_credentials(proxy_server: Proxy) -> None:
    async with FakeStripe() as fake:
        before = len(proxy_server.lines())
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, proxy=proxy_server.url
        ) as client:
            session = await client.customer_sessions.create(customer="cus_1", components=PRICING)
            # a with_options copy shares the pool and keeps the proxy
            copy = client.with_options(stripe_account="acct_1")
            await copy.customer_sessions.create(customer="cus_2", components=PRICING)
            assert PASSWORD not in repr(client) + repr(client.config) + repr(copy)
            assert "****@127.0.0.1" in repr(client)
        assert session.client_secret.startswith("cuss_secret_")
        # proxy.py marks the first request of its connection; the copy's request came on
        # that same connection (a direct one would be a new connection, a new peer).
        assert fake.requests[0].headers["Via"].startswith("1.1 proxy.py")
        assert fake.requests[1].peer == fake.requests[0].peer is not None
        assert fake.requests[1].headers["Stripe-Account"] == "acct_1"
        assert "Proxy-Authorization" not in fake.requests[0].headers  # used, not forwarded
        await wait_for_log(proxy_server, before + 2)
        assert passed_through(proxy_server, "POST", fake, before)


async def test_wrong_proxy_credentials_are_a_clear_error_that_quotes_none(
    proxy_server: Proxy,
) -> None:
    wrong = proxy_server.url.replace(PASSWORD, "wrong-password-123")
    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key="sk_test_123", base_url=fake.url, proxy=wrong) as c:
            with pytest.raises(ss.StripeError) as info:
                await c.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.requests == []
    assert info.value.http_status == 407
    text = f"{info.value} {info.value!r} {info.value.body} {dict(info.value.headers)}"
    assert "wrong-password-123" not in text and PASSWORD not in text


async def test_an_unreachable_proxy_is_named_without_its_credentials() -> None:
    async with ss.AsyncClient(
        api_key="sk_test_123",
        base_url="http://127.0.0.1:9",
        proxy=f"http://{USER}:{PASSWORD}@127.0.0.1:1",
        max_retries=0,
    ) as client:
        with pytest.raises(ss.APIConnectionError) as info:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    assert "through proxy http://****@127.0.0.1:1" in str(info.value)
    assert PASSWORD not in str(info.value) + repr(info.value)
    assert info.value.reached is False


async def test_tls_with_a_private_ca(tls: Tls) -> None:
    async with FakeStripe(ssl_context=tls.server) as fake:
        assert fake.url.startswith("https://")
        async with ss.AsyncClient(api_key="sk_test_123", base_url=fake.url, ssl=tls.client) as c:
            session = await c.customer_sessions.create(customer="cus_1", components=PRICING)
            copy = c.with_options(max_retries=0)
            await copy.customer_sessions.create(customer="cus_2", components=PRICING)
        assert session.customer == "cus_1"
        assert fake.created == 2


async def test_tls_without_the_ca_fails_naming_certificate_verification(tls: Tls) -> None:
    async with FakeStripe(ssl_context=tls.server) as fake:
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, max_retries=0
        ) as client:
            with pytest.raises(ss.APIConnectionError) as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.requests == []
    message = str(info.value)
    assert "certificate verify failed" in message
    assert "ssl=ssl.create_default_context(cafile=...)" in message
    assert info.value.reached is False


async def test_tls_through_the_proxy_tunnels_with_connect(proxy_server: Proxy, tls: Tls) -> None:
    async with FakeStripe(ssl_context=tls.server) as fake:
        before = len(proxy_server.lines())
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, proxy=proxy_server.url, ssl=tls.client
        ) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.created == 1
        assert "Via" not in fake.requests[0].headers  # a tunnel: the proxy never saw inside
        await wait_for_log(proxy_server, before + 1)
        assert passed_through(proxy_server, "CONNECT", fake, before)


def test_the_sync_client_takes_proxy_and_ssl(proxy_server: Proxy, tls: Tls) -> None:
    with FakeStripe.running(ssl_context=tls.server) as fake:
        with ss.Client(
            api_key="sk_test_123", base_url=fake.url, proxy=proxy_server.url, ssl=tls.client
        ) as client:
            client.customer_sessions.create(customer="cus_1", components=PRICING)
            client.with_options(stripe_account="acct_1").customer_sessions.create(
                customer="cus_2", components=PRICING
            )
            assert PASSWORD not in repr(client)
        assert fake.created == 2
        assert fake.requests[0].peer == fake.requests[1].peer  # one tunnel through the proxy
        target = fake.url.split("://")[1]
    for _ in range(100):  # the proxy logs a tunnel once it is closed
        if any(f"CONNECT {target}" in line for line in proxy_server.lines()):
            break
        time.sleep(0.02)
    else:
        pytest.fail(f"the proxy logged no CONNECT to {target}")


@pytest.mark.parametrize("trust_env", [True, False])
async def test_trust_env_honours_the_proxy_variables(
    proxy_server: Proxy, monkeypatch: pytest.MonkeyPatch, trust_env: bool
) -> None:
    async with FakeStripe() as fake:
        monkeypatch.setenv("HTTP_PROXY", proxy_server.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, trust_env=trust_env
        ) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
            monkeypatch.setenv("NO_PROXY", "127.0.0.1")
            await client.customer_sessions.create(customer="cus_2", components=PRICING)
        # off by default; NO_PROXY honoured when on (then a new, direct connection)
        assert ["Via" in r.headers for r in fake.requests] == [trust_env, False]
        assert (fake.requests[0].peer != fake.requests[1].peer) is trust_env


def test_bad_network_settings_are_validation_errors() -> None:
    cases = [
        ({"proxy": "ftp://proxy:21"}, "proxy"),
        ({"proxy": "http://proxy:3128\r\nX: y"}, "proxy"),
        ({"proxy": "http://"}, "proxy"),
        ({"proxy": 3128}, "proxy"),
        ({"ssl": "yes"}, "ssl"),
        ({"ssl": False}, "ssl"),
        ({"trust_env": "no"}, "trust_env"),
    ]
    for kwargs, param in cases:
        with pytest.raises(ss.ValidationError) as info:
            ss.AsyncClient(api_key="sk_test_123", **kwargs)  # type: ignore[arg-type]
        assert info.value.param == param, kwargs
        assert PASSWORD not in str(info.value)
    with pytest.raises(ss.ValidationError, match="trust_env"):
        ss.AsyncClient(api_key="sk_test_123", trust_env=True, session=object())  # type: ignore[arg-type]


def test_a_bad_proxy_url_error_never_shows_its_password() -> None:
    with pytest.raises(ss.ValidationError) as info:
        ss.AsyncClient(api_key="sk_test_123", proxy=f"socks5://{USER}:{PASSWORD}@proxy:1080")
    assert PASSWORD not in str(info.value) and "socks5://****@proxy:1080" in str(info.value)


async def test_wrong_credentials_for_a_tunnel_quote_none(proxy_server: Proxy, tls: Tls) -> None:
    wrong = proxy_server.url.replace(PASSWORD, "wrong-password-123")
    async with FakeStripe(ssl_context=tls.server) as fake:
        async with ss.AsyncClient(
            api_key="sk_test_123", base_url=fake.url, proxy=wrong, ssl=tls.client, max_retries=0
        ) as client:
            with pytest.raises(ss.APIConnectionError) as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.requests == []
    text = f"{info.value} {info.value!r}"
    assert "407" in text and "through proxy http://****@" in text
    assert "wrong-password-123" not in text and "d3JvbmctcGFzc3dvcmQ" not in text
