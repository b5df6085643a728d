"""FakeStripe's limits: hostile bodies are a Stripe 400 and stall no one; memory is bounded."""

from __future__ import annotations

import asyncio
import gzip
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, FormLimits, RecordedRequest

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}
#: Issue #17 item 8: a 990 KB key of nested brackets (it took ~10 s and answered 500).
NESTED_990KB = "components" + "[a]" * ((990_000 - 12) // 3) + "=1"
#: 990 KB of fields: 247,500 of them.
MANY_FIELDS_990KB = "&".join(["a=1"] * 247_500)
#: Waits that only end a test that would otherwise hang; never met by a passing run.
HANG_GUARD = 60.0


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def raw_post(
    http: aiohttp.ClientSession, fake: FakeStripe, body: str | bytes, **headers: str
) -> tuple[int, Any, Any]:
    sent = {"Authorization": f"Bearer {fake.api_key}", **headers}
    data = io.BytesIO(body.encode() if isinstance(body, str) else body)  # aiohttp: no big bytes
    async with http.post(fake.url + "/v1/customer_sessions", data=data, headers=sent) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


def assert_stripe_400(status: int, body: Any, headers: Any, words: str) -> None:
    assert status == 400, body
    error = body["error"]
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert set(error) <= {"type", "message", "code", "param", "doc_url"}
    assert headers["Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (NESTED_990KB, "nested more than 32 levels"),
        (MANY_FIELDS_990KB, "more than 1000 parameters"),
        ("a=" + "x" * (2 * 1024 * 1024), "larger than 1048576 bytes"),
        ("customer=" + "9" * 900_000 + "&customer[0]=1", "both as a value and a hash"),
        (encode(GOOD) + "&expand[" + "1" * 900_000 + "]=customer", "Invalid array"),
    ],
    ids=["nested-990KB", "fields-990KB", "2MiB", "value-and-hash", "huge-index"],
)
async def test_hostile_bodies_are_a_stripe_400(
    fake: FakeStripe, http: aiohttp.ClientSession, body: str, words: str
) -> None:
    status, answer, headers = await raw_post(http, fake, body)
    assert_stripe_400(status, answer, headers, words)
    assert len(answer["error"]["message"]) < 1000, "the message quotes a bounded name"
    # The fake still serves afterwards.
    status, _, _ = await raw_post(http, fake, encode(GOOD))
    assert status == 200


async def test_a_body_of_exactly_the_cap_is_read_and_one_byte_more_is_not(
    http: aiohttp.ClientSession,
) -> None:
    limits = FormLimits(max_body_bytes=1000, max_fields=5, max_depth=3)
    async with FakeStripe(limits=limits) as fake:
        body = encode(GOOD)
        padded = body + "&customer=cus_" + "c" * (1000 - len(body) - len("&customer=cus_"))
        assert len(padded) == 1000
        assert (await raw_post(http, fake, padded))[0] == 200
        status, answer, headers = await raw_post(http, fake, padded + "c")
        assert_stripe_400(status, answer, headers, "larger than 1000 bytes")
        # Five fields pass, six do not; three brackets pass, four do not.
        five = encode(GOOD) + "&expand[0]=customer&expand[1]=customer&expand[2]=customer"
        assert five.count("&") == 4
        assert (await raw_post(http, fake, five))[0] == 200
        status, answer, headers = await raw_post(http, fake, five + "&expand[3]=customer")
        assert_stripe_400(status, answer, headers, "more than 5 parameters")
        deep = "components[a][b][c]=1&customer=cus_1"
        assert (
            "Received unknown parameter"
            in (await raw_post(http, fake, deep))[1]["error"]["message"]
        )
        status, answer, headers = await raw_post(http, fake, "components[a][b][c][d]=1")
        assert_stripe_400(status, answer, headers, "nested more than 3 levels")


