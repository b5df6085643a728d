"""``demo --processes N``: N batch processes against one rate-limited fake, twice.

First each process paces itself at the account's rate (what every Stripe library does
today), then all of them share one budget through Redis. The 429 counts, side by side,
show what sharing the budget is for. Redis comes from ``--redis-url`` (or
``$STRIPE_SESSIONS_REDIS_URL``); without one, a ``redis-server`` on the PATH is started
for the demo in a temporary directory and stopped after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from ..testing import FakeStripe, RedisServer

__all__ = ["run_processes_demo"]

#: Stripe's test-mode limit, which the demo's fake enforces.
RATE = 25.0


@contextlib.contextmanager
def _redis(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    try:
        server = RedisServer()
    except FileNotFoundError:
        raise SystemExit(
            "error: demo --processes needs Redis: give --redis-url or install redis-server"
        ) from None
    with server:
        yield server.url


async def _round(
    fake: FakeStripe, files: list[Path], redis_url: str | None
) -> tuple[int, int, int, float]:
    """Run one batch process per file; return 429s, created, duplicates and seconds."""
    fake.reset()
    shared = [] if redis_url is None else [
        "--redis-url", redis_url, "--batch-share", "1", "--limiter-name", uuid.uuid4().hex,
    ]  # fmt: skip
    started = time.monotonic()
    env = {k: v for k, v in os.environ.items() if k != "STRIPE_SESSIONS_REDIS_URL"}
    env["STRIPE_API_KEY"] = fake.api_key  # never in argv, where ps shows it
    procs = []
    for path in files:
        command = [
            sys.executable, "-m", "stripe_sessions", "batch", str(path),
            "--base-url", fake.url, "--rate", str(RATE), *shared,
        ]  # fmt: skip
        procs.append(
            await asyncio.create_subprocess_exec(
                *command,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
            )
        )
    await asyncio.gather(*(p.wait() for p in procs))
    seconds = time.monotonic() - started
    limited = sum(1 for r in fake.requests if r.status == 429)
    keys = [k for k in fake.session_keys if k]
    return limited, fake.created, len(keys) - len(set(keys)), seconds


async def run_processes_demo(args: argparse.Namespace) -> int:
    """Run the two rounds and print them side by side; returns the exit code."""
    n = args.processes
    per = max(1, args.count // n)
    print(
        f"{n} processes x {per} sessions against a fake limited to {RATE:g} requests/s "
        "(Stripe's test mode):",
        file=sys.stderr,
    )
    redis_url = args.redis_url or os.environ.get("STRIPE_SESSIONS_REDIS_URL")
    with tempfile.TemporaryDirectory() as workdir:
        files = []
        for i in range(n):
            path = Path(workdir) / f"ids-{i}.txt"
            path.write_text("".join(f"cus_p{i}_{j:05d}\n" for j in range(per)))
            files.append(path)
        with _redis(redis_url) as url:
            async with FakeStripe(rate_limit=RATE) as fake:
                alone = await _round(fake, files, None)
                shared = await _round(fake, files, url)
    print(f"{'':28s} {'429s':>6s} {'created':>8s} {'duplicates':>11s} {'time':>8s}")
    for label, (limited, created, dupes, seconds) in (
        (f"each paced at {RATE:g}/s", alone),
        ("one shared budget (Redis)", shared),
    ):
        print(f"{label:28s} {limited:6d} {created:8d} {dupes:11d} {seconds:7.1f}s")
    return 0 if shared[0] == 0 and shared[1] == n * per else 1
