""" "Reached" means an HTTP answer came, not that TCP connected.

Raw-TCP peers that accept a connection but never answer HTTP (silent, closing, another
protocol's greeting, TLS on the port) are unreachable: ``APIConnectionError.reached`` is
False, and a batch against one stops early with the unreachable-server stop.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

import stripe_sessions as ss
from stripe_sessions._batch import reach as _batch
from tests.helpers import PRICING, close_server, items
from tests.hostile_tcp import HOST, Conn, ScriptedServer, response

trustme = pytest.importorskip("trustme")

KEY = "sk_test_reach0123456789abcdef"


async def silent(conn: Conn) -> None:
    """Read the request, say nothing, keep the connection open."""
    await conn.read_request()
    await asyncio.Event().wait()


async def closes_at_once(conn: Conn) -> None:
    """Close the connection as soon as it is accepted."""
    conn.close()


async def closes_after_reading(conn: Conn) -> None:
    """Read the request, then close without a word."""
    await conn.read_request()


async def resets(conn: Conn) -> None:
    """Read the request, then reset the connection."""
    await conn.read_request()
    conn.abort()


async def ssh_greeting(conn: Conn) -> None:
    """Another service on the port: it speaks first, and not HTTP."""
    conn.write(b"SSH-2.0-OpenSSH_9.6\r\n")
    await conn.read_request()
    await asyncio.sleep(0.05)


async def garbage(conn: Conn) -> None:
    """Bytes that are not HTTP, in answer to the request."""
    await conn.read_request()
    conn.write(b"\x15\x03\x03\x00\x02\x02\x46" + bytes(range(256)))


PEERS: dict[str, Callable[[Conn], Awaitable[None]]] = {
    "silent": silent,
    "closes at once": closes_at_once,
    "closes after reading": closes_after_reading,
    "resets": resets,
    "ssh greeting": ssh_greeting,
    "garbage": garbage,
}


@asynccontextmanager
async def tls_port() -> AsyncIterator[tuple[str, list[int]]]:
    """An HTTPS server (a real TLS handshake); yields its http:// URL (the wrong scheme)."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    accepted: list[int] = []
    tasks: set[asyncio.Task[None]] = set()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await reader.read(1024)
        except (ssl.SSLError, ConnectionError):
            pass
        finally:
            writer.close()

    def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        task = asyncio.ensure_future(handle(reader, writer))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, HOST, 0, ssl=context, ssl_handshake_timeout=1)
    try:
        yield f"http://{HOST}:{server.sockets[0].getsockname()[1]}", accepted
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await close_server(server, writers)  # one cancelled before it ran: reset


async def one_create(url: str) -> ss.APIConnectionError:
    async with ss.AsyncClient(api_key=KEY, base_url=url, timeout=0.5, max_retries=0) as c:
        with pytest.raises(ss.APIConnectionError) as info:
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
    return info.value


async def a_batch(url: str) -> ss.APIConnectionError:
    async with ss.AsyncClient(api_key=KEY, base_url=url, timeout=0.5) as client:
        with pytest.raises(ss.APIConnectionError) as info:
            await client.customer_sessions.create_many(
                items(60), concurrency=4, rate_limit=None, max_retries=2, batch_key="reach"
            )
    return info.value


@pytest.mark.parametrize("peer", PEERS.values(), ids=PEERS.keys())
async def test_a_peer_that_never_answers_http_is_not_reached(
    peer: Callable[[Conn], Awaitable[None]],
) -> None:
    async with ScriptedServer(peer) as server:
        error = await one_create(server.url)
    assert error.reached is False, error


@pytest.mark.parametrize("peer", PEERS.values(), ids=PEERS.keys())
async def test_a_batch_to_a_peer_that_never_answers_http_stops(
    peer: Callable[[Conn], Awaitable[None]],
) -> None:
    async with ScriptedServer(peer) as server:
        error = await a_batch(server.url)
    assert str(error).startswith("stopped the batch: none of its first 10 attempts reached")
    assert error.reached is False and error.batch_key == "reach"
    # The stop came after 10 failures (plus what was in flight), not 500 x 6 attempts.
    assert server.accepted <= _batch.UNREACHABLE_ATTEMPTS + 4


async def test_http_to_an_https_port_is_not_reached() -> None:
    async with tls_port() as (url, accepted):
        assert (await one_create(url)).reached is False
        error = await a_batch(url)
    assert str(error).startswith("stopped the batch")
    assert len(accepted) <= _batch.UNREACHABLE_ATTEMPTS + 1 + 4


async def test_https_to_a_plain_http_port_is_not_reached() -> None:
    async def plain(conn: Conn) -> None:
        await conn.read(1024)  # a TLS ClientHello
        conn.write(response(400, "plain HTTP here"))

    async with ScriptedServer(plain) as server:
        error = await one_create(server.url.replace("http://", "https://"))
    assert error.reached is False


async def test_an_answer_whose_body_breaks_was_reached() -> None:
    async def cut_body(conn: Conn) -> None:
        await conn.read_request()
        conn.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{"obj')

    async with ScriptedServer(cut_body) as server:
        error = await one_create(server.url)
    assert error.reached is True


async def test_a_silent_peer_times_out_as_not_reached() -> None:
    async with ScriptedServer(silent) as server:
        error = await one_create(server.url)
    assert isinstance(error, ss.APITimeoutError) and error.reached is False


async def test_a_server_that_answers_http_errors_keeps_the_batch_going() -> None:
    async def five_hundred(conn: Conn) -> None:
        while await conn.read_request() is not None:
            conn.write(response(500, {"error": {"type": "api_error"}}))

    async with ScriptedServer(five_hundred) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url) as client:
            results = await client.customer_sessions.create_many(
                items(12), concurrency=4, rate_limit=None, max_retries=2
            )
    assert len(results) == 12 and not any(r.ok for r in results)
    assert len(server.requests) == 36
