"""FakeStripe echoes ``Idempotency-Key`` on every answer to a request that carried one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, FaultMix

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}
KEY = "echo-3f1c2d4a-0000-4000-8000-000000000000"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def send(
    http: aiohttp.ClientSession,
    fake: FakeStripe,
    *,
    key: str = KEY,
    body: str | None = None,
    method: str = "POST",
    path: str = "/v1/customer_sessions",
    auth: str | None = None,
) -> tuple[int, Any]:
    """Status and headers; the body is read when it can be (a truncated one cannot)."""
    headers = {"Authorization": auth or f"Bearer {fake.api_key}", "Idempotency-Key": key}
    data = encode(GOOD) if body is None else body
    async with http.request(method, fake.url + path, data=data, headers=headers) as resp:
        with contextlib.suppress(aiohttp.ClientPayloadError):
            await resp.read()
        return resp.status, resp.headers


Setup = Callable[[FakeStripe, aiohttp.ClientSession], Awaitable[Any]]


async def nothing(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    pass


async def stored(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    assert (await send(http, fake))[0] == 200


CASES: list[tuple[str, Setup, dict[str, Any], int]] = [
    ("created", nothing, {}, 200),
    ("replayed", stored, {}, 200),
    ("conflict", stored, {"body": encode({**GOOD, "customer": "cus_2"})}, 400),
    ("invalid", nothing, {"body": "customer=cus_1"}, 400),
    ("unparseable", nothing, {"body": "customer=c&customer[x]=1"}, 400),
    ("nested", nothing, {"body": "components" + "[a]" * 40 + "=1"}, 400),
    ("unauthenticated", nothing, {"auth": "Bearer nonsense"}, 401),
    ("live-key", nothing, {"auth": "Bearer sk_live_0123456789abcdef"}, 401),
    ("unknown-path", nothing, {"path": "/v1/customers"}, 404),
    ("get", nothing, {"method": "GET"}, 404),
    ("key-too-long", nothing, {"key": "k" * 256}, 400),
    ("non-ascii-key", nothing, {"key": "ключ-🔑"}, 200),
]


@pytest.mark.parametrize(
    ("setup", "kwargs", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_every_answer_echoes_the_key(
    fake: FakeStripe, http: aiohttp.ClientSession, setup: Setup, kwargs: dict[str, Any], status: int
) -> None:
    await setup(fake, http)
    got, headers = await send(http, fake, **kwargs)
    assert got == status
    assert headers.getall("Idempotency-Key") == [kwargs.get("key", KEY)]


FAULTS: list[tuple[str, Callable[[FakeStripe], None], int]] = [
    ("500", lambda f: f.fail_next(500), 500),
    ("503-html", lambda f: f.fail_next(503, body="<html>down</html>"), 503),
    ("502-json", lambda f: f.fail_next(502, body={"error": {"message": "x"}}), 502),
    ("409", lambda f: f.fail_next(409), 409),
    ("rate-limit", lambda f: f.fail_next(429), 429),
    ("lock-timeout", lambda f: f.fail_next(429, code="lock_timeout"), 429),
    ("slow", lambda f: f.slow_next(0.01), 200),
    ("malformed", lambda f: f.malformed_next(), 200),
    ("truncated", lambda f: f.truncate_next(), 200),
]


@pytest.mark.parametrize(("inject", "status"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
async def test_injected_faults_echo_the_key(
    fake: FakeStripe, http: aiohttp.ClientSession, inject: Callable[[FakeStripe], None], status: int
) -> None:
    inject(fake)
    got, headers = await send(http, fake)
    assert got == status
    assert headers["Idempotency-Key"] == KEY


async def test_rate_limited_and_random_faults_echo_the_key(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(rate_limit=2) as fake:
        answers = await asyncio.gather(*(send(http, fake, key=f"k{i}") for i in range(8)))
        assert {a[0] for a in answers} == {200, 429}
        for i, (_, headers) in enumerate(answers):
            assert headers["Idempotency-Key"] == f"k{i}"
    mix = FaultMix(server_error=0.2, conflict=0.1, lock_timeout=0.1, rate_limit=0.1, malformed=0.1)
    async with FakeStripe(faults=mix, seed=7) as fake:
        for i in range(40):
            _, headers = await send(http, fake, key=f"m{i}")
            assert headers["Idempotency-Key"] == f"m{i}"
        assert len({r.status for r in fake.requests}) >= 4


async def test_a_key_in_flight_is_echoed_on_the_409(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(latency=0.2) as fake:
        answers = await asyncio.gather(send(http, fake), send(http, fake))
        assert sorted(a[0] for a in answers) == [200, 409]
        assert all(a[1]["Idempotency-Key"] == KEY for a in answers)


async def test_no_key_no_echo_and_a_fault_may_send_a_wrong_one(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        fake.url + "/v1/customer_sessions",
        data=encode(GOOD),
        headers={"Authorization": f"Bearer {fake.api_key}"},
    ) as resp:
        assert resp.status == 200 and "Idempotency-Key" not in resp.headers
    # To test a client against a server that echoes another key.
    fake.fail_next(200, body={"object": "customer_session"}, headers={"Idempotency-Key": "other"})
    _, headers = await send(http, fake)
    assert headers.getall("Idempotency-Key") == ["other"]


async def test_a_key_that_is_not_utf8_is_refused_and_not_echoed(fake: FakeStripe) -> None:
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    body = encode(GOOD).encode()
    writer.write(
        b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + fake.api_key.encode() + b"\r\n"
        b"Idempotency-Key: k\xff\xfe\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    )
    answer = await asyncio.wait_for(reader.read(), 60)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"idempotency-key" not in head.lower()
    assert b"must be valid UTF-8" in payload
    assert fake.created == 0
