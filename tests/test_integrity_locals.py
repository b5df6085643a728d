"""What a server or proxy sends in its headers and status line stays out of traceback locals.

A raw-TCP server (reached directly, or as a proxy with credentials) answers every status
the SDK turns into an error with the request's ``Authorization`` and
``Proxy-Authorization`` echoed in its headers, an API key and a client secret in other
header values and in the reason phrase. The error's message and headers are masked; the
locals of every frame on its traceback (rendered with ``capture_locals``, as Sentry and
``pytest --showlocals`` do), over the whole chain, must be too: no SDK frame may keep
aiohttp's response, its headers or the raw body when it raises.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import stripe_sessions as ss
from tests.helpers import PRICING
from tests.hostile import session_body
from tests.hostile_tcp import Conn, Request, ScriptedServer, response
from tests.leaks import KEY, SECRET, assert_clean, rendered

PROXY_PASSWORD = "PROXYpassLEAK0123"
PROXY_BASIC = base64.b64encode(f"user:{PROXY_PASSWORD}".encode()).decode()
REASON_KEY = "sk_test_REASONleak0123456789"
EXTRA = (PROXY_PASSWORD, PROXY_BASIC, "REASONleak", "HEADERleak")


def hostile_answer(request: Request, status: int) -> bytes:
    """An answer of ``status`` echoing the request's credentials and naming secrets."""
    headers = {
        "Content-Type": "application/json",
        "X-Echo-Authorization": request.header("Authorization") or "",
        "X-Echo-Proxy-Authorization": request.header("Proxy-Authorization") or "",
        "X-Note": f"{SECRET} sk_live_HEADERleak0123456789",
        "Request-Id": f"req_{SECRET}",
        "Retry-After": "0",
    }
    body: dict[str, Any]
    if status == 200:  # a session, but another request's: refused
        body = session_body(customer="cus_1", client_secret=SECRET)
        headers["Idempotency-Key"] = "the_key_of_another_request"
    elif status == 302:
        body = {}
        headers["Location"] = f"http://user:{KEY}@elsewhere.test/{SECRET}"
    else:
        code = "rate_limit" if status == 429 else "whatever"
        body = {"error": {"type": "api_error", "code": code, "message": f"no ({KEY})"}}
    return response(status, json.dumps(body), headers, reason=f"Bad {REASON_KEY} {SECRET}")


def echoing(status: int) -> Callable[[Conn], Awaitable[None]]:
    async def script(conn: Conn) -> None:
        while (request := await conn.read_request()) is not None:
            conn.write(hostile_answer(request, status))
            await conn.drain()

    return script


def assert_nothing_leaked(error: BaseException) -> None:
    text = rendered(error)
    assert "_attempt" in text  # the frame that read the answer is on the traceback
    assert_clean(text)
    for marker in EXTRA:
        assert marker not in text, f"{marker!r} leaked:\n{text[-3000:]}"


STATUSES = [200, 302, 400, 402, 429, 500]


def client_for(server: ScriptedServer, via: str, retries: int) -> ss.AsyncClient:
    """A client reaching ``server`` directly, through it as a proxy, or paced by a limiter.

    (Built here: a test frame's own locals, such as the proxy URL, are rendered too.)
    """
    options: dict[str, Any] = {"base_url": server.url, "max_retries": retries}
    if via == "proxy":
        options["base_url"] = "http://api.example.test"
        options["proxy"] = server.url.replace("://", f"://user:{PROXY_PASSWORD}@")
    if via == "paced":
        options["rate_limiter"] = ss.LocalRateLimiter(1000.0)
    return ss.AsyncClient(api_key=KEY, **options)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("via", ["direct", "proxy", "paced"])
@pytest.mark.parametrize("retries", [0, 1])
async def test_no_frame_keeps_what_the_server_sent(status: int, via: str, retries: int) -> None:
    async with ScriptedServer(echoing(status)) as server:
        async with client_for(server, via, retries) as client:
            with pytest.raises(ss.StripeError) as info:
                await client.customer_sessions.create(customer="cus_1", components=PRICING)
    if via == "proxy":
        assert server.requests[0].header("Proxy-Authorization") == f"Basic {PROXY_BASIC}"
    assert server.requests[0].header("Authorization") == f"Bearer {KEY}"
    assert_nothing_leaked(info.value)


@pytest.mark.parametrize("status", [200, 500])
async def test_the_sync_client_keeps_nothing_either(status: int) -> None:
    async with ScriptedServer(echoing(status)) as server:

        def call() -> BaseException:
            with ss.Client(api_key=KEY, base_url=server.url, max_retries=1) as client:
                try:
                    client.customer_sessions.create(customer="cus_1", components=PRICING)
                except ss.StripeError as e:
                    return e
            raise AssertionError("no error")

        error = await asyncio.to_thread(call)
    assert_nothing_leaked(error)


def stalls_after_head(started: asyncio.Event) -> Callable[[Conn], Awaitable[None]]:
    async def script(conn: Conn) -> None:
        request = await conn.read_request()
        assert request is not None
        head = hostile_answer(request, 200).split(b"\r\n\r\n")[0]
        head = head.replace(b"Content-Length: ", b"X-Was-Length: ")
        conn.write(head + b"\r\nContent-Length: 4000\r\n\r\n{")
        await conn.drain()
        started.set()
        await asyncio.Event().wait()  # the rest never comes

    return script


async def test_a_timeout_after_the_head_keeps_nothing() -> None:
    started = asyncio.Event()
    async with ScriptedServer(stalls_after_head(started)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            with pytest.raises(ss.APIConnectionError) as info:
                await client.customer_sessions.create(
                    customer="cus_1", components=PRICING, timeout=1.0
                )
    assert started.is_set()
    assert_nothing_leaked(info.value)


async def test_a_cancel_after_the_head_keeps_nothing() -> None:
    started = asyncio.Event()
    async with ScriptedServer(stalls_after_head(started)) as server:
        async with ss.AsyncClient(api_key=KEY, base_url=server.url, max_retries=0) as client:
            task = asyncio.create_task(
                client.customer_sessions.create(customer="cus_1", components=PRICING)
            )
            await started.wait()
            await asyncio.sleep(0.2)  # the head is parsed: the body is being read
            task.cancel()
            with pytest.raises(asyncio.CancelledError) as info:
                await task
    text = rendered(info.value)
    assert_clean(text)
    for marker in EXTRA:
        assert marker not in text, f"{marker!r} leaked:\n{text[-3000:]}"