async def test_compressed_and_unreadable_bodies_are_a_stripe_400(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    # 200 KB of gzip that inflates to 200 MB: refused, not inflated on the event loop.
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), 9)
    status, answer, headers = await raw_post(http, fake, bomb, **{"Content-Encoding": "gzip"})
    assert_stripe_400(status, answer, headers, "Content-Encoding 'gzip' is not supported")
    status, answer, headers = await raw_post(http, fake, b"junk", **{"Content-Encoding": "br"})
    assert_stripe_400(status, answer, headers, "Content-Encoding 'br' is not supported")
    # Malformed chunking is refused by aiohttp's HTTP parser (a plain-text 400, as a
    # front end would answer); never a 500, and the fake serves on.
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    writer.write(
        b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + fake.api_key.encode() + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"
    )
    answer_bytes = await asyncio.wait_for(reader.read(), HANG_GUARD)
    writer.close()
    assert answer_bytes.split(b"\r\n")[0].endswith(b"400 Bad Request"), answer_bytes[:200]
    assert (await raw_post(http, fake, encode(GOOD)))[0] == 200


async def wait_for_record(fake: FakeStripe, count: int) -> list[RecordedRequest]:
    """Until the fake has recorded ``count`` requests (headers arrived, body maybe not)."""

    async def poll() -> list[RecordedRequest]:
        while len(fake.requests) < count:
            await asyncio.sleep(0.001)
        return fake.requests

    return await asyncio.wait_for(poll(), HANG_GUARD)


