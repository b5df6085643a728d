"""FakeStripe against hostile clients: held connections expire, records and stores are bounded.

Red-team findings (ops report) 2, 3 and 9: idle, half-header and half-body connections
were kept forever (a low descriptor limit then refused everyone), a record could keep
~0.85 MiB of header names (8 GiB at the default ``max_records``), and two
``Idempotency-Key`` headers were taken silently. No test here waits out a wall-clock
window: timeouts are tiny and each wait is a generous deadline a passing run never meets.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import attrs
import pytest

from stripe_sessions._wire.form import encode
from stripe_sessions.testing import FakeStripe, RecordedRequest, _recording

GOOD: dict[str, Any] = {"components": {"pricing_table": {"enabled": True}}, "customer": "cus_1"}
#: Ends a test that would otherwise hang; never met by a passing run.
DEADLINE = 10.0
BODY = encode(GOOD).encode()


def request_bytes(key: str, body: bytes = BODY, *extra: str) -> bytes:
    head = [
        "POST /v1/customer_sessions HTTP/1.1",
        "Host: x",
        f"Authorization: Bearer {key}",
        "Content-Type: application/x-www-form-urlencoded",
        f"Content-Length: {len(body)}",
        *extra,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (deadline: DEADLINE)."""
    return await asyncio.wait_for(reader.read(), DEADLINE)


