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
VERSION = "2026-09-30.endive"
PARAMS: dict[str, Any] = {
    "customer": "cus_bench",
    "components": {"pricing_table": {"enabled": True}},
}
BODY = "components[pricing_table][enabled]=true&customer=cus_bench"
WARMUP = 200

Factory = Callable[
    [str], Awaitable[tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]]
]


async def raw_aiohttp(
    url: str,
) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession()
    endpoint = url + "/v1/customer_sessions"
    base = {
        "Authorization": f"Bearer {KEY}",
        "Stripe-Version": VERSION,
        "Content-Type": "application/x-www-form-urlencoded",
    }

    async def one() -> Any:
        headers = {**base, "Idempotency-Key": str(uuid.uuid4())}
        async with session.post(endpoint, data=BODY, headers=headers) as resp:
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
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
