"""Command line: ``python -m stripe_sessions {demo,create,batch,fake-server}``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import logging
import math
import os
import sys
import traceback
import uuid
from collections.abc import Sequence
from typing import Any, BinaryIO, NoReturn, TextIO

from .._version import STRIPE_API_VERSION, __version__
from .text import printable

#: The components a command-line session may enable (the API's own names; a test checks
#: them against the SDK's parameters, which are not imported here to start quickly).
COMPONENTS = (
    "active_entitlements",
    "buy_button",
    "customer_portal",
    "customer_sheet",
    "mobile_payment_element",
    "payment_element",
    "pricing_table",
)
NO_KEY = "no API key: set STRIPE_API_KEY or pass --api-key-file PATH (a file, or - for stdin)"
ARGV_KEY_WARNING = (
    "warning: --api-key puts the key in the process list (ps) and in your shell history; "
    "set STRIPE_API_KEY or pass --api-key-file PATH instead"
)
#: The largest API key file read: a key is about 100 bytes, so a bigger file is not one.
MAX_KEY_FILE = 4096


class UsageError(Exception):
    """A command line that cannot run: printed as ``prog: error: message``, exit 2."""


def read_key_file(path: str) -> str:
    """The API key in ``path`` (``-``: stdin), without one trailing newline.

    Raises UsageError naming the path, never the contents, for a file that cannot be
    read, is over MAX_KEY_FILE bytes, is not UTF-8, is empty or is not one key.
    """

    def bad(why: str) -> UsageError:
        return UsageError(f"--api-key-file {printable(path)}: {why}")

    try:
        if path == "-":
            if sys.stdin is None:
                raise bad("stdin is closed")
            data = sys.stdin.buffer.read(MAX_KEY_FILE + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise bad(f"cannot read it: {e.strerror or type(e).__name__}") from None
    if len(data) > MAX_KEY_FILE:
        raise bad(f"is over {MAX_KEY_FILE} bytes")
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    try:
        key = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("is not UTF-8 text") from None
    if not key:
        raise bad("is empty")
    if "\n" in key:
        raise bad("holds more than one line")
    if not key.isprintable() or " " in key:
        raise bad("holds spaces or control characters")
    return key


def _api_key(args: argparse.Namespace) -> str:
    """The key from --api-key (with a warning), --api-key-file or STRIPE_API_KEY."""
    if args.api_key:
        print(ARGV_KEY_WARNING, file=sys.stderr, flush=True)
        return str(args.api_key)
    if args.api_key_file is not None:
        return read_key_file(args.api_key_file)
    key = os.environ.get("STRIPE_API_KEY")
    if not key:
        raise UsageError(NO_KEY)
    return key


def _open_ids(args: argparse.Namespace) -> BinaryIO:
    """The batch's input, opened once for reading as bytes (stdin for none or ``-``)."""
    if args.file in (None, "-"):
        if args.api_key_file == "-":
            raise UsageError(
                "--api-key-file - reads the key from stdin, which holds the ids: "
                "give the ids as FILE"
            )
        if sys.stdin is None:
            raise UsageError("cannot read the ids: stdin is closed (give the ids as FILE)")
        return sys.stdin.buffer
    try:
        return open(args.file, "rb")  # run_batch closes it
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise UsageError(f"cannot read {printable(args.file)}: {why}") from None