async def good_request(fake: FakeStripe) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            fake.url + "/v1/customer_sessions",
            data=BODY,
            headers={
                "Authorization": f"Bearer {fake.api_key}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ) as resp:
            return resp.status


# --- finding 2: held connections are closed -----------------------------------------------


@pytest.fixture
async def quick() -> AsyncIterator[FakeStripe]:
    async with FakeStripe(keepalive_timeout=0.2, body_timeout=0.2) as fake:
        yield fake


async def test_idle_half_head_and_half_body_connections_are_closed(quick: FakeStripe) -> None:
    opened = [await asyncio.open_connection(quick.host, quick.port) for _ in range(9)]
    idle, half_head, half_body = opened[:3], opened[3:6], opened[6:]
    for _, writer in half_head:
        writer.write(b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\n")
    for _, writer in half_body:
        writer.write(request_bytes(quick.api_key, b"x" * 100)[:-98])  # 2 of 100 bytes
    # Another client is answered while they are held.
    assert await good_request(quick) == 200
    for reader, _ in idle + half_head:
        assert await until_closed(reader) == b""
    for reader, _ in half_body:
        answer = await until_closed(reader)
        assert answer.startswith(b"HTTP/1.1 400 "), answer[:100]
        assert b"did not arrive within 0.2 seconds" in answer
        assert b"Connection: close" in answer
    for _, writer in opened:
        writer.close()
    slow = [r for r in quick.requests if r.status == 400]
    assert len(slow) == 3 and all(r.size is None for r in slow)


async def test_a_kept_alive_connection_serves_requests_then_is_closed_once_idle(
    quick: FakeStripe,
) -> None:
    reader, writer = await asyncio.open_connection(quick.host, quick.port)
    for _ in range(3):  # each request restarts the idle clock
        writer.write(request_bytes(quick.api_key))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
        assert head.startswith(b"HTTP/1.1 200 ")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
    assert await until_closed(reader) == b""
    writer.close()
    assert quick.created == 3


def test_the_timeouts_and_their_defaults() -> None:
    fake = FakeStripe()
    assert (fake.keepalive_timeout, fake.body_timeout) == (30.0, 30.0)
    assert fake.max_record_bytes == 96 * 1024 * 1024
    for name in ("keepalive_timeout", "body_timeout"):
        for bad in (0, -1, float("nan"), float("inf"), True, "1"):
            with pytest.raises(ValueError, match=name):
                FakeStripe(**{name: bad})
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="max_record_bytes"):
            FakeStripe(max_record_bytes=bad)  # type: ignore[arg-type]


ROOT = str(Path(__file__).resolve().parent.parent)
#: A fake server limited to 64 descriptors with a 0.3 s idle timeout, in a child process
#: (a descriptor limit cannot be lowered for the test process itself).
LOW_FD_SERVER = textwrap.dedent(
    """
    import asyncio, resource, sys
    from stripe_sessions.testing import FakeStripe
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    async def main():
        async with FakeStripe(keepalive_timeout=0.3, body_timeout=0.3) as fake:
            print(fake.port, flush=True)
            await asyncio.sleep(3600)
    asyncio.run(main())
    """
)


async def test_many_idle_sockets_at_a_low_descriptor_limit_stall_no_one_for_good() -> None:
    """The red team's ``prlimit --nofile=256`` + 300 idle sockets, scaled down: 64 and 100."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOW_FD_SERVER,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        port = int(await asyncio.wait_for(proc.stdout.readline(), 60))
        held = []
        for _ in range(100):  # more than the server has descriptors; it accepts what it can
            held.append(await asyncio.open_connection("127.0.0.1", port))
        # Held sockets stay open on this side; the server closes its ends as they idle out,
        # and then answers a new client. Before the fix it never did.
        deadline = time.monotonic() + 30
        answer = b""
        while time.monotonic() < deadline:
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection("127.0.0.1", port), 2
                )
                writer.write(request_bytes("sk_test_1"))
                answer = await asyncio.wait_for(reader.read(12), 2)
                writer.close()
            except (OSError, asyncio.TimeoutError):
                answer = b""
            if answer:
                break
        assert answer == b"HTTP/1.1 200"
        for _, writer in held:
            writer.close()
    finally:
        proc.kill()
        await proc.wait()


# --- finding 3: every record and every store is bounded -----------------------------------


def retained(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes an object keeps, counted deterministically (``sys.getsizeof`` of each part)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    size = sys.getsizeof(obj)
    if isinstance(obj, dict):
        size += sum(retained(k, seen) + retained(v, seen) for k, v in obj.items())
    elif isinstance(obj, (list, tuple)):
        size += sum(retained(v, seen) for v in obj)
    elif attrs.has(type(obj)):
        size += sum(retained(getattr(obj, f.name), seen) for f in attrs.fields(type(obj)))
    return size


async def send_raw(fake: FakeStripe, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(fake.host, fake.port)
    writer.write(data)
    try:
        return await until_closed(reader)
    finally:
        writer.close()


def hostile_requests(key: str) -> dict[str, bytes]:
    nested = "components" + "[a]" * 30 + "=1"
    nested_form = "&".join(f"c{i}[a][b][c][d][e][f][g][h][i]=1" for i in range(900))
    emoji_body = "customer=" + "\U0001f600" + "x" * 20_000
    return {
        # The red team's f5b: 100 headers with 4000-character names.
        "long-names": request_bytes(
            key, BODY, *(f"X-{i:03d}{'n' * 4000}: v" for i in range(100)), "Connection: close"
        ),
        # f5: 120 headers with 1100-character values.
        "long-values": request_bytes(
            key, BODY, *(f"X-{i}: {'v' * 1100}" for i in range(120)), "Connection: close"
        ),
        # One 4-byte character makes the whole body text 4 bytes a character.
        "wide-body": request_bytes(key, emoji_body.encode(), "Connection: close"),
        # A small body whose decoded form is thousands of dicts.
        "nested-form": request_bytes(
            key,
            (nested + "&" + nested_form)[:16_000].rsplit("&", 1)[0].encode(),
            "Connection: close",
        ),
        "long-path": request_bytes(key, BODY, "Connection: close").replace(
            b"/v1/customer_sessions", b"/" + b"p" * 8000, 1
        ),
        # All at once: wide headers, many of them, a wide body.
        "everything": request_bytes(
            key,
            emoji_body[:16_000].encode(),
            *(f"X-{i:03d}{'n' * 300}: \U0001f600{'v' * 1100}" for i in range(60)),
            *(f"Y-{i}: v" for i in range(60)),
            "Connection: close",
        ),
        # aiohttp refuses any method it does not know, so the method needs no test; a
        # dict of many small headers costs more than their text.
        "many-headers": request_bytes(
            key, BODY, *(f"X-{i}: v" for i in range(120)), "Connection: close"
        ),
        # Bytes that are not ASCII make a header's text 2 or 4 bytes a character.
        "wide-headers": request_bytes(
            key, BODY, *(f"X-{i}: \U0001f600{'v' * 1100}" for i in range(60))
        ).replace(b"Content-Type", b"Connection: close\r\nContent-Type", 1),
    }


@pytest.mark.parametrize("kind", list(hostile_requests("k")))
async def test_a_record_is_bounded_whatever_the_request(fake: FakeStripe, kind: str) -> None:
    await send_raw(fake, hostile_requests(fake.api_key)[kind])
    (rec,) = fake.requests
    assert retained(rec) <= _recording.RECORD_BYTES, (kind, retained(rec))
    assert rec.status is not None


async def test_the_stripe_headers_are_kept_after_a_flood_of_others(fake: FakeStripe) -> None:
    junk = [f"X-{i:03d}{'n' * 4000}: {'v' * 2000}" for i in range(60)]
    await send_raw(
        fake,
        request_bytes(fake.api_key, BODY, *junk, "Idempotency-Key: k1", "Connection: close"),
    )
    (rec,) = fake.requests
    assert rec.headers["Authorization"] == f"Bearer {fake.api_key}"
    assert rec.idempotency_key == "k1"
    assert rec.status == 200
    assert sum(len(k) + len(v) for k, v in rec.headers.items()) <= _recording.RECORDED_HEADERS_CHARS
    assert all(len(k) <= _recording.RECORDED_NAME_CHARS + 3 for k in rec.headers)


async def test_the_requests_kept_stay_under_max_record_bytes() -> None:
    budget = 1024 * 1024
    async with FakeStripe(max_record_bytes=budget) as fake:
        attacks = list(hostile_requests(fake.api_key).values())
        for i in range(60):
            await send_raw(fake, attacks[i % len(attacks)])
        assert 1 < len(fake.requests) < 60  # the oldest were dropped for their size
        assert sum(retained(r) for r in fake.requests) <= budget + _recording.RECORD_BYTES
        fake.requests.clear()  # a test may clear the list; the count starts again
        assert await good_request(fake) == 200
        assert len(fake.requests) == 1


async def test_sessions_and_remembered_answers_stay_under_max_record_bytes() -> None:
    budget = 512 * 1024
    filters = {"payment_method_allow_redisplay_filters": ["always", "limited"] * 450}
    form = {
        "components": {"payment_element": {"enabled": True, "features": filters}},
        "customer": "cus_" + "x" * 4990,
        "expand": ["customer"],
    }
    async with FakeStripe(max_record_bytes=budget) as fake:
        for i in range(40):
            await send_raw(
                fake,
                request_bytes(
                    fake.api_key,
                    encode(form).encode(),
                    f"Idempotency-Key: k{i}",
                    "Connection: close",
                ),
            )
        assert fake.created == 40
        assert 1 <= len(fake.sessions) < 40
        assert fake.session_keys == [f"k{i}" for i in range(40 - len(fake.sessions), 40)]
        assert sum(retained(s) for s in fake.sessions) <= budget
        stored = fake._stored.values()
        assert 1 <= len(stored) < 40
        assert sum(len(s.body) + len(s.fingerprint) for s in stored) <= budget
        assert all(len(s.fingerprint) == 64 for s in stored)  # a digest, not the form


# --- finding 9: duplicate Idempotency-Key, malformed heads --------------------------------


async def test_two_idempotency_keys_are_refused_and_neither_is_echoed(fake: FakeStripe) -> None:
    answer = await send_raw(
        fake,
        request_bytes(
            fake.api_key, BODY, "Idempotency-Key: a", "Idempotency-Key: b", "Connection: close"
        ),
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"idempotency-key" not in head.lower()
    assert b"Idempotency-Key" in body and b"more than one" in body
    assert b'"type": "invalid_request_error"' in body
    assert fake.created == 0


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/customer_sessions HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 9000 + b"\r\n\r\n",
        b"POST /v1/customer_sessions HTTP/1.1\r\nIdempotency-Key: \x1b[31m\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # TLS to the HTTP port
        b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["long-line", "esc-in-header", "tls", "two-lengths"],
)
async def test_a_malformed_head_is_a_400_and_one_log_line_without_traceback(
    fake: FakeStripe, head: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = await send_raw(fake, head)
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer[:80]
    assert await good_request(fake) == 200
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert noisy == []
    lines = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(lines) == 1 and "\x1b" not in lines[0] and "aaaa" not in lines[0]


def test_a_recorded_request_still_builds_by_hand() -> None:
    rec = RecordedRequest("POST", "/", {}, "", {}, "req_1")
    assert rec.status is None


async def test_a_client_gone_mid_body_is_recorded_quietly(
    fake: FakeStripe, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends half its body and leaves: no ERROR traceback, no 500 recorded."""
    caplog.set_level(logging.DEBUG)
    _, writer = await asyncio.open_connection(fake.host, fake.port)
    whole = request_bytes(fake.api_key)
    writer.write(whole[: len(whole) - len(BODY) // 2])
    await writer.drain()
    deadline = time.monotonic() + DEADLINE
    while not fake.requests:  # the head arrived: the fake is reading the body
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    writer.transport.abort()  # gone, mid-body
    while fake.requests[-1].status is None:
        assert time.monotonic() < deadline, "the fake never finished the request"
        await asyncio.sleep(0.01)
    assert fake.requests[-1].status == 400
    assert await good_request(fake) == 200
    noisy = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert noisy == [], [r.getMessage() for r in noisy]
