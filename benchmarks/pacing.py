"""Pacing: how close batches get to a rate limit, with no 429s and no delay to live calls.

A fake Stripe limits the account to R requests/s (``FakeStripe(rate_limit=R)``: a token
bucket of R tokens, full at the start, refilled at R per second) and answers behind a
proxy that adds a realistic, jittered latency. Each configuration runs a batch of
about ``--seconds`` x R creates, and live ``create`` calls (``--live`` per second, in
total) while it runs, in fresh processes:

- ``rate_limit``: one process, ``create_many(rate_limit=R)``, no live calls;
- ``rate_limit+live``: the same, with live calls from the same client (nothing paces
  them: this is what a process without a ``rate_limiter`` does);
- ``local``: one process, ``AsyncClient(rate_limiter=LocalRateLimiter(R, batch_share=1))``
  and ``create_many(rate_limit=None)``, with live calls;
- ``redis4``: four processes, each with its own client and a ``RedisRateLimiter`` (same
  Redis, name and rate; batch_share=1) on one real redis-server, with live calls
  from every process;
- ``aiolimiter``: the yardstick, one process, a hand-written ``asyncio.gather`` (32 at
  a time) over this SDK's ``create`` (no retries of its own), each attempt behind one
  ``aiolimiter.AsyncLimiter(R, 1)``, a 429 retried after 1 s; live calls go through the
  same limiter.

Reported, from the times the server recorded: the rate of successful creates over the
steady window (the first and last ``--margin`` seconds of the run left out) as a
fraction of R, the 429s over the whole run, and the live calls' extra wait: from the
caller's ``create`` to its request reaching the proxy (the limiter's wait; the
client and proxy share the machine's monotonic clock), p50 / p99 / max.

    python benchmarks/pacing.py [--rate 50] [--seconds 20] [--live 4] [--reps 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
KEY = "sk_test_fake_0123456789abcdef"
COMPONENTS: dict[str, Any] = {"pricing_table": {"enabled": True}}
CONFIGS = ["rate_limit", "rate_limit+live", "local", "redis4", "aiolimiter"]
#: One way on the network, each way (seconds, uniform): the fake sees a request this
#: long after it was sent, so arrivals are jittered as they would be at Stripe.
ONE_WAY = (0.005, 0.025)
#: Stripe's work on a create that got through the rate limiter (seconds, uniform). With
#: both ways, a create takes 80-250 ms; a 429 comes back after the network time only.
PROCESSING = (0.070, 0.200)
#: Batch concurrency per process: R x 0.25 s in flight is enough to keep the pace.
CONCURRENCY = 16
YARDSTICK_CONCURRENCY = 32


# --- the server: FakeStripe behind a latency-adding proxy ---------------------------------


async def serve(rate: float, seed: int) -> None:
    """FakeStripe limited at ``rate``, behind a proxy adding latency; prints the proxy's port."""
    import aiohttp
    from aiohttp import web

    from stripe_sessions.testing import FakeStripe

    rng = random.Random(seed)
    fake = FakeStripe(rate_limit=rate)
    await fake.start()
    upstream = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    arrivals: list[tuple[float, str]] = []  # (when the request reached the proxy, customer)
    keep = ("Request-Id", "Idempotency-Key", "Idempotent-Replayed", "Original-Request")
    forward = ("Authorization", "Stripe-Version", "Content-Type", "Idempotency-Key")

    async def proxy(request: web.Request) -> web.Response:
        t_in = time.monotonic()
        body = await request.read()
        customer = urllib.parse.parse_qs(body.decode()).get("customer", [""])[0]
        arrivals.append((t_in, customer))
        await asyncio.sleep(rng.uniform(*ONE_WAY))
        headers = {k: request.headers[k] for k in forward if k in request.headers}
        async with upstream.post(fake.url + request.path, data=body, headers=headers) as resp:
            data = await resp.read()
            status = resp.status
            out = {k: resp.headers[k] for k in keep if k in resp.headers}
        if status == 200:
            await asyncio.sleep(rng.uniform(*PROCESSING))
        await asyncio.sleep(rng.uniform(*ONE_WAY))
        return web.Response(status=status, body=data, headers=out, content_type="application/json")

    async def records(request: web.Request) -> web.Response:
        served = [(r.at, r.status, r.form.get("customer", "")) for r in fake.requests]
        return web.json_response({"served": served, "arrivals": arrivals})

    app = web.Application()
    app.router.add_get("/__records", records)
    app.router.add_post("/v1/customer_sessions", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()  # until the benchmark kills this process


# --- one client process -----------------------------------------------------------------


class _Timed:
    """A rate limiter that times each live call's first acquire (the SDK's own limiter inside).

    ``times[customer]`` = (time in ``acquire``, the wait the budget booked, the Redis
    round trip): the rest is how late the sleep for the booked slot woke.
    """

    def __init__(self, inner: Any, live: contextvars.ContextVar[str | None], times: Any) -> None:
        self.inner, self.live, self.times = inner, live, times
        self.split: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar(
            "split", default=None
        )
        if hasattr(inner, "_ask"):  # RedisRateLimiter: one round trip books the slot
            ask = inner._ask

            async def timed_ask(batch: bool) -> float | None:
                t = time.monotonic()
                wait = await ask(batch)
                if not batch and (split := self.split.get()) is not None and wait is not None:
                    split[:] = [wait, time.monotonic() - t]
                return wait  # type: ignore[no-any-return]

            inner._ask = timed_ask
        else:  # LocalRateLimiter
            book = inner._wait

            def timed_wait(batch: bool, now: float) -> float:
                wait = book(batch, now)
                if not batch and (split := self.split.get()) is not None and not split:
                    split[:] = [wait, 0.0]
                return wait  # type: ignore[no-any-return]

            inner._wait = timed_wait

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        customer = None if batch else self.live.get()
        split: list[float] = []
        token = self.split.set(None if batch else split)
        t0 = time.monotonic()
        try:
            await self.inner.acquire(batch=batch, timeout=timeout)
        finally:
            self.split.reset(token)
        if customer is not None and split:
            self.times.setdefault(customer, (time.monotonic() - t0, *split))

    async def rate_limited(self, retry_after: float | None) -> None:
        await self.inner.rate_limited(retry_after)

    async def aclose(self) -> None:
        if hasattr(self.inner, "aclose"):
            await self.inner.aclose()


async def client_main(
    config: str,
    url: str,
    rate: float,
    n: int,
    live: float,
    start_at: float,
    index: int,
    redis_url: str,
    name: str,
) -> dict[str, Any]:
    import stripe_sessions as ss

    limiter: Any = None
    # --batch-share (through the environment: every worker is a process of its own).
    share = float(os.environ.get("PACING_BATCH_SHARE", "1.0"))
    if config == "local":
        limiter = ss.LocalRateLimiter(rate, batch_share=share)
    elif config == "redis4":
        limiter = ss.RedisRateLimiter(redis_url, rate=rate, name=name, batch_share=share)
    # Time spent in the limiter by each live call's first attempt (the rest of its extra
    # wait is this busy machine: event-loop lag, and Redis's round trip).
    in_limiter: dict[str, tuple[float, float, float]] = {}
    live_customer: contextvars.ContextVar[str | None] = contextvars.ContextVar("live", default=None)
    if limiter is not None:
        limiter = _Timed(limiter, live_customer, in_limiter)
    yardstick = config == "aiolimiter"
    client = ss.AsyncClient(
        api_key=KEY, base_url=url, rate_limiter=limiter, max_retries=0 if yardstick else 2
    )
    create = client.customer_sessions.create
    items = [{"customer": f"cus_b{index}_{i}", "components": COMPONENTS} for i in range(n)]
    rng = random.Random(index)
    live_calls: list[dict[str, Any]] = []
    pending: set[asyncio.Task[None]] = set()

    aio: Any = None
    if yardstick:
        from aiolimiter import AsyncLimiter

        aio = AsyncLimiter(rate, 1)

    async def paced_create(customer: str) -> tuple[bool, int]:
        """The yardstick's create: every attempt behind the AsyncLimiter, a 429 retried."""
        for attempt in range(1, 7):
            async with aio:
                pass
            try:
                await create(customer=customer, components=COMPONENTS)
            except ss.RateLimitError:
                await asyncio.sleep(1.0)
                continue
            return True, attempt
        return False, 6

    async def one_live(i: int) -> None:
        customer = f"cus_live_{index}_{i}"
        live_customer.set(customer)
        t_call = time.monotonic()
        error = None
        try:
            if yardstick:
                ok, _ = await paced_create(customer)
                error = None if ok else "rate_limit"
            else:
                await create(customer=customer, components=COMPONENTS)
        except ss.StripeError as e:
            error = e.code or type(e).__name__
        live_calls.append(
            {
                "customer": customer,
                "t_call": t_call,
                "t_done": time.monotonic(),
                "error": error,
                "in_limiter": in_limiter.get(customer),
            }
        )

    async def live_loop() -> None:
        if live <= 0:
            return
        i = 0
        next_t = time.monotonic() + rng.uniform(0, 1 / live)
        while True:
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))
            task = asyncio.create_task(one_live(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
            next_t += rng.uniform(0.5, 1.5) / live

    # Every process starts at the same moment (imports and connections made before).
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    t0 = time.monotonic()
    live_task = asyncio.create_task(live_loop())
    if yardstick:
        sem = asyncio.Semaphore(YARDSTICK_CONCURRENCY)

        async def item(params: dict[str, Any]) -> tuple[bool, int]:
            async with sem:
                return await paced_create(params["customer"])

        outcomes = await asyncio.gather(*(item(p) for p in items))
        ok = sum(o for o, _ in outcomes)
        attempts = sum(a for _, a in outcomes)
    else:
        results = await client.customer_sessions.create_many(
            items,
            concurrency=CONCURRENCY,
            rate_limit=rate if config.startswith("rate_limit") else None,
        )
        ok = sum(r.ok for r in results)
        attempts = sum(r.attempts for r in results)
    t1 = time.monotonic()
    live_task.cancel()
    await asyncio.gather(live_task, *pending, return_exceptions=True)
    await client.aclose()
    return {
        "batch_ok": ok,
        "batch_n": n,
        "batch_attempts": attempts,
        "t0": t0,
        "t1": t1,
        "live": live_calls,
    }


# --- the benchmark ----------------------------------------------------------------------


def start_server(rate: float, seed: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "serve", str(rate), str(seed)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}"


def run_config(
    config: str, rate: float, seconds: float, live: float, redis_url: str, seed: int
) -> dict[str, Any]:
    """Run one configuration against a fresh server; the raw records."""
    procs = 4 if config == "redis4" else 1
    live_rate = 0.0 if config == "rate_limit" else live
    n = round(rate * seconds)
    server, url = start_server(rate, seed)
    try:
        start_at = time.monotonic() + 3.0  # time for every client to import and connect
        name = f"pacing-{seed}-{time.time_ns()}"  # one budget, shared by this run's processes
        argv = [sys.executable, __file__, "client", config, url, str(rate)]
        clients = [
            subprocess.Popen(
                [
                    *argv,
                    *(str(n // procs + (i < n % procs)), str(live_rate / procs), str(start_at)),
                    *(str(i), redis_url, name),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(procs)
        ]
        outs = []
        for c in clients:
            stdout, _ = c.communicate(timeout=seconds * 4 + 60)
            if c.returncode != 0:
                raise SystemExit(f"{config}: a client failed ({c.returncode})")
            outs.append(json.loads(stdout.strip().splitlines()[-1]))
        with urllib.request.urlopen(url + "/__records", timeout=30) as resp:
            records = json.loads(resp.read())
    finally:
        server.terminate()
        server.wait()
    return {"config": config, "n": n, "clients": outs, **records}


def analyse(raw: dict[str, Any], rate: float, margin: float) -> dict[str, Any]:
    """Achieved rate (server side), 429s and live calls' extra wait from one run's records."""
    served = raw["served"]  # (arrival at the fake, status, customer)
    times = sorted(at for at, _, _ in served)
    start, end = times[0] + margin, times[-1] - margin
    ok_in_window = sum(1 for at, status, _ in served if status == 200 and start <= at <= end)
    achieved = ok_in_window / (end - start)
    first_arrival: dict[str, float] = {}
    for t_in, customer in raw["arrivals"]:
        first_arrival.setdefault(customer, t_in)
    waits = []
    in_limiter = []
    live_errors = 0
    for c in raw["clients"]:
        for call in c["live"]:
            if call["error"] is not None:
                live_errors += 1
            if call["customer"] in first_arrival:
                waits.append(first_arrival[call["customer"]] - call["t_call"])
            if call.get("in_limiter") is not None:  # (in acquire, booked, round trip)
                in_limiter.append(tuple(call["in_limiter"]))
    waits.sort()
    return {
        "config": raw["config"],
        "achieved": achieved,
        "fraction": achieved / rate,
        "window": end - start,
        "r429": sum(1 for _, status, _ in served if status == 429),
        "requests": len(served),
        "batch_ok": sum(c["batch_ok"] for c in raw["clients"]),
        "batch_n": raw["n"],
        "wall": max(c["t1"] for c in raw["clients"]) - min(c["t0"] for c in raw["clients"]),
        "live_waits": waits,
        "in_limiter": in_limiter,
        "live_errors": live_errors,
    }


def percentile(xs: list[float], p: float) -> float:
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, round(p / 100 * len(xs) + 0.5) - 1))  # nearest rank
    return sorted(xs)[k]


def report(results: list[dict[str, Any]], rate: float) -> None:
    print(
        f"\n## scenario pacing: R={rate:g}/s, latency {ONE_WAY[0] * 2 + PROCESSING[0]:.2f}-"
        f"{ONE_WAY[1] * 2 + PROCESSING[1]:.2f} s (jittered)\n"
    )
    print(
        "| configuration | runs | achieved (steady window) | of R | 429s | batch ok | "
        "live calls | live wait p50 ms | p99 ms | max ms | of which in the limiter, p50 / p99 ms "
        "| in the limiter: booked, Redis, late p50/p99/max ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for config in CONFIGS:
        rs = [r for r in results if r["config"] == config]
        if not rs:
            continue
        waits = sorted(w for r in rs for w in r["live_waits"])
        achieved = statistics.median(r["achieved"] for r in rs)
        fractions = ", ".join(f"{r['fraction']:.3f}" for r in rs)
        live = f"{len(waits)}" + (
            f" ({sum(r['live_errors'] for r in rs)} failed)"
            if any(r["live_errors"] for r in rs)
            else ""
        )
        ms = (
            " | ".join(f"{percentile(waits, p) * 1000:.1f}" for p in (50, 99, 100))
            if waits
            else "- | - | -"
        )
        split = [s for r in rs for s in r["in_limiter"]]
        held = [s[0] for s in split]
        ms += (
            f" | {percentile(held, 50) * 1000:.1f} / {percentile(held, 99) * 1000:.1f}"
            if held
            else " | -"
        )
        if split:  # where the time in acquire went: booked wait, Redis, late wake-up
            parts = {
                "booked": [s[1] for s in split],
                "redis": [s[2] for s in split],
                "late": [s[0] - s[1] - s[2] for s in split],
            }
            ms += " | " + ", ".join(
                f"{k} {percentile(v, 50) * 1000:.1f}/{percentile(v, 99) * 1000:.1f}/"
                f"{max(v) * 1000:.1f}"
                for k, v in parts.items()
            )
        elif waits:
            ms += " | -"
        print(
            f"| {config} | {len(rs)} | {achieved:.2f}/s | {fractions} | "
            f"{', '.join(str(r['r429']) for r in rs)} | "
            f"{sum(r['batch_ok'] for r in rs)}/{sum(r['batch_n'] for r in rs)} | {live} | {ms} |"
        )
    print(f"\none slot (1/R) = {1000 / rate:.1f} ms")
    sys.stdout.flush()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        asyncio.run(serve(float(sys.argv[2]), int(sys.argv[3])))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        a = sys.argv[2:]
        out = asyncio.run(
            client_main(
                a[0], a[1], float(a[2]), int(a[3]), float(a[4]), float(a[5]), int(a[6]), a[7], a[8]
            )
        )
        print(json.dumps(out))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="the fake's limit R, per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="batch length at R")
    parser.add_argument("--live", type=float, default=4.0, help="live calls per second, in all")
    parser.add_argument("--margin", type=float, default=3.0, help="warm-up and tail left out, s")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--config", choices=CONFIGS, action="append")
    parser.add_argument("--json", type=Path, help="also write every run's raw records here")
    parser.add_argument(
        "--batch-share",
        type=float,
        default=1.0,
        help="the limiters' batch_share (local, redis4): 1 lets batches take every slot",
    )
    args = parser.parse_args()
    os.environ["PACING_BATCH_SHARE"] = str(args.batch_share)
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    redis_url = os.environ.get("BENCH_REDIS_URL", "")
    configs = args.config or CONFIGS
    server = None
    if "redis4" in configs and not redis_url:
        from stripe_sessions.testing import RedisServer

        server = RedisServer()
        server.start()
        redis_url = server.url
    results, raws = [], []
    try:
        for rep in range(args.reps):
            order = configs[:]
            random.shuffle(order)
            for config in order:
                raw = run_config(
                    config, args.rate, args.seconds, args.live, redis_url, seed=rep * 100 + 1
                )
                raws.append(raw)
                r = analyse(raw, args.rate, args.margin)
                results.append(r)
                print(
                    f"# {config}: {r['fraction']:.3f} R, {r['r429']} x 429, "
                    f"{len(r['live_waits'])} live calls, wall {r['wall']:.1f} s",
                    flush=True,
                )
    finally:
        if server is not None:
            server.stop()
    if args.json:
        args.json.write_text(json.dumps(raws))
    report(results, args.rate)


if __name__ == "__main__":
    main()
