"""The SDK against a hostile server: every strange answer is a clear StripeError, bounded.

Each test asserts the error class and message, and where it matters that nothing
reached a second server or that memory stayed small (in a subprocess, peak RSS).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import stripe_sessions as ss
from tests.helpers import PRICING
from tests.hostile import (
    Hostile,
    MiB,
    deep_json,
    gzip_bomb,
    serve,
    session_body,
    stream_bytes,
    trickle,
)

KEY = "sk_test_hostile0123456789abcd"
SESSIONSECRET = session_body()["client_secret"]


@pytest.fixture
async def hostile() -> AsyncIterator[Hostile]:
    async with serve(Hostile()) as server:
        yield server


async def create(url: str, customer: str = "cus_1", **kwargs: Any) -> ss.CustomerSession:
    async with ss.AsyncClient(api_key=KEY, base_url=url, **kwargs) as client:
        return await client.customer_sessions.create(customer=customer, components=PRICING)


def answer(status: int, body: bytes | str, **headers: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, headers=headers)

    return handler


async def test_garbage_200_is_an_api_error_and_not_retried(hostile: Hostile) -> None:
    hostile.default = answer(200, b"<html>hello</html>")
    with pytest.raises(ss.APIError, match="not a JSON object") as info:
        await create(hostile.url)
    assert info.value.http_status == 200
    assert len(hostile.requests) == 1


@pytest.mark.parametrize(
    ("status", "cls"), [(200, ss.APIError), (500, ss.APIError), (400, ss.InvalidRequestError)]
)
async def test_deeply_nested_json_is_an_api_error(
    hostile: Hostile, status: int, cls: type[ss.StripeError]
) -> None:
    hostile.default = answer(status, deep_json(), **{"Content-Type": "application/json"})
    with pytest.raises(ss.StripeError) as info:
        await create(hostile.url, max_retries=0)
    assert type(info.value) is cls
    assert info.value.http_status == status
    if status == 200:
        assert "nested too deeply" in str(info.value)
    else:
        assert "not a Stripe error" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"client_secret": None}, "client_secret: expected a string, got null"),
        ({"client_secret": 123}, "client_secret: expected a string, got an integer"),
        ({"livemode": "false"}, "livemode: expected a boolean, got a string"),
        ({"object": "customer"}, "object: expected 'customer_session', got 'customer'"),
        ({"object": None}, "object: expected 'customer_session', got null"),
        # A server (a proxy) echoing the key or a client secret where the type goes.
        ({"object": KEY}, "object: expected 'customer_session', got 'sk_test_****'"),
        ({"object": f"x {SESSIONSECRET}"}, "got 'x <client secret>'"),
        ({"components": []}, "components: expected an object or null, got an array"),
        ({"created": "1700000000"}, "created: expected an integer, got a string"),
        ({"expires_at": 1.5}, "expires_at: expected an integer, got a number"),
        ({"customer": 42}, "customer: expected a string, an object or null, got an integer"),
        ({"customer": {"id": 1}}, "expected a string, got an integer"),
        ({"customer_account": []}, "customer_account: expected a string or null, got an array"),
        ({"created": 10**30}, "expected a Unix timestamp, got an integer out of range"),
    ],
)
async def test_wrong_typed_answers_are_refused(
    hostile: Hostile, changes: dict[str, Any], words: str
) -> None:
    body = session_body(**changes)
    hostile.default = answer(200, json.dumps(body), **{"Content-Type": "application/json"})
    with pytest.raises(ss.APIError) as info:
        await create(hostile.url)
    assert words in str(info.value)
    assert info.value.http_status == 200
    assert info.value.idempotency_key == hostile.requests[-1]["headers"]["Idempotency-Key"]
    for secret in (SESSIONSECRET, KEY):
        assert secret not in str(info.value) + repr(info.value)


async def test_unknown_fields_and_enum_values_are_still_tolerated(hostile: Hostile) -> None:
    body = session_body(hologram={"enabled": True})
    body["components"] = dict(body["components"], pricing_table={"enabled": True, "x": 1})
    hostile.default = answer(200, json.dumps(body), **{"Content-Type": "application/json"})
    session = await create(hostile.url)
    assert session.to_dict()["hologram"] == {"enabled": True}


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirects_are_not_followed(hostile: Hostile, status: int) -> None:
    async with serve(Hostile()) as elsewhere:
        hostile.default = answer(status, b"", Location=f"{elsewhere.url}/v1/customer_sessions")
        with pytest.raises(ss.APIError) as info:
            await create(hostile.url, stripe_account="acct_1")
        assert elsewhere.requests == [], "the redirect was followed"
    err = info.value
    assert err.http_status == status
    assert f"HTTP {status}" in str(err) and "'127.0.0.1'" in str(err)
    assert "not followed" in str(err)
    assert len(hostile.requests) == 1, "a redirect is not retried"


async def test_huge_error_body_is_cut_and_not_kept(hostile: Hostile) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        return await stream_bytes(request, 100 * MiB, status=500)

    hostile.default = big
    with pytest.raises(ss.APIError) as info:
        await create(hostile.url, max_retries=0)
    assert f"larger than {1024 * 1024} bytes" in str(info.value)
    assert info.value.http_status == 500
    assert len(info.value.body or "") == 0


async def test_error_body_kept_is_capped(hostile: Hostile) -> None:
    hostile.default = answer(502, b"y" * (512 * 1024))
    with pytest.raises(ss.APIError) as info:
        await create(hostile.url, max_retries=0)
    assert len(info.value.body or "") == 64 * 1024


@pytest.mark.parametrize("length", [True, False])
async def test_huge_success_body_is_an_api_error(hostile: Hostile, length: bool) -> None:
    async def big(request: web.Request) -> web.StreamResponse:
        return await stream_bytes(request, 20 * MiB, length=length)

    hostile.default = big
    with pytest.raises(ss.APIError, match="larger than 1048576 bytes"):
        await create(hostile.url)
    assert len(hostile.requests) == 1


async def test_compressed_answer_is_refused_not_inflated(hostile: Hostile) -> None:
    bomb = gzip_bomb(64 * MiB)
    hostile.default = answer(200, bomb, **{"Content-Encoding": "gzip"})
    with pytest.raises(ss.APIError, match="'gzip'-encoded body although only identity"):
        await create(hostile.url)
    assert hostile.requests[-1]["headers"]["Accept-Encoding"] == "identity"


async def test_a_borrowed_session_does_not_decompress_either(hostile: Hostile) -> None:
    hostile.default = answer(200, gzip_bomb(8 * MiB), **{"Content-Encoding": "gzip"})
    async with aiohttp.ClientSession() as own:
        client = ss.AsyncClient(api_key=KEY, base_url=hostile.url, session=own)
        with pytest.raises(ss.APIError, match="encoded body"):
            await client.customer_sessions.create(customer="cus_1", components=PRICING)


async def test_trickled_body_ends_at_the_timeout(hostile: Hostile) -> None:
    hostile.default = trickle
    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(ss.APITimeoutError) as info:
        await create(hostile.url, timeout=0.5, max_retries=0)
    assert loop.time() - started < 2.0
    assert "timeout of 0.5s for one attempt" in str(info.value)


async def test_cookies_are_never_sent_back(hostile: Hostile) -> None:
    async def cookie(request: web.Request) -> web.StreamResponse:
        resp = await hostile.good(request)
        resp.set_cookie("tracker", "abc")
        return resp

    hostile.default = cookie
    # By host name: aiohttp's default jar ignores cookies from bare IP addresses.
    url = hostile.url.replace("127.0.0.1", "localhost")
    async with ss.AsyncClient(api_key=KEY, base_url=url) as client:
        copy = client.with_options(stripe_account="acct_2")
        for c in (client, copy, client):
            await c.customer_sessions.create(customer="cus_1", components=PRICING)
    assert [r["headers"].get("Cookie") for r in hostile.requests] == [None, None, None]


def _measure(body_kind: str) -> dict[str, Any]:
    """Run one create against a hostile answer in a subprocess; report peak RSS and time."""
    code = textwrap.dedent(
        f"""
        import asyncio, json, time
        import stripe_sessions as ss
        from aiohttp import web
        from tests.hostile import Hostile, MiB, gzip_bomb, serve, stream_bytes

        async def main():
            bomb = gzip_bomb(1024 * MiB) if {body_kind!r} == "gzip" else b""
            async def big(request):
                return await stream_bytes(request, 100 * MiB, status=500)
            async def gz(request):
                return web.Response(body=bomb, headers={{"Content-Encoding": "gzip"}})
            async with serve(Hostile()) as h:
                h.default = gz if bomb else big
                async with ss.AsyncClient(api_key="sk_test_x1234567", base_url=h.url,
                                          max_retries=0) as c:
                    t0 = time.perf_counter()
                    try:
                        await c.customer_sessions.create(
                            customer="cus_1", components={{"pricing_table": {{"enabled": True}}}})
                        error = None
                    except ss.StripeError as e:
                        error = type(e).__name__ + ": " + str(e)
                    took = time.perf_counter() - t0
            # VmHWM: this process's own peak. ru_maxrss would not do: Linux keeps it
            # across exec, so it could report the (large) pytest process that forked us.
            with open("/proc/self/status") as status:
                rss = next(int(line.split()[1]) for line in status
                           if line.startswith("VmHWM:")) / 1024
            print(json.dumps({{"error": error, "seconds": took, "peak_rss_mib": rss,
                              "bomb_bytes": len(bomb)}}))
        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout)
    print(body_kind, result)  # the figures for the closing note (pytest -s)
    return result


def test_100_mb_error_body_keeps_memory_small() -> None:
    result = _measure("big")
    assert result["error"].startswith("APIError: Stripe answered HTTP 500 with a body larger")
    assert result["peak_rss_mib"] < 300


def test_gzip_bomb_keeps_memory_small() -> None:
    result = _measure("gzip")
    assert result["bomb_bytes"] < 2 * MiB  # 1 GiB once inflated
    assert result["error"].startswith("APIError: Stripe answered HTTP 200 with a 'gzip'-encoded")
    assert result["peak_rss_mib"] < 300
