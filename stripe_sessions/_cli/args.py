"""The command line's arguments: one parser for every command and its options."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from typing import NoReturn

from .._version import STRIPE_API_VERSION, __version__
from . import help_text as _help
from .fake_args import fake_server_options
from .numbers import positive
from .text import printable

__all__ = ["COMPONENTS", "Command", "Parser", "build_parser"]

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
#: The most requests in flight --concurrency may ask for: the SDK's own bound
#: (``_batch.options.MAX_CONCURRENCY``, not imported here to start quickly; a test pins
#: the two), refused as a usage error before the batch key is printed.
MAX_CONCURRENCY = 10_000
#: What runs a command: its parsed arguments in, its exit code out.
Command = Callable[[argparse.Namespace], Awaitable[int]]


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line (the usage block is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message`` (escaped: it may quote argv) and exit 2."""
        self.exit(2, f"{self.prog}: error: {printable(message, 500)} (see --help)\n")


def build_parser(commands: Mapping[str, Command]) -> Parser:
    """The parser of every command and its options; ``args.run`` is the command's run."""
    # --debug is accepted before or after the command: each subparser has it too, with a
    # SUPPRESS default so that an absent one leaves the main parser's value alone.
    common = Parser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show tracebacks on errors (also $STRIPE_SESSIONS_DEBUG)",
    )
    common.add_argument(
        "--trace",
        action="store_true",
        default=argparse.SUPPRESS,
        help="write OpenTelemetry spans to stderr, one JSON line each (needs opentelemetry-sdk)",
    )
    raw = argparse.RawDescriptionHelpFormatter  # the texts in .help keep their lines
    parser = Parser(
        prog="stripe-sessions",
        description=_help.MAIN_DESCRIPTION,
        epilog=_help.MAIN_EPILOG,
        formatter_class=raw,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--trace", action="store_true", help="write OpenTelemetry spans to stderr")
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

    positive_int, positive_float = positive(int), positive(float)
    concurrency = positive(int, MAX_CONCURRENCY)
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="batch-create sessions against the embedded fake",
        description=_help.DEMO_DESCRIPTION,
        epilog=_help.DEMO_EPILOG,
        formatter_class=raw,
    )
    demo.add_argument("--count", type=positive_int, default=300, help="sessions to create (300)")
    demo.add_argument(
        "--concurrency", type=concurrency, default=16, help="in flight (16, at most 10,000)"
    )
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
    demo.set_defaults(run=commands["demo"])

    create = sub.add_parser(
        "create",
        parents=[common],
        help="create one session and print it as JSON",
        description=_help.CREATE_DESCRIPTION,
        epilog=_help.CREATE_EPILOG,
        formatter_class=raw,
    )
    create.add_argument("--customer", help="customer id, cus_...")
    create.add_argument("--customer-account", help="account id, acct_...")
    create.add_argument("--expand", action="append", help="field to expand (customer)")
    create.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    component_option(create)
    api_options(create)
    create.set_defaults(run=commands["create"])

    batch = sub.add_parser(
        "batch",
        parents=[common],
        help="create one session per customer id read from a file or stdin",
        description=_help.BATCH_DESCRIPTION,
        epilog=_help.BATCH_EPILOG,
        formatter_class=raw,
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
    batch.add_argument(
        "--concurrency", type=concurrency, default=16, help="in flight (16, at most 10,000)"
    )
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
    batch.set_defaults(run=commands["batch"])

    fake_server_options(sub, common, commands["fake-server"])
    return parser
