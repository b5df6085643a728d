"""The fake's URL is a URL for any host it listens on, IPv6 included (R1)."""

from __future__ import annotations

import select
import signal
import socket
import subprocess
import sys
import urllib.parse

import pytest
import yarl
from hypothesis import given
from hypothesis import strategies as st

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from stripe_sessions.testing._fake import url_host
from tests.helpers import PATIENCE, PRICING


def _has_ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


needs_ipv6 = pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback here")


def _parses_to(url: str, host: str, port: int) -> None:
    """``url`` parses (urllib and yarl) back to ``host`` and ``port``."""
    split = urllib.parse.urlsplit(url)
    assert (split.hostname, split.port) == (host.lower(), port)
    parsed = yarl.URL(url)
    assert parsed.port == port
    assert parsed.raw_host is not None


@given(
    address=st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
    port=st.integers(1, 65535),
)
def test_every_ip_address_makes_a_url_that_parses_back(address: str, port: int) -> None:
    _parses_to(f"http://{url_host(address)}:{port}", address, port)


def test_a_zoned_ipv6_address_makes_a_url() -> None:
    assert url_host("fe80::1%lo") == "[fe80::1%25lo]"
    assert url_host("localhost") == "localhost"
    assert url_host("[::1]") == "[::1]"


@needs_ipv6
async def test_an_ipv6_fake_has_a_url_a_client_takes() -> None:
    async with FakeStripe(host="::1") as fake:
        assert fake.url.startswith("http://[::1]:")
        _parses_to(fake.url, "::1", fake.port)
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.created == 1


async def test_a_fake_on_every_interface_has_a_url_a_client_takes() -> None:
    async with FakeStripe(host="") as fake:
        assert "://:" not in fake.url
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as client:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
        assert fake.created == 1


@needs_ipv6
def test_fake_server_prints_a_bracketed_ipv6_url() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "stripe_sessions", "fake-server", "--host", "::1", "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], PATIENCE)  # bounded: a hang fails
        assert ready, "the fake server printed nothing"
        first = proc.stderr.readline()
        assert "listening on http://[::1]:" in first, first
        url = first.split("listening on ", 1)[1].split()[0]
        with ss.Client(api_key="sk_test_fixfake20", base_url=url) as client:
            client.customer_sessions.create(customer="cus_1", components=PRICING)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
