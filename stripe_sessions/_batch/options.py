"""BatchOptions: a batch's settings, checked once at the call and carried to every item."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import attrs

from .._config import RETRIES, STRIPE_ACCOUNT, STRIPE_VERSION, TIMEOUT
from .._validate import checked, flag, number, optional, refuse, whole
from .keys import make_batch_key

if TYPE_CHECKING:
    from .results import BatchProgress

__all__ = [
    "DEFAULT_BATCH_RETRIES",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_RATE_LIMIT",
    "MAX_CONCURRENCY",
    "BatchOptions",
]

#: Pace used when the caller gives none: safely below Stripe's 25 requests/s in test mode.
DEFAULT_RATE_LIMIT: Final = 20.0
DEFAULT_CONCURRENCY: Final = 16
#: The most requests a batch may keep in flight. Each unit of concurrency is a worker
#: task started before anything is read (and two read-ahead slots), so an unbounded one
#: (``10**30``) blocked the event loop creating tasks until memory ran out; far more
#: than Stripe's rate limits (100 requests/s live) or any connection pool can use. The
#: CLI's ``--concurrency`` has the same bound (``_cli/args.py``; a test pins the two).
MAX_CONCURRENCY: Final = 10_000
#: Retries per item (5xx, connection errors, 409, lock_timeout and rate_limit 429s).
DEFAULT_BATCH_RETRIES: Final = 5


CONCURRENCY: Final = whole("concurrency", 1, MAX_CONCURRENCY)
RATE_LIMIT: Final = optional(
    number("rate_limit", 0, lo_open=True, noun="positive number of requests/s or None", shown="")
)
FAIL_FAST: Final = flag("fail_fast")


def check_on_progress(value: Any) -> Callable[[BatchProgress], object] | None:
    """``on_progress``: a function (called with each :class:`BatchProgress`) or None."""
    if value is not None and not callable(value):
        raise refuse("on_progress", "must be a function taking a BatchProgress, or None")
    return value  # type: ignore[no-any-return]


@attrs.frozen(slots=True)
class BatchOptions:
    """The keywords of ``create_many``/``stream_many``, each checked (a bad one raises a
    :class:`ValidationError` naming it, before anything is read or sent).

    ``batch_key`` is the caller's, or a random one: the batch's items are sent with
    ``f"{batch_key}-{index}"``. ``stripe_account``, ``stripe_version`` and ``timeout``
    apply to every item (None: the client's); ``max_retries`` is each item's budget.
    """

    concurrency: int = checked(CONCURRENCY, DEFAULT_CONCURRENCY)
    rate_limit: float | None = checked(RATE_LIMIT, DEFAULT_RATE_LIMIT)
    on_progress: Callable[[BatchProgress], object] | None = attrs.field(
        default=None, converter=check_on_progress
    )
    fail_fast: bool = checked(FAIL_FAST, False)
    #: The caller's, checked, or a random one.
    batch_key: str = attrs.field(default=None, converter=make_batch_key)
    max_retries: int = checked(RETRIES, DEFAULT_BATCH_RETRIES)
    stripe_account: str | None = checked(optional(STRIPE_ACCOUNT), None)
    stripe_version: str | None = checked(optional(STRIPE_VERSION), None)
    timeout: float | None = checked(optional(TIMEOUT), None)