def _unwritable(stream: TextIO | None) -> str | None:
    """Why ``stream`` cannot be written at all, or None when it may be.

    Checked before anything is sent: a stdout closed with ``>&-`` is None in Python, and
    one open for reading only (``1</dev/null``) fails every write; either way a session
    created could not be reported. A stream without a descriptor (a test's capture) is
    taken as writable; a full disk shows only on writing, and is handled there.
    """
    if stream is None:
        return "it is closed"
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if sys.platform == "win32":  # pragma: no cover - no fcntl; writing will tell
        return None
    import fcntl  # noqa: PLC0415 - POSIX only

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as e:
        return e.strerror or "its descriptor is not open"
    if flags & os.O_ACCMODE == os.O_RDONLY:
        return "it is open for reading only"
    return None


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` (escaped: it may quote argv) and exit 2."""
        self.exit(2, f"{self.prog}: error: {printable(message, 500)} (see --help)\n")


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _components(names: Sequence[str] | None) -> dict[str, Any]:
    return {name: {"enabled": True} for name in (names or ["pricing_table"])}


async def _demo(args: argparse.Namespace) -> int:
    if args.processes:
        from .demo import run_processes_demo  # noqa: PLC0415 - the CLI starts light

        return await run_processes_demo(args)
    from .._client import AsyncClient  # noqa: PLC0415 - the CLI starts light
    from ..testing import FakeStripe, FaultMix  # noqa: PLC0415
    from .batch import Progress, Stats  # noqa: PLC0415

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
            stats = Stats()
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
    base_url = args.base_url or os.environ.get("STRIPE_BASE_URL") or None
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


async def _create(args: argparse.Namespace) -> int:
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
        sys.stdout.write(json.dumps(session.to_dict(), indent=2) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError) as e:  # ValueError: a closed file object
        _silence_stdout()
        if isinstance(e, BrokenPipeError):
            return 141
        _say(
            printable(
                f"error: cannot write to stdout: {e}; the session was created: run again "
                f"with --idempotency-key {key} to get it back without creating another",
                2000,
            )
        )
        return 3
    return 0


def _say(text: str) -> None:
    """One line on stderr, flushed; a stderr that cannot be written is left be."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(text, file=sys.stderr, flush=True)


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


async def _batch(args: argparse.Namespace) -> int:
    from .batch import run_batch  # noqa: PLC0415 - the CLI starts light

    try:
        async with _client(args) as stripe:
            code: int = await run_batch(args, stripe)
    finally:
        limiter = getattr(args, "limiter", None)
        if limiter is not None:
            await limiter.aclose()
    return code


async def _fake_server(args: argparse.Namespace) -> int:
    from ..testing import FakeStripe  # noqa: PLC0415 - the CLI starts light

    async with FakeStripe(host=args.host, port=args.port, rate_limit=args.rate_limit) as fake:
        print(f"FakeStripe listening on {fake.url}", file=sys.stderr)
        print(
            f"use api key {fake.api_key} (any sk_test_... key works); Ctrl-C stops",
            file=sys.stderr,
        )
        await asyncio.Event().wait()
    return 0  # pragma: no cover - ends with Ctrl-C


def _parser() -> Parser:
    # --debug is accepted before or after the command: each subparser has it too, with a
    # SUPPRESS default so that an absent one leaves the main parser's value alone.
    common = Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks on errors (also $STRIPE_SESSIONS_DEBUG)",
    )
    parser = Parser(
        prog="stripe-sessions",
        description="Create Stripe Customer Sessions, or try the SDK against an embedded fake.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--version",
        action="version",
        version=f"stripe-sessions {__version__} (Stripe API {STRIPE_API_VERSION})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def component_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--component",
            action="append",
            choices=COMPONENTS,
            metavar="NAME",
            help=f"component to enable, repeatable: {', '.join(COMPONENTS)} "
            "(default pricing_table)",
        )

    def api_options(p: argparse.ArgumentParser) -> None:
        keys = p.add_mutually_exclusive_group()
        keys.add_argument(
            "--api-key-file",
            default=None,
            metavar="PATH",
            help="read the secret key from this file (- for stdin; default: $STRIPE_API_KEY)",
        )
        keys.add_argument(
            "--api-key",
            default=None,
            help="the secret key itself: visible in ps and shell history (prefer the above)",
        )
        p.add_argument(
            "--base-url",
            default=None,
            help="API base URL (default: $STRIPE_BASE_URL, else https://api.stripe.com)",
        )

    positive_int, positive_float = _positive(int), _positive(float)
    demo = sub.add_parser(
        "demo", parents=[common], help="batch-create sessions against the embedded fake"
    )
    demo.add_argument("--count", type=positive_int, default=300, help="sessions to create (300)")
    demo.add_argument("--concurrency", type=positive_int, default=16, help="in flight (16)")
    demo.add_argument("--rate", type=positive_float, default=150.0, help="requests/s (150)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the fake's faults (1)")
    demo.add_argument(
        "--processes",
        type=positive_int,
        default=None,
        help="run N batch processes against one rate-limited fake, each pacing itself, "
        "then sharing one budget through Redis, and compare their 429s",
    )
    demo.add_argument(
        "--redis-url",
        default=None,
        help="with --processes: the Redis to share (default: start a redis-server)",
    )
    component_option(demo)
    demo.set_defaults(run=_demo)

    create = sub.add_parser(
        "create", parents=[common], help="create one session and print it as JSON"
    )
    create.add_argument("--customer", help="customer id, cus_...")
    create.add_argument("--customer-account", help="account id, acct_...")
    create.add_argument("--expand", action="append", help="field to expand (customer)")
    create.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    component_option(create)
    api_options(create)
    create.set_defaults(run=_create)

    batch = sub.add_parser(
        "batch",
        parents=[common],
        help="create one session per customer id read from a file or stdin",
        description="Reads customer ids (UTF-8, one per line; blank lines and # comments "
        "skipped), sending each as soon as it is read, and writes one JSON line per session "
        "to stdout as soon as it is back; progress and a closing summary go to stderr. The "
        "batch key is printed first: --batch-key KEY resumes the batch without creating "
        "anything twice. A line that is not UTF-8, is over 32 KiB or holds whitespace other "
        "than spaces and tabs stops the batch after the ids before it (--skip-invalid "
        "skips it). Exit status: 0 all created, 1 some items failed (or the server could "
        "not be reached), 2 usage or input error, 3 stdout could not be written, 130 "
        "Ctrl-C, 141 stdout closed, 143 SIGTERM; a stderr that breaks mid-batch changes "
        "nothing.",
    )
    batch.add_argument(
        "file", nargs="?", default=None, help="file of customer ids (default or -: stdin)"
    )
    batch.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip (and count) lines that are not UTF-8, are over 32 KiB (up to 1 GiB) or "
        "hold whitespace other than spaces and tabs, instead of stopping at the first",
    )
    batch.add_argument("--concurrency", type=positive_int, default=16, help="in flight (16)")
    batch.add_argument("--rate", type=positive_float, default=20.0, help="requests/s (20)")
    batch.add_argument("--batch-key", help="reuse to re-run a batch without duplicates")
    batch.add_argument(
        "--redis-url",
        default=None,
        help="share one rate budget with every process using this Redis "
        "($STRIPE_SESSIONS_REDIS_URL); --rate is then the account's rate",
    )
    batch.add_argument(
        "--batch-share",
        type=positive_float,
        default=0.5,
        help="with --redis-url: the fraction of --rate batches may use (0.5)",
    )
    batch.add_argument(
        "--limiter-name",
        default="default",
        help="with --redis-url: the shared budget's name (default)",
    )
    component_option(batch)
    api_options(batch)
    batch.set_defaults(run=_batch)

    fake = sub.add_parser(
        "fake-server", parents=[common], help="run the embedded fake Stripe until Ctrl-C"
    )
    fake.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    fake.add_argument("--port", type=int, default=12111, help="port (12111)")
    fake.add_argument(
        "--rate-limit", type=positive_float, default=None, help="requests/s before 429s"
    )
    fake.set_defaults(run=_fake_server)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("STRIPE_SESSIONS_DEBUG"))
    if args.command != "fake-server" and _unwritable(sys.stderr):  # started with 2>&-
        # nowhere to say why; a batch could not say how to resume: start nothing
        return 3
    if args.command != "fake-server" and (why := _unwritable(sys.stdout)):  # >&-
        # Refused before anything is sent, not found after: a session created then
        # could only be reported on stderr, and a batch's results would all be lost.
        _say(
            f"{parser.prog} {args.command}: error: cannot write to stdout ({why}): nothing was sent"
        )
        return 3
    try:  # what can be refused before anything is sent: the key, the batch's input
        if args.command in ("create", "batch"):
            args.key = _api_key(args)
        if args.command == "batch":
            from .._batch.results import make_batch_key  # noqa: PLC0415 - the CLI starts light

            try:
                args.batch_key = make_batch_key(args.batch_key)
            except ValueError as e:
                raise UsageError(f"--batch-key: {getattr(e, 'message', e)}") from None
            args.source = _open_ids(args)
    except UsageError as e:
        _say(f"{parser.prog} {args.command}: error: {e}")
        return 2
    # The commands report batch ends and failures themselves; --debug shows the SDK's
    # own log too (each retry, each early end).
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("stripe_sessions").setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        code: int = asyncio.run(args.run(args))
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except UsageError as e:  # found once the loop ran: the client's key, URL or options
        _say(f"{parser.prog} {args.command}: error: {e}")
        return 2
    except Exception as e:
        from .._errors import StripeError, ValidationError  # noqa: PLC0415 - starts light

        if not isinstance(e, (StripeError, ValueError, OSError)):
            raise  # a bug: its traceback is the report
        if debug:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                traceback.print_exc()
        if isinstance(e, ValidationError):  # checked before sending: a bad option
            _say(f"{parser.prog} {args.command}: error: {printable(e.message, 1000)}")
            return 2
        _say(printable(f"error: {type(e).__name__}: {e}", 1000))
        return 1
    return code