@pytest.mark.parametrize("hostile", [NESTED_990KB, MANY_FIELDS_990KB], ids=["nested", "fields"])
async def test_other_clients_are_answered_while_a_hostile_body_is_in_progress(
    fake: FakeStripe, http: aiohttp.ClientSession, hostile: str
) -> None:
    body = hostile.encode()
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    writer.write(
        b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Authorization: Bearer " + fake.api_key.encode() + b"\r\n"
        b"Idempotency-Key: hostile\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    writer.write(body[:-1])  # all but the last byte
    await writer.drain()
    [bad] = await wait_for_record(fake, 1)
    assert bad.status is None

    status, _, _ = await raw_post(http, fake, encode(GOOD))  # another client, meanwhile
    assert status == 200

    writer.write(body[-1:])
    answer = await asyncio.wait_for(reader.read(), HANG_GUARD)
    writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert b"\r\nIdempotency-Key: hostile\r\n" in head + b"\r\n"
    assert b'"type": "invalid_request_error"' in payload

    # What the server recorded: the hostile request arrived first and finished last.
    hostile_rec, other = fake.requests
    assert (hostile_rec.status, other.status) == (400, 200)
    assert hostile_rec.size == len(body)
    assert hostile_rec.body == hostile[: len(hostile_rec.body)] and len(hostile_rec.body) == 16384
    assert hostile_rec.form == {}
    assert other.answered_at is not None and hostile_rec.answered_at is not None
    assert hostile_rec.at < other.at <= other.answered_at < hostile_rec.answered_at


async def test_many_hostile_and_honest_clients_at_once(
    fake: FakeStripe, http: aiohttp.ClientSession
) -> None:
    hostile = [raw_post(http, fake, b) for b in (NESTED_990KB, MANY_FIELDS_990KB) * 3]
    honest = [raw_post(http, fake, encode(GOOD)) for _ in range(20)]
    results = await asyncio.gather(*hostile, *honest)
    assert [r[0] for r in results] == [400] * 6 + [200] * 20
    assert fake.created == 20


# --- bounded memory ---------------------------------------------------------------------


def test_the_bounds_and_their_defaults() -> None:
    fake = FakeStripe()
    assert (fake.max_records, fake.max_idempotency_keys) == (10_000, 10_000)
    assert fake.idempotency_ttl == 24 * 60 * 60
    assert fake.limits == FormLimits(max_body_bytes=1024 * 1024, max_fields=1000, max_depth=32)
    for bad in ({"max_records": 0}, {"max_idempotency_keys": -1}, {"max_records": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            FakeStripe(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="idempotency_ttl"):
        FakeStripe(idempotency_ttl=float("inf"))
    with pytest.raises(ValueError, match="max_depth"):
        FormLimits(max_depth=1000)
    with pytest.raises(ValueError, match="max_fields"):
        FormLimits(max_fields=0)


async def test_records_keep_the_newest_max_records(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(max_records=5) as fake:
        ids = []
        for i in range(12):
            status, _, headers = await raw_post(
                http, fake, encode({**GOOD, "customer": f"cus_{i}"}), **{"Idempotency-Key": f"k{i}"}
            )
            assert status == 200
            ids.append(headers["Request-Id"])
        assert [r.request_id for r in fake.requests] == ids[-5:]
        assert [s["customer"] for s in fake.sessions] == [f"cus_{i}" for i in range(7, 12)]
        assert fake.session_keys == [f"k{i}" for i in range(7, 12)]
        assert fake.created == 12
        fake.reset()
        assert (fake.created, fake.requests, fake.sessions) == (0, [], [])


async def test_idempotency_store_forgets_the_oldest_keys(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(max_idempotency_keys=3) as fake:
        first = {}
        for i in range(5):
            _, body, _ = await raw_post(http, fake, encode(GOOD), **{"Idempotency-Key": f"k{i}"})
            first[i] = body["client_secret"]
        # k2..k4 are remembered: replays.
        for i in (2, 3, 4):
            _, body, headers = await raw_post(
                http, fake, encode(GOOD), **{"Idempotency-Key": f"k{i}"}
            )
            assert headers["Idempotent-Replayed"] == "true"
            assert body["client_secret"] == first[i]
        assert fake.created == 5
        # k0 was forgotten: a new session, not a replay (nor an idempotency_error).
        status, body, headers = await raw_post(
            http, fake, encode({**GOOD, "customer": "cus_other"}), **{"Idempotency-Key": "k0"}
        )
        assert status == 200 and "Idempotent-Replayed" not in headers
        assert body["client_secret"] != first[0]
        assert fake.created == 6
        assert len(fake._stored) == 3


async def test_idempotency_keys_expire_after_the_ttl(http: aiohttp.ClientSession) -> None:
    async with FakeStripe(idempotency_ttl=0) as fake:  # every key is already too old
        for _ in range(3):
            _, _, headers = await raw_post(http, fake, encode(GOOD), **{"Idempotency-Key": "k"})
            assert "Idempotent-Replayed" not in headers
        assert fake.created == 3
        assert len(fake._stored) <= 1  # expired keys are dropped
    async with FakeStripe() as fake:  # a key stored under 24 h, looked up once it is too old
        _, _, headers = await raw_post(http, fake, encode(GOOD), **{"Idempotency-Key": "old"})
        _, _, headers = await raw_post(http, fake, encode(GOOD), **{"Idempotency-Key": "old"})
        assert headers["Idempotent-Replayed"] == "true"
        fake.idempotency_ttl = 0
        _, _, headers = await raw_post(http, fake, encode(GOOD), **{"Idempotency-Key": "old"})
        assert "Idempotent-Replayed" not in headers
        assert fake.created == 2


async def test_each_record_is_bounded(fake: FakeStripe, http: aiohttp.ClientSession) -> None:
    body = encode(GOOD) + "&customer=" + "c" * 40_000
    await raw_post(http, fake, body, **{"X-Big": "h" * 8000, "Stripe-Version": "2026-10-28.endive"})
    rec = fake.requests[-1]
    assert rec.headers["X-Big"] == "h" * 1024 + "..."
    assert rec.headers["Stripe-Version"] == "2026-10-28.endive"
    assert (rec.size, len(rec.body), rec.form) == (len(body), 16 * 1024, {})
    assert rec.status == 400  # the customer id is too long
