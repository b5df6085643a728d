"""One benchmark run of one client in a fresh process; prints a JSON line of measurements.

python benchmarks/clients.py SCENARIO CLIENT URL N CONCURRENCY
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

KEY = "sk_test_fake_0123456789abcdef"
VERSION = "2026-10-28.endive"
PARAMS: dict[str, Any] = {
    "customer": "cus_bench",
    "components": {"pricing_table": {"enabled": True}},
}
BODY = "components[pricing_table][enabled]=true&customer=cus_bench"
WARMUP = 200
#: Rounds of the paired batch yardstick (each runs every client of PAIRED once).
PAIRED_ROUNDS = 15
#: The floor's request headers: the least a client must send.
FLOOR_HEADERS = {
    "Authorization": f"Bearer {KEY}",
    "Stripe-Version": VERSION,
    "Content-Type": "application/x-www-form-urlencoded",
}

Factory = Callable[
    [str], Awaitable[tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]]
]


async def raw_aiohttp(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession()
    endpoint = url + "/v1/customer_sessions"
    base = FLOOR_HEADERS

    async def one() -> Any:
        # The floor: three headers, a pre-built body, read + json.loads; nothing else.
        async with session.post(endpoint, data=BODY, headers=base) as resp:
            data = json.loads(await resp.read())
            assert resp.status == 200, data
            return data["client_secret"]

    return one, session.close


async def stripe_sessions_async(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import stripe_sessions as ss

    client = ss.AsyncClient(api_key=KEY, base_url=url)
    create = client.customer_sessions.create

    async def one() -> Any:
        return (await create(**PARAMS)).client_secret

    return one, client.aclose


async def stripe_python_async(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import stripe

    http = stripe.AIOHTTPClient()
    client = stripe.StripeClient(
        KEY, base_addresses={"api": url}, http_client=http, stripe_version=VERSION
    )
    create = client.v1.customer_sessions.create_async

    async def one() -> Any:
        return (await create(params=PARAMS)).client_secret  # type: ignore[arg-type]

    async def close() -> None:
        await http.close_async()

    return one, close


async def gather_raw_aiohttp(url: str, n: int, concurrency: int) -> None:
    """The hand-written batch baseline: asyncio.gather over raw aiohttp, bounded by a semaphore."""
    one, close = await raw_aiohttp(url)
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> Any:
        async with gate:
            return await one()

    await asyncio.gather(*(guarded() for _ in range(n)))
    await close()


async def gather_raw_aiohttp_kept(url: str, n: int, concurrency: int) -> None:
    """The same gather, keeping each parsed answer (as create_many keeps each session)."""
    import aiohttp

    session = aiohttp.ClientSession()
    endpoint = url + "/v1/customer_sessions"
    headers = FLOOR_HEADERS
    gate = asyncio.Semaphore(concurrency)

    async def guarded() -> Any:
        async with gate, session.post(endpoint, data=BODY, headers=headers) as resp:
            return json.loads(await resp.read())

    answers = await asyncio.gather(*(guarded() for _ in range(n)))
    assert len(answers) == n
    await session.close()


async def gather_stripe_sessions(url: str, n: int, concurrency: int) -> None:
    """What a user of the SDK writes by hand: asyncio.gather over create, results kept."""
    import stripe_sessions as ss

    async with ss.AsyncClient(api_key=KEY, base_url=url) as client:
        gate = asyncio.Semaphore(concurrency)

        async def guarded() -> Any:
            async with gate:
                return await client.customer_sessions.create(**PARAMS)

        sessions = await asyncio.gather(*(guarded() for _ in range(n)))
        assert len(sessions) == n


async def create_many_stripe_sessions(url: str, n: int, concurrency: int) -> None:
    import stripe_sessions as ss

    async with ss.AsyncClient(api_key=KEY, base_url=url) as client:
        results = await client.customer_sessions.create_many(
            (PARAMS for _ in range(n)), concurrency=concurrency, rate_limit=None
        )
        assert all(r.ok for r in results)


async def create_many_from_list(url: str, n: int, concurrency: int) -> None:
    """create_many over a list: read directly, without the input thread a generator gets."""
    import stripe_sessions as ss

    async with ss.AsyncClient(api_key=KEY, base_url=url) as client:
        results = await client.customer_sessions.create_many(
            [PARAMS] * n, concurrency=concurrency, rate_limit=None
        )
        assert all(r.ok for r in results)


async def create_many_limited(url: str, n: int, concurrency: int, kind: str) -> None:
    """create_many (a list) through a rate limiter set far above the run's rate."""
    import os

    import stripe_sessions as ss

    limiter: Any
    if kind == "redis":
        limiter = ss.RedisRateLimiter(
            os.environ["BENCH_REDIS_URL"], rate=1e5, batch_share=1.0, name=uuid.uuid4().hex
        )
    else:
        limiter = ss.LocalRateLimiter(1e5, batch_share=1.0)
    async with ss.AsyncClient(api_key=KEY, base_url=url, rate_limiter=limiter) as client:
        results = await client.customer_sessions.create_many(
            [PARAMS] * n, concurrency=concurrency, rate_limit=None
        )
        assert all(r.ok for r in results)
    if kind == "redis":
        await limiter.aclose()


