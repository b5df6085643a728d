"""The commands: ``demo``, ``create``, ``batch`` and ``fake-server``, each run on the event loop."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import os
import sys
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from .preflight import UsageError
from .streams import say, silence_stdout
from .text import printable

if TYPE_CHECKING:
    from .._wire.dicts import ComponentsDict, CreateParamsDict

__all__ = ["batch_command", "create_command", "demo_command", "fake_server_command"]


def _components(names: Sequence[str] | None) -> ComponentsDict:
    # Names from the command line: create checks them at run time, as for any dict.
    return cast("ComponentsDict", {name: {"enabled": True} for name in names or ["pricing_table"]})


async def demo_command(args: argparse.Namespace) -> int:
    """``demo``: a batch against the embedded fake with faults (or processes sharing Redis)."""
    if args.processes:
        from .demo import run_processes_demo  # noqa: PLC0415 - the CLI starts light

        return await run_processes_demo(args)
    from .._client import AsyncClient  # noqa: PLC0415 - the CLI starts light
    from ..testing import FakeStripe, FaultMix  # noqa: PLC0415
    from .report import Progress, Stats  # noqa: PLC0415

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
            params: list[CreateParamsDict] = [
                {"customer": f"cus_{i:05d}", "components": _components(args.component)}
                for i in range(args.count)
            ]
            stats = Stats(resumed=False)  # a fresh fake: no earlier run made any
            progress = Progress(stats, args.count)
            async for r in stripe.customer_sessions.stream_many(
                params, concurrency=args.concurrency, rate_limit=args.rate, batch_key="demo"
            ):
                stats.add(r)
                progress.update()
            progress.finish()
        print(stats.summary("demo"))
        keys = [k for k in fake.session_keys if k and k.startswith("demo-")]
        duplicates = len(keys) - len(set(keys))
        print(
            f"server: {fake.created - 1} batch sessions created for {stats.done} inputs, "
            f"{duplicates} duplicates, {len(fake.requests)} requests in all"
        )
    return 0 if stats.failed == 0 else 1


def _client(args: argparse.Namespace) -> Any:
    """The command's client; a key, URL or option the SDK refuses is a UsageError naming
    where it came from (the option or the variable), never its value."""
    from .._client import AsyncClient  # noqa: PLC0415 - the CLI starts light
    from .._errors import ValidationError  # noqa: PLC0415

    key = args.key  # main read it before the loop started
    base_url = args.base_url or None  # else the SDK reads $STRIPE_BASE_URL itself
    redis_url = getattr(args, "redis_url", None) or os.environ.get("STRIPE_SESSIONS_REDIS_URL")
    sources = {
        "api_key": "--api-key"
        if args.api_key
        else f"--api-key-file {printable(args.api_key_file)}"
        if args.api_key_file is not None
        else "STRIPE_API_KEY",
        "base_url": "--base-url" if args.base_url else "STRIPE_BASE_URL",
        "url": "--redis-url" if getattr(args, "redis_url", None) else "STRIPE_SESSIONS_REDIS_URL",
        "rate": "--rate",
        "batch_share": "--batch-share",
        "name": "--limiter-name",
    }
    limiter = None
    try:
        if redis_url and args.command == "batch":
            from .._limits.redis_limiter import RedisRateLimiter  # noqa: PLC0415 - an optional extra

            limiter = RedisRateLimiter(
                redis_url, rate=args.rate, name=args.limiter_name, batch_share=args.batch_share
            )
            args.shared = True  # the shared limiter paces the batch: no pacing of its own
            args.limiter = limiter
        return AsyncClient(api_key=key, base_url=base_url, rate_limiter=limiter)
    except ValidationError as e:
        param = e.param or ""
        message = e.message.removeprefix(f"{param}: ")
        raise UsageError(f"{sources.get(param, param or 'an option')}: {message}") from None


async def create_command(args: argparse.Namespace) -> int:
    """``create``: one session, printed as JSON; the exit code."""
    if not args.customer and not args.customer_account:
        raise UsageError("give --customer or --customer-account")
    # A key of our own, so that a session whose JSON cannot be written can be fetched
    # again by re-running with it (Stripe replays it instead of creating another).
    key = args.idempotency_key or f"cli-{uuid.uuid4().hex}"
    async with _client(args) as stripe:
        session = await stripe.customer_sessions.create(
            customer=args.customer,
            customer_account=args.customer_account,
            components=_components(args.component),
            expand=args.expand or None,
            idempotency_key=key,
        )
    try:
        if sys.stdout is None:  # main refuses a closed stdout; this is the last guard
            raise OSError(errno.EBADF, "stdout is closed")
        # The session as Stripe sent it, and whether Stripe replayed it (made before
        # under this --idempotency-key) rather than creating it now.
        shown = {**session.to_dict(), "replayed": session.idempotent_replayed}
        sys.stdout.write(json.dumps(shown, indent=2) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError) as e:  # ValueError: a closed file object
        silence_stdout()
        if isinstance(e, BrokenPipeError):
            return 141
        say(
            printable(
                f"error: cannot write to stdout: {e}; the session was created: run again "
                f"with --idempotency-key {key} to get it back without creating another",
                2000,
            )
        )
        return 3
    return 0


async def batch_command(args: argparse.Namespace) -> int:
    """``batch``: a session per id read (see :mod:`.batch`); the exit code."""
    from .batch import run_batch  # noqa: PLC0415 - the CLI starts light

    try:
        async with _client(args) as stripe:
            code: int = await run_batch(args, stripe)
    finally:
        limiter = getattr(args, "limiter", None)
        if limiter is not None:
            await limiter.aclose()
    return code


async def fake_server_command(args: argparse.Namespace) -> int:
    """``fake-server``: serve the embedded fake, with the knobs given, until Ctrl-C."""
    from ..testing import FakeStripe, FaultMix  # noqa: PLC0415 - the CLI starts light

    faults = None
    if args.fault_rate > 0:
        faults = FaultMix.spread(args.fault_rate, args.fault_kinds, args.slow_seconds)
    customers = None
    if args.customer or args.strict_customers:
        customers = set(args.customer or ())
    server = FakeStripe(
        host=args.host,
        port=args.port,
        rate_limit=args.rate_limit,
        rate_limit_reason=args.rate_limit_reason,
        faults=faults,
        seed=args.seed,
        latency=args.latency,
        latency_jitter=args.jitter,
        customers=customers,
        max_records=args.max_records,
        max_idempotency_keys=args.max_idempotency_keys,
        control=not args.no_control,
    )
    try:
        await server.start()
    except OSError as e:  # a --host that does not resolve, a --port taken or privileged
        where = printable(f"{args.host} port {args.port}", 300)
        raise UsageError(f"--host/--port: cannot listen on {where}: {e.strerror or e}") from None
    try:  # started above (not ``async with``, which would start it again)
        say(f"FakeStripe listening on {server.url}")
        say(f"use api key {server.api_key} (any sk_test_... key works); Ctrl-C stops")
        if faults is not None:
            kinds = ", ".join(dict.fromkeys(args.fault_kinds))
            say(f"faults: {args.fault_rate:.0%} of requests ({kinds})")
        if customers is not None:
            say(f"strict customers: {len(customers)} exist (POST /_fake/customers adds)")
        if server.control:
            say(f"control endpoint: {server.url}/_fake/ (see fake-server --help)")
        await asyncio.Event().wait()
    finally:
        await server.stop()
    return 0  # pragma: no cover - ends with Ctrl-C
