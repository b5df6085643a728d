"""Side-by-side benchmarks: stripe-sessions against raw aiohttp and Stripe's own library.

The fake server runs in its own process; every client run is a fresh process; the
clients are interleaved over several repetitions and medians are reported, with
ratios to the raw baseline (the machines are shared and noisy: ratios, not seconds).

    python benchmarks/run.py [--scenario async] [--reps 5] [--n 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
#: The import scenario: what each measured import runs after ``import aiohttp`` (the
#: baseline runs nothing more), timed in-process in a fresh interpreter.
IMPORTS = {
    "aiohttp": "",
    "stripe_sessions.AsyncClient": "import stripe_sessions; stripe_sessions.AsyncClient",
    "stripe_sessions.Client": "import stripe_sessions; stripe_sessions.Client",
    "stripe (stripe-python)": "import stripe; stripe.StripeClient",
}
IMPORT_SCRIPT = """
import time
t0 = time.perf_counter()
import aiohttp
t1 = time.perf_counter()
{code}
t2 = time.perf_counter()
print((t1 - t0) * 1000, (t2 - t1) * 1000)
"""
SCENARIOS: dict[str, tuple[str, list[str]]] = {
    # scenario: (baseline, clients)
    "async": ("raw-aiohttp", ["raw-aiohttp", "stripe-sessions", "stripe-python"]),
    "sync": (
        "raw-http.client",
        [
            "raw-http.client",
            "stripe-sessions-sync",
            "stripe-python-sync",
            "floor:aiohttp-via-loop-thread",
            "floor:asyncio-protocol-via-loop-thread",
        ],
    ),
    # The yardstick for batch throughput (issue 19): the same creates run by
    # asyncio.gather over this SDK's create, at the same concurrency. The raw gathers
    # (only the secrets kept; each answer kept) stay in the table for information.
    "batch": (
        "gather-stripe-sessions",
        [
            "gather-stripe-sessions",
            "create_many",
            "create_many-list",
            "gather-raw-aiohttp",
            "gather-raw-aiohttp-kept",
        ],
    ),
    # The same yardstick, paired within one process (see clients.run_batch_paired).
    "batch-paired": ("gather-stripe-sessions", []),
    "stream-memory": ("stream_many", ["stream_many"]),
    "import": ("aiohttp", list(IMPORTS)),
    "limiter": (
        "create_many-list",
        ["create_many-list", "create_many+local-limiter", "create_many+redis-limiter"],
    ),
    # Its own harness (pacing.py): a rate-limited fake behind a latency proxy, R=50/s.
    "pacing": ("rate_limit", []),
}
#: Requests per run of each scenario, unless --n says otherwise.
DEFAULT_N = {
    "async": 3000,
    "sync": 1500,
    "batch": 3000,
    "batch-paired": 1000,
    "stream-memory": 100_000,
    "limiter": 3000,
}
METRICS = ["cpu_us_per_req", "rps", "p50_ms", "p99_ms", "peak_rss_mib"]


def start_server(fake: bool = False) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), *(["--fake"] if fake else [])],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().strip()
    return proc, f"http://127.0.0.1:{port}"


def start_redis() -> str:
    """A redis-server on a free port for the limiter scenario (killed at exit)."""
    import atexit

    from stripe_sessions.testing import RedisServer

    try:
        server = RedisServer()
    except FileNotFoundError:
        raise SystemExit("the limiter scenario needs redis-server (or BENCH_REDIS_URL)") from None
    server.start()
    atexit.register(server.stop)
    return server.url


def run_one(scenario: str, client: str, url: str, n: int, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE / "clients.py"), scenario, client, url, str(n), str(concurrency)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--n", type=int, default=None, help="requests per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--fake",
        action="store_true",
        help="serve the embedded fake (the server is then the limit) instead of the "
        "Stripe-like server that answers at once (the client is then the limit)",
    )
    args = parser.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# server: {'the embedded fake' if args.fake else 'Stripe-like (server.py)'}")
    server, url = start_server(args.fake)
    try:
        for scenario in args.scenario or list(SCENARIOS):
            baseline, clients = SCENARIOS[scenario]
            if scenario == "import":
                report_imports(args.reps)
                continue
            if scenario == "pacing":  # about 2 minutes a repetition
                sys.stdout.flush()
                subprocess.run(
                    [sys.executable, str(HERE / "pacing.py"), "--reps", str(args.reps)], check=True
                )
                continue
            n = args.n or DEFAULT_N[scenario]
            if scenario == "limiter" and "BENCH_REDIS_URL" not in os.environ:
                os.environ["BENCH_REDIS_URL"] = start_redis()
            if scenario == "batch-paired":  # --reps processes, each PAIRED_ROUNDS rounds
                paired = [
                    run_one(scenario, "paired", url, n, args.concurrency) for _ in range(args.reps)
                ]
                report_paired(paired, n, args)
                continue
            if scenario == "stream-memory":
                result = run_one(scenario, "stream_many", url, n, args.concurrency)
                report_memory(result, args.concurrency)
                continue
            runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
            for _ in range(args.reps):
                order = clients[:]
                random.shuffle(order)
                for client in order:
                    runs[client].append(run_one(scenario, client, url, n, args.concurrency))
            report(scenario, baseline, runs, args, n)
    finally:
        server.terminate()
        server.wait()


def report_imports(reps: int) -> None:
    """Import times in fresh processes, interleaved; medians of ``reps`` (at least 21)."""
    import compileall

    import stripe_sessions

    # As an installed wheel has (pip compiles it): without bytecode every import would
    # compile the sources first. This machine sets PYTHONDONTWRITEBYTECODE=1, so an
    # editable install never gets its own, and its imports cost about 20 ms more.
    compileall.compile_dir(Path(stripe_sessions.__file__).parent, quiet=1)
    reps = max(reps, 21)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in IMPORTS}
    for _ in range(reps):
        order = list(IMPORTS)
        random.shuffle(order)
        for name in order:
            script = IMPORT_SCRIPT.format(code=IMPORTS[name])
            out = subprocess.run(
                [sys.executable, "-c", script], capture_output=True, text=True, check=True
            )
            aio, more = map(float, out.stdout.split())
            times[name].append((aio, more))
    print(f"\n## scenario import: fresh processes, reps={reps} (medians, bytecode compiled)\n")
    print("| import | ms | ms more than `import aiohttp` |")
    print("|---|---|---|")
    for name, ts in times.items():
        aio = statistics.median(t[0] for t in ts)
        more = statistics.median(t[1] for t in ts)
        shown = "`import aiohttp`" if not IMPORTS[name] else f"`{IMPORTS[name]}`"
        print(f"| {shown} | {aio + more:.1f} | {more:+.1f} |")
    sys.stdout.flush()


def report_paired(results: list[dict[str, Any]], n: int, args: Any) -> None:
    cpu: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    for result in results:
        for name, values in result["cpu_us_per_req"].items():
            cpu.setdefault(name, []).extend(values)
        for name, values in result["ratios"].items():
            ratios.setdefault(name, []).extend(values)
    rounds = len(next(iter(cpu.values())))
    print(
        f"\n## scenario batch-paired: n={n}, concurrency={args.concurrency}, {rounds} rounds "
        f"in {len(results)} processes (medians)\n"
    )
    print("| client | CPU µs/req | CPU / gather over create, per round: median (min-max) |")
    print("|---|---|---|")
    for name, values in cpu.items():
        r = ratios.get(name)
        shown = (
            "1.00x (the yardstick)"
            if r is None
            else f"**{statistics.median(r):.3f}x** ({min(r):.2f}-{max(r):.2f})"
        )
        print(f"| {name} | {statistics.median(values):.0f} | {shown} |")
    sys.stdout.flush()


def report_memory(result: dict[str, Any], concurrency: int) -> None:
    print(
        f"\n## scenario stream-memory: stream_many over {result['requests']} lazily generated "
        f"inputs, concurrency={concurrency}\n"
    )
    print(f"baseline RSS {result['baseline_rss_mib']:.1f} MiB; {result['rps']:.0f} req/s")
    print("| items done | RSS MiB |")
    print("|---|---|")
    for done, rss in result["samples"]:
        print(f"| {done} | {rss:.1f} |")
    print(f"\npeak growth over baseline: {result['growth_mib']:.1f} MiB")
    sys.stdout.flush()


def report(
    scenario: str, baseline: str, runs: dict[str, list[dict[str, Any]]], args: Any, n: int
) -> None:
    med = {c: {m: statistics.median(r[m] for r in rs) for m in METRICS} for c, rs in runs.items()}
    base_cpu = med[baseline]["cpu_us_per_req"]
    base_rps = med[baseline]["rps"]
    print(
        f"\n## scenario {scenario}: n={n}, concurrency={args.concurrency}, "
        f"reps={args.reps} (medians)\n"
    )
    print(
        f"| client | CPU µs/req | CPU vs {baseline} | req/s | req/s vs {baseline} "
        "| p50 ms | p99 ms | peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for client, m in med.items():
        print(
            f"| {client} | {m['cpu_us_per_req']:.0f} | {m['cpu_us_per_req'] / base_cpu:.2f}x | "
            f"{m['rps']:.0f} | {m['rps'] / base_rps:.1%} | "
            f"{m['p50_ms']:.1f} | {m['p99_ms']:.1f} | {m['peak_rss_mib']:.0f} |"
        )
    if scenario == "batch":
        # The batch target: each repetition's ratio (its runs are neighbours in time,
        # so they share the machine's load), then the median of those.
        for client in ("create_many", "create_many-list"):
            ratios = [
                r["cpu_us_per_req"] / b["cpu_us_per_req"]
                for r, b in zip(runs[client], runs[baseline], strict=True)
            ]
            print(
                f"\n{client}: CPU per item / {baseline}, per repetition: "
                f"{', '.join(f'{x:.2f}' for x in ratios)}; median "
                f"**{statistics.median(ratios):.2f}x** (target: at most 1.10x)"
            )
    for client, rs in runs.items():
        trips = [r.get("redis_round_trips_per_req", 0.0) for r in rs]
        if any(trips):
            extra = statistics.median(r["cpu_us_per_req"] for r in rs) - base_cpu
            print(
                f"\n{client}: {statistics.median(trips):.2f} Redis round trips per create; "
                f"{extra:.0f} µs more client CPU per create than {baseline}"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
