"""The ``fake-server`` command's options: the fake's knobs, and its control endpoint's help."""

from __future__ import annotations

import argparse
import math
from typing import Any

from .numbers import positive
from .text import printable

__all__ = ["FAKE_SERVER_DESCRIPTION", "RATE_LIMITED_REASONS", "fake_server_options"]

#: Stripe's ``Stripe-Rate-Limited-Reason`` values (``testing._faults``'s, not imported
#: here so that the CLI starts light; a test pins the two).
RATE_LIMITED_REASONS = (
    "global-rate",
    "endpoint-rate",
    "global-concurrency",
    "endpoint-concurrency",
    "resource-specific",
)


#: The fake-server's description: what it is, an example, the control endpoint.
FAKE_SERVER_DESCRIPTION = """\
Serve the embedded fake Stripe (POST /v1/customer_sessions, test keys only) on one
port until Ctrl-C, for a dev setup or for tests in another process or language.

example:
  stripe-sessions fake-server --port 12111 --fault-rate 0.1 \\
      --fault-kinds server_error,reset_before,rate_limit --latency 0.05 --jitter 0.1
  STRIPE_API_KEY=sk_test_x STRIPE_BASE_URL=http://127.0.0.1:12111 python app.py

control endpoint (same port, JSON, no API key; --no-control turns it off):
  GET  /_fake/health              status: created, queued_faults, recorded_requests
  POST /_fake/faults              queue faults for the next requests, e.g.
       {"kind": "status", "status": 503, "count": 2}
       {"kind": "rate_limit", "reason": "endpoint-concurrency"}
       {"kind": "slow", "seconds": 3}
       kinds: status (status, code, reason), server_error (status), rate_limit
       (reason), lock_timeout, conflict, reset_before, reset_after, slow (seconds),
       malformed, truncated; count defaults to 1 (10,000 may wait at once)
  POST /_fake/reset               forget requests, sessions, keys and queued faults
  POST /_fake/customers           {"id": "cus_..."} (or {} for a new id): make it
                                  exist, and make the fake strict
  GET  /_fake/sessions?limit=100  the newest sessions created, newest last
  GET  /_fake/requests?limit=100  the newest requests, newest last
  curl -X POST localhost:12111/_fake/faults -d '{"kind": "reset_before"}'
Bad input is a 400 with a JSON error body.
"""


def _fault_kinds(text: str) -> list[str]:
    from ..testing._faults import MIX_KINDS  # noqa: PLC0415 - the CLI starts light

    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in MIX_KINDS]
    if bad or not kinds:
        raise argparse.ArgumentTypeError(
            f"{printable(', '.join(bad) or text)}: not a fault kind ({', '.join(MIX_KINDS)})"
        )
    return kinds


def _customer(text: str) -> str:
    # The control endpoint's rule (POST /_fake/customers), so both say the same.
    from ..testing._control import MAX_CUSTOMER_ID  # noqa: PLC0415 - the CLI starts light
    from ..testing._customers import is_customer_id  # noqa: PLC0415

    if not is_customer_id(text) or len(text) > MAX_CUSTOMER_ID:
        raise argparse.ArgumentTypeError(
            f"must be cus_ and letters, digits or underscores, {MAX_CUSTOMER_ID} characters "
            f"at most, got '{printable(text, 80)}'"
        )
    return text


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be from 0 to 1, got {text}")
    return value


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 5 and int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, got {printable(text)}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 3600):
        raise argparse.ArgumentTypeError(f"must be from 0 to 3600 seconds, got {text}")
    return value


def fake_server_options(sub: Any, common: argparse.ArgumentParser, run: Any) -> None:
    """The ``fake-server`` subcommand and its options (the fake's knobs)."""
    fake = sub.add_parser(
        "fake-server",
        parents=[common],
        help="run the embedded fake Stripe until Ctrl-C (a dev server)",
        description=FAKE_SERVER_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    positive_int, positive_float = positive(int), positive(float)
    fake.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    fake.add_argument("--port", type=_port, default=12111, help="port, 0 for any free (12111)")
    fake.add_argument(
        "--rate-limit", type=positive_float, default=None, help="requests/s before 429s (none)"
    )
    fake.add_argument(
        "--rate-limit-reason",
        default="global-rate",
        choices=RATE_LIMITED_REASONS,
        metavar="REASON",
        help="Stripe-Rate-Limited-Reason of --rate-limit's 429s: "
        f"{', '.join(RATE_LIMITED_REASONS)} (global-rate)",
    )
    fake.add_argument(
        "--fault-rate",
        type=_fraction,
        default=0.0,
        help="share of requests (0 to 1) that meet a random fault, its kind drawn "
        "evenly from --fault-kinds (0)",
    )
    fake.add_argument(
        "--fault-kinds",
        type=_fault_kinds,
        default="server_error,reset_before,reset_after,lock_timeout,rate_limit",
        metavar="KIND,...",
        help="server_error (500/502/503), reset_before, reset_after (created, then the "
        "connection drops), conflict (409), lock_timeout, rate_limit (429s), malformed, "
        "slow, truncated (default: server_error,reset_before,reset_after,lock_timeout,"
        "rate_limit)",
    )
    fake.add_argument(
        "--slow-seconds",
        type=_seconds,
        default=2.0,
        help="how late a slow fault answers; above the client's timeout it is a timeout (2)",
    )
    fake.add_argument("--seed", type=int, default=None, help="seed of faults and jitter")
    fake.add_argument(
        "--latency", type=_seconds, default=0.0, help="seconds each creation takes (0)"
    )
    fake.add_argument(
        "--jitter", type=_seconds, default=0.0, help="plus up to this many seconds, random (0)"
    )
    fake.add_argument(
        "--customer",
        action="append",
        type=_customer,
        metavar="ID",
        help="a customer that exists, repeatable: makes the fake strict (other ids are "
        "'No such customer'); without it any cus_... id exists",
    )
    fake.add_argument(
        "--strict-customers",
        action="store_true",
        help="only customers given with --customer or POST /_fake/customers exist",
    )
    fake.add_argument(
        "--max-records",
        type=positive_int,
        default=1000,
        help="requests and sessions kept for inspection, oldest dropped (1000)",
    )
    fake.add_argument(
        "--max-idempotency-keys",
        type=positive_int,
        default=10_000,
        help="idempotency keys remembered, each for 24 h at most, oldest dropped (10000)",
    )
    fake.add_argument("--no-control", action="store_true", help="no control endpoint under /_fake/")
    fake.set_defaults(run=run)
