"""Command line: ``python -m stripe_sessions {demo,create,batch,fake-server}``."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from ._async_client import AsyncClient
from ._batch import BatchProgress, BatchResult
from ._errors import StripeError
from ._params import _NAMES, Components
from .testing import FakeStripe, FaultMix

COMPONENTS = sorted(_NAMES[Components])


class Progress:
    """A single-line progress counter on stderr (redrawn in place when stderr is a terminal)."""

    def __init__(self, stream: TextIO = sys.stderr, label: str = "sessions") -> None:
        self.stream = stream
        self.label = label
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self._last = 0.0

    def __call__(self, p: BatchProgress) -> None:
        """Redraw the counter (at most every 0.1 s on a terminal, every 2 s otherwise)."""
        now = time.monotonic()
        final = p.total is not None and p.done == p.total
        if not final and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        total = f"/{p.total}" if p.total is not None else ""
        width = 30
        bar = ""
        if p.total:
            filled = int(width * p.done / p.total)
            bar = "[" + "#" * filled + "." * (width - filled) + "] "
        rate = p.done / max(now - self.start, 1e-9)
        line = (
            f"{bar}{p.done}{total} {self.label}  ok {p.succeeded}  failed {p.failed}  "
            f"retried {p.retried}  {rate:.0f}/s"
        )
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _components(names: Sequence[str] | None) -> dict[str, Any]:
    return {name: {"enabled": True} for name in (names or ["pricing_table"])}


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def _summary(results: list[BatchResult], wall: float) -> str:
    ok = [r for r in results if r.ok]
    latencies = [r.elapsed * 1000 for r in results if r.attempts]
    retried = sum(max(0, r.attempts - 1) for r in results)
    return (
        f"created {len(ok)}, failed {len(results) - len(ok)}, retried {retried} in "
        f"{wall:.2f}s ({len(results) / max(wall, 1e-9):.0f} sessions/s); latency "
        f"p50 {_percentile(latencies, 0.5):.1f} ms, p99 {_percentile(latencies, 0.99):.1f} ms"
    )


async def _demo(args: argparse.Namespace) -> int:
    faults = FaultMix(server_error=0.05, reset_after=0.02, lock_timeout=0.02, rate_limit=0.01)
    async with FakeStripe(faults=faults, seed=args.seed, latency=0.01) as fake:
        print(
            f"FakeStripe serving on {fake.url} (faults: 5% 5xx, 2% resets, 3% 429)", file=sys.stderr
        )
        async with AsyncClient(api_key=fake.api_key, base_url=fake.url) as stripe:
            session = await stripe.customer_sessions.create(
                customer="cus_demo", components={"pricing_table": {"enabled": True}}
            )
            print(
                f"one session for {session.customer_id}: request {session.request_id}, "
                f"expires {session.expires_at:%H:%M:%S} UTC (client secret not shown)",
                file=sys.stderr,
            )
            params = [
                {"customer": f"cus_{i:05d}", "components": _components(args.component)}
                for i in range(args.count)
            ]
            progress = Progress()
            t0 = time.monotonic()
            results = await stripe.customer_sessions.create_many(
                params,
                concurrency=args.concurrency,
                rate_limit=args.rate,
                on_progress=progress,
                batch_key="demo",
            )
            wall = time.monotonic() - t0
            progress.close()
        print(_summary(results, wall))
        keys = [k for k in fake.session_keys if k and k.startswith("demo-")]
        duplicates = len(keys) - len(set(keys))
        print(
            f"server: {fake.created - 1} batch sessions created for {len(results)} inputs, "
            f"{duplicates} duplicates, {len(fake.requests)} requests in all"
        )
    return 0 if all(r.ok for r in results) else 1


def _client(args: argparse.Namespace) -> AsyncClient:
    return AsyncClient(api_key=args.api_key, base_url=args.base_url)


async def _create(args: argparse.Namespace) -> int:
    if not args.customer and not args.customer_account:
        raise SystemExit("error: give --customer or --customer-account")
    async with _client(args) as stripe:
        session = await stripe.customer_sessions.create(
            customer=args.customer,
            customer_account=args.customer_account,
            components=_components(args.component),
            expand=args.expand or None,
            idempotency_key=args.idempotency_key,
        )
    print(json.dumps(session.to_dict(), indent=2))
    return 0


def _read_ids(source: TextIO) -> Iterator[str]:
    for line in source:
        text = line.strip()
        if text and not text.startswith("#"):
            yield text


async def _batch(args: argparse.Namespace) -> int:
    source: TextIO = args.file
    components = _components(args.component)
    ids: list[str] = []

    def params() -> Iterator[dict[str, Any]]:
        for customer in _read_ids(source):
            ids.append(customer)
            yield {"customer": customer, "components": components}

    failures: list[tuple[str, BatchResult]] = []
    progress = Progress()
    try:
        async with _client(args) as stripe:
            stream = stripe.customer_sessions.stream_many(
                params(),
                concurrency=args.concurrency,
                rate_limit=args.rate,
                batch_key=args.batch_key,
                on_progress=progress,
            )
            async for r in stream:
                line: dict[str, Any] = {"index": r.index, "customer": ids[r.index]}
                if r.session is not None:
                    line["client_secret"] = r.session.client_secret
                    line["expires_at"] = int(r.session.expires_at.timestamp())
                    line["request_id"] = r.request_id
                else:
                    failures.append((ids[r.index], r))
                    err = r.error
                    line["error"] = {
                        "type": type(err).__name__,
                        "message": err.message if err else None,
                        "code": err.code if err else None,
                        "request_id": r.request_id,
                    }
                sys.stdout.write(json.dumps(line) + "\n")
    finally:
        progress.close()
        if source is not sys.stdin:
            source.close()  # argparse opened it
    for customer, r in failures:
        print(f"failed: #{r.index} {customer}: {r.error}", file=sys.stderr)
    return 1 if failures else 0


async def _fake_server(args: argparse.Namespace) -> int:
    async with FakeStripe(host=args.host, port=args.port, rate_limit=args.rate_limit) as fake:
        print(f"FakeStripe listening on {fake.url}", file=sys.stderr)
        print(
            f"use api key {fake.api_key} (any sk_test_... key works); Ctrl-C stops", file=sys.stderr
        )
        await asyncio.Event().wait()
    return 0  # pragma: no cover - ends with Ctrl-C


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stripe-sessions",
        description="Create Stripe Customer Sessions, or try the SDK against an embedded fake.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    def component_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--component",
            action="append",
            choices=COMPONENTS,
            help="component to enable (repeatable; default pricing_table)",
        )

    def api_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api-key", default=None, help="secret key (default: $STRIPE_API_KEY)")
        p.add_argument(
            "--base-url",
            default=None,
            help="API base URL (default https://api.stripe.com; a fake's URL)",
        )

    demo = sub.add_parser("demo", help="batch-create sessions against the embedded fake")
    demo.add_argument("--count", type=int, default=300, help="sessions to create (300)")
    demo.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    demo.add_argument("--rate", type=float, default=150.0, help="requests per second (150)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the fake's faults (1)")
    component_option(demo)
    demo.set_defaults(run=_demo)

    create = sub.add_parser("create", help="create one session and print it as JSON")
    create.add_argument("--customer", help="customer id, cus_...")
    create.add_argument("--customer-account", help="account id, acct_...")
    create.add_argument("--expand", action="append", help="field to expand (customer)")
    create.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    component_option(create)
    api_options(create)
    create.set_defaults(run=_create)

    batch = sub.add_parser(
        "batch",
        help="create one session per customer id read from a file or stdin",
        description="Reads customer ids, one per line, and writes JSON lines to stdout; "
        "progress goes to stderr. Exits 1 when any item failed, listing the failures.",
    )
    batch.add_argument(
        "file",
        nargs="?",
        type=argparse.FileType("r", encoding="utf-8"),
        default=sys.stdin,
        help="file of customer ids (default: stdin)",
    )
    batch.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    batch.add_argument("--rate", type=float, default=20.0, help="requests per second (20)")
    batch.add_argument("--batch-key", help="reuse to re-run a batch without duplicates")
    component_option(batch)
    api_options(batch)
    batch.set_defaults(run=_batch)

    fake = sub.add_parser("fake-server", help="run the embedded fake Stripe until Ctrl-C")
    fake.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    fake.add_argument("--port", type=int, default=12111, help="port (12111)")
    fake.add_argument("--rate-limit", type=float, default=None, help="requests/s before 429s")
    fake.set_defaults(run=_fake_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        code: int = asyncio.run(args.run(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (StripeError, ValueError, OSError) as e:
        if args.debug or os.environ.get("STRIPE_SESSIONS_DEBUG"):
            traceback.print_exc()
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