async def redis_calls() -> int:
    """Scripts Redis has run so far (one round trip each)."""
    import os

    from redis.asyncio import Redis

    redis = Redis.from_url(os.environ["BENCH_REDIS_URL"])
    stats = await redis.info("commandstats")
    await redis.aclose()
    return sum(v["calls"] for k, v in stats.items() if k in ("cmdstat_evalsha", "cmdstat_eval"))


BATCH_CLIENTS = {
    "gather-raw-aiohttp": gather_raw_aiohttp,
    "gather-raw-aiohttp-kept": gather_raw_aiohttp_kept,
    "gather-stripe-sessions": gather_stripe_sessions,
    "create_many": create_many_stripe_sessions,
    "create_many-list": create_many_from_list,
    "create_many+local-limiter": lambda u, n, c: create_many_limited(u, n, c, "local"),
    "create_many+redis-limiter": lambda u, n, c: create_many_limited(u, n, c, "redis"),
}


async def run_batch(name: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    await BATCH_CLIENTS[name](url, 200, concurrency)  # warm-up
    calls = await redis_calls() if name.endswith("redis-limiter") else 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await BATCH_CLIENTS[name](url, n, concurrency)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    if name.endswith("redis-limiter"):
        calls = await redis_calls() - calls
    return {
        "redis_round_trips_per_req": calls / n,
        "requests": n,
        "cpu_us_per_req": cpu / n * 1e6,
        "rps": n / wall,
        "p50_ms": 0.0,
        "p99_ms": 0.0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


#: The paired batch yardstick: the clients measured side by side in one process.
PAIRED = ("gather-stripe-sessions", "create_many-list", "create_many")


async def run_batch_paired(url: str, n: int, concurrency: int, rounds: int) -> dict[str, Any]:
    """The batch yardstick, paired: in one warm process, each round runs every client of
    :data:`PAIRED` once (in a random order) and divides each one's CPU per item by the
    gather's of the same round. Rounds last about a second, so the runs compared share
    the machine's load far more closely than separate processes minutes apart."""
    import random

    for name in PAIRED:  # warm-up: imports, the connection pool, the converter
        await BATCH_CLIENTS[name](url, 200, concurrency)
    cpu: dict[str, list[float]] = {name: [] for name in PAIRED}
    for _ in range(rounds):
        order = list(PAIRED)
        random.shuffle(order)
        for name in order:
            cpu0 = time.process_time()
            await BATCH_CLIENTS[name](url, n, concurrency)
            cpu[name].append((time.process_time() - cpu0) / n * 1e6)
    base = cpu[PAIRED[0]]
    ratios = {name: [c / b for c, b in zip(cpu[name], base, strict=True)] for name in PAIRED[1:]}
    return {"cpu_us_per_req": cpu, "ratios": ratios}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


async def run_stream_memory(name: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    """stream_many over n lazily generated inputs; RSS sampled as it goes."""
    import stripe_sessions as ss

    async with ss.AsyncClient(api_key=KEY, base_url=url) as client:
        async for _ in client.customer_sessions.stream_many(
            (PARAMS for _ in range(500)), concurrency=concurrency, rate_limit=None
        ):
            pass
        baseline = _rss_mib()
        samples: list[tuple[int, float]] = []
        done = 0
        wall0 = time.perf_counter()
        async for r in client.customer_sessions.stream_many(
            (PARAMS for _ in range(n)), concurrency=concurrency, rate_limit=None
        ):
            assert r.ok
            done += 1
            if done % (n // 10) == 0:
                samples.append((done, _rss_mib()))
        wall = time.perf_counter() - wall0
    return {
        "requests": n,
        "rps": n / wall,
        "baseline_rss_mib": baseline,
        "samples": samples,
        "growth_mib": max(m for _, m in samples) - baseline,
    }


def sync_raw_http_client(url: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
    base = FLOOR_HEADERS
    body = BODY.encode()

    def one() -> Any:
        conn.request(
            "POST",
            "/v1/customer_sessions",
            body=body,
            headers=base,
        )
        resp = conn.getresponse()
        data = json.loads(resp.read())
        assert resp.status == 200, data
        return data["client_secret"]

    return one, conn.close


def sync_stripe_sessions(url: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import stripe_sessions as ss

    client = ss.Client(api_key=KEY, base_url=url)
    create = client.customer_sessions.create

    def one() -> Any:
        return create(**PARAMS).client_secret

    return one, client.close


def sync_stripe_python(url: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    import stripe

    client = stripe.StripeClient(KEY, base_addresses={"api": url}, stripe_version=VERSION)
    create = client.v1.customer_sessions.create

    def one() -> Any:
        return create(params=PARAMS).client_secret  # type: ignore[arg-type]

    return one, lambda: None


def _loop_thread() -> tuple[asyncio.AbstractEventLoop, Callable[[], None]]:
    """An event loop in a daemon thread, as the sync client has: the hand-off floor."""
    import threading

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    return loop, stop


def sync_aiohttp_on_loop_thread(url: str) -> tuple[Callable[[], Any], Callable[[], None]]:
    """Raw aiohttp driven through a private loop thread: no SDK code at all."""
    loop, stop = _loop_thread()
    one, close = asyncio.run_coroutine_threadsafe(raw_aiohttp(url), loop).result()

    def done() -> None:
        asyncio.run_coroutine_threadsafe(close(), loop).result()
        stop()

    return lambda: asyncio.run_coroutine_threadsafe(one(), loop).result(), done


class _OneResponse(asyncio.Protocol):
    """A bare keep-alive HTTP/1.1 client protocol: Content-Length bodies only."""

    def __init__(self) -> None:
        self.buf = b""
        self.waiter: asyncio.Future[bytes] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        head, sep, body = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        if len(body) >= length and self.waiter is not None:
            self.buf = b""
            self.waiter.set_result(body[:length])


def sync_asyncio_protocol_on_loop_thread(
    url: str,
) -> tuple[Callable[[], Any], Callable[[], None]]:
    """A bare asyncio protocol (no aiohttp) through a private loop thread.

    Not a usable client (no chunked bodies, TLS, errors or pooling): it shows what the
    loop thread itself costs, apart from aiohttp's per-request machinery.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    loop, stop = _loop_thread()

    async def connect() -> _OneResponse:
        _, proto = await asyncio.get_running_loop().create_connection(
            _OneResponse, parts.hostname, parts.port
        )
        return proto

    proto = asyncio.run_coroutine_threadsafe(connect(), loop).result()
    head = (
        f"POST /v1/customer_sessions HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {KEY}\r\nStripe-Version: {VERSION}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(BODY)}\r\n"
    )

    async def one() -> Any:
        proto.waiter = asyncio.get_running_loop().create_future()
        assert proto.transport is not None
        proto.transport.write(f"{head}\r\n{BODY}".encode())
        return json.loads(await proto.waiter)["client_secret"]

    def done() -> None:
        assert proto.transport is not None
        loop.call_soon_threadsafe(proto.transport.close)
        stop()

    return lambda: asyncio.run_coroutine_threadsafe(one(), loop).result(), done


SYNC_CLIENTS = {
    "raw-http.client": sync_raw_http_client,
    "stripe-sessions-sync": sync_stripe_sessions,
    "stripe-python-sync": sync_stripe_python,
    "floor:aiohttp-via-loop-thread": sync_aiohttp_on_loop_thread,
    "floor:asyncio-protocol-via-loop-thread": sync_asyncio_protocol_on_loop_thread,
}


def run_sync(name: str, url: str, n: int) -> dict[str, Any]:
    one, close = SYNC_CLIENTS[name](url)
    for _ in range(WARMUP):
        one()
    latencies: list[float] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        one()
        latencies.append(time.perf_counter() - t0)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    close()
    return _summary(latencies, cpu, wall)


ASYNC_CLIENTS: dict[str, Factory] = {
    "raw-aiohttp": raw_aiohttp,
    "stripe-sessions": stripe_sessions_async,
    "stripe-python": stripe_python_async,
}


async def run_async(name: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    one, close = await ASYNC_CLIENTS[name](url)
    latencies: list[float] = []

    async def worker(count: int, record: bool) -> None:
        for _ in range(count):
            t0 = time.perf_counter()
            await one()
            if record:
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker(WARMUP // concurrency + 1, False) for _ in range(concurrency)))
    per_worker = n // concurrency
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(per_worker, True) for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await close()
    return _summary(latencies, cpu, wall)


def _summary(latencies: list[float], cpu: float, wall: float) -> dict[str, Any]:
    latencies.sort()
    count = len(latencies)
    return {
        "requests": count,
        "cpu_us_per_req": cpu / count * 1e6,
        "rps": count / wall,
        "p50_ms": latencies[count // 2] * 1e3,
        "p99_ms": latencies[min(count - 1, int(count * 0.99))] * 1e3,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    scenario, name, url, n, concurrency = sys.argv[1:6]
    if scenario == "async":
        result = asyncio.run(run_async(name, url, int(n), int(concurrency)))
    elif scenario == "sync":
        result = run_sync(name, url, int(n))
    elif scenario in ("batch", "limiter"):
        result = asyncio.run(run_batch(name, url, int(n), int(concurrency)))
    elif scenario == "batch-paired":
        result = asyncio.run(run_batch_paired(url, int(n), int(concurrency), PAIRED_ROUNDS))
    elif scenario == "stream-memory":
        result = asyncio.run(run_stream_memory(name, url, int(n), int(concurrency)))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
