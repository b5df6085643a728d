"""Redis credentials never shown (issue #18, item 5): repr, logs, errors, traceback locals.

Seen: ``unix:///path/redis.sock?db=0&password=...`` (redis-py's documented unix-socket
form, which really authenticates) appeared in full in ``repr(RedisRateLimiter)`` and in
its warning; only ``user:pass@`` was masked.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

import stripe_sessions as ss
from stripe_sessions._limits.redis_url import RedisURL
from tests.helpers import close_server, free_port

SECRET = "S3CRET-pw"


def forms(tmp: Path, port: int) -> list[tuple[str, tuple[str, ...]]]:
    """Every credential form redis-py reads, and what must never be shown for it."""
    return [
        (f"redis://user:{SECRET}@127.0.0.1:{port}/0", (SECRET,)),
        (f"redis://:{SECRET}@127.0.0.1:{port}/0", (SECRET,)),
        (f"redis://127.0.0.1:{port}/0?password={SECRET}", (SECRET,)),
        (f"redis://127.0.0.1:{port}/0?username=u&password={SECRET}&db=0", (SECRET,)),
        (f"unix://{tmp}/redis.sock?db=0&password={SECRET}", (SECRET,)),
        (f"rediss://user:{SECRET}@127.0.0.1:{port}/0", (SECRET,)),
        (f"redis://:S3CRET%40pw@127.0.0.1:{port}/0", ("S3CRET@pw", "S3CRET%40pw")),
        (f"redis://127.0.0.1:{port}/0?password=S3CRET+pw", ("S3CRET pw", "S3CRET+pw")),
        (f"redis://127.0.0.1:{port}/0?password=S3CRET%2Bpw", ("S3CRET+pw", "S3CRET%2Bpw")),
    ]


def assert_hidden(text: str, secrets: tuple[str, ...]) -> None:
    for secret in secrets:
        assert secret not in text, text


def with_locals(e: BaseException) -> str:
    """The traceback with every frame's locals, as a crash reporter renders it.

    Frames of this file are left out: the test itself wrote the URL in plain text.
    """
    rendered: traceback.TracebackException | None
    rendered = traceback.TracebackException.from_exception(e, capture_locals=True)
    shown = []
    while rendered is not None:
        for frame in rendered.stack:
            if frame.filename != __file__:
                shown.append(f"{frame.filename}:{frame.name} {frame.locals}")
        shown.append("".join(rendered.format_exception_only()))
        rendered = rendered.__cause__ or rendered.__context__
    return "\n".join(shown)


async def test_every_credential_form_is_masked_in_repr_and_the_outage_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="stripe_sessions")
    for url, secrets in forms(tmp_path, free_port()):
        caplog.clear()
        limiter = ss.RedisRateLimiter(url, rate=25, name="secrets", redis_timeout=0.5)
        assert_hidden(repr(limiter), secrets)
        assert "****" in repr(limiter)
        assert_hidden(repr(vars(limiter)), secrets)  # every attribute's repr, the URL's too
        assert_hidden(repr(RedisURL(url)) + str(RedisURL(url)), secrets)
        await limiter.acquire(batch=False, timeout=1)  # Redis down: falls back, warns
        await limiter.rate_limited(None)
        await limiter.aclose()
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "failed" in logged, url
        assert_hidden(logged, secrets)


@pytest.mark.parametrize(
    ("url", "kwargs"),
    [
        (f"redis://:{SECRET}@127.0.0.1:1/0", {"rate": 0}),
        (f"unix:///tmp/x.sock?password={SECRET}", {"rate": 25, "recovery": 0}),
        (f"redis://:{SECRET}@127.0.0.1:1/0?no_such_option=1", {"rate": 25}),
        (f"redis://:{SECRET}@127.0.0.1:port/0", {"rate": 25}),
        (f"redis://:{SECRET}/x@127.0.0.1:1/0", {"rate": 25}),  # an unencoded / in it
        (f"unix:///tmp/x.sock?password={SECRET}", {"rate": 25, "cluster": True}),
    ],
)
def test_construction_errors_and_their_traceback_locals_hide_the_password(
    url: str, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ss.ValidationError) as info:
        ss.RedisRateLimiter(url, **kwargs)  # type: ignore[arg-type]
    e = info.value
    assert_hidden(str(e) + repr(e), (SECRET,))
    # Rendered with every frame's locals (as rich, sentry or pytest --showlocals do).
    assert_hidden(with_locals(e), (SECRET,))
    assert e.__context__ is None and e.__cause__ is None  # no chained redis-py frames


async def test_a_cancelled_wait_on_a_silent_redis_leaves_no_password_in_locals() -> None:
    # A "Redis" that accepts and never answers: the limiter is inside redis-py's frames
    # when the caller cancels. What propagates is rendered with locals, as a crash
    # reporter would.
    handlers: list[asyncio.Task[None]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for url in (
        f"redis://:{SECRET}@127.0.0.1:{port}/0",
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
    ):
        limiter = ss.RedisRateLimiter(url, rate=25, name="silent", redis_timeout=30)
        task = asyncio.create_task(limiter.acquire(batch=True, timeout=5))
        await asyncio.sleep(0.2)  # connected, AUTH sent, waiting for an answer
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        assert_hidden(with_locals(info.value), (SECRET,))
        await limiter.aclose()
    await asyncio.wait_for(asyncio.gather(*handlers), 5)  # the limiter closed its sockets
    await close_server(server)


@pytest.fixture
def auth_redis(tmp_path: Path) -> Iterator[Path]:
    """A redis-server that requires a password, on a unix socket only."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("no redis-server binary")
    sock = tmp_path / "redis.sock"
    proc = subprocess.Popen(
        [
            binary, "--port", "0", "--unixsocket", str(sock), "--requirepass", SECRET,
            "--dir", str(tmp_path), "--save", "", "--appendonly", "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(500):
            if sock.exists():
                break
            time.sleep(0.02)
        yield sock
    finally:
        proc.kill()
        proc.wait()


async def test_the_unix_socket_password_form_authenticates_and_stays_hidden(
    auth_redis: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import redis  # noqa: PLC0415

    caplog.set_level(logging.WARNING, logger="stripe_sessions")
    good = ss.RedisRateLimiter(f"unix://{auth_redis}?db=0&password={SECRET}", rate=25, name="u")
    await good.acquire(batch=True, timeout=1)
    await good.aclose()
    assert not caplog.records  # it authenticated: no fallback
    raw = redis.Redis(unix_socket_path=str(auth_redis), password=SECRET)
    assert raw.exists("stripe_sessions:rate:{u}:batch") == 1
    raw.close()
    bad = ss.RedisRateLimiter(f"unix://{auth_redis}?db=0&password=wrong-{SECRET}", rate=25)
    await bad.acquire(batch=True, timeout=1)
    await bad.aclose()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "failed" in logged
    assert_hidden(logged + repr(bad), (SECRET, f"wrong-{SECRET}"))
