"""Queued fault injection: what a test asks the fake to do to its next requests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._faults import Fault, FaultQueue, check_reason

__all__ = ["FaultInjection", "check_headers"]

# What aiohttp refuses to write in a header line (RFC 9110 5.5, RFC 9112 4): control
# characters but tab. Its check runs only as the answer is sent, where a refusal
# crashes that connection; the same one runs here, when the fault is queued.
_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """``headers`` as a dict, or a ValueError naming the first one aiohttp cannot send
    (a name or value that is not a ``str``, or holds a control character but tab)."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping):
        raise TypeError(f"headers: must be a mapping of str to str, not {type(headers).__name__}")
    checked: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or _FORBIDDEN.search(name):
            raise ValueError(f"headers: {name!r} is not a header name aiohttp can send")
        if not isinstance(value, str) or _FORBIDDEN.search(value):
            raise ValueError(
                f"headers[{name}]: {value!r} cannot be sent (a str without control "
                "characters but tab)"
            )
        checked[name] = value
    return checked


class FaultInjection:
    """The methods that queue faults for the next requests, served in the order queued
    and before any drawn from a :class:`FaultMix`.

    Only a request that reaches the endpoint uses one up: a ``POST`` to
    ``/v1/customer_sessions`` with a test key (a 404 or a 401 does not; nor does the
    control endpoint). A fault comes before the rate limit and the parameter checks:
    a status, reset, malformed or truncated fault answers whatever the body was; after a
    slow one the request goes on as usual, and after ``reset_next(after_create=True)``
    too, until the answer is dropped.
    """

    _queue: FaultQueue

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        code: str | None = None,
        body: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        reason: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``code``), creating nothing.

        The body is Stripe's for that status unless given (a str or bytes body is
        sent as is, e.g. an HTML 502). A 429 with no code is a ``rate_limit``, with no
        ``Retry-After`` (as Stripe's) unless the fake's ``retry_after`` is set, and with
        ``reason`` (e.g. ``"endpoint-concurrency"``) as ``Stripe-Rate-Limited-Reason``
        when given. ``headers`` are added to the answer, over any of the above: a name
        or value aiohttp cannot send (not a ``str``, a control character but tab) is a
        ``ValueError`` naming it here, where aiohttp would fail the answer's connection.
        """
        check_reason(reason)
        extra = check_headers(headers)
        self._queue.extend(
            Fault("status", status, code, body, extra, reason=reason) for _ in range(times)
        )

    def reset_next(self, times: int = 1, *, after_create: bool = False) -> None:
        """Drop the connection of the next ``times`` requests, before or after creating."""
        kind = "reset_after" if after_create else "reset_before"
        self._queue.extend(Fault(kind) for _ in range(times))

    def slow_next(self, seconds: float, times: int = 1) -> None:
        """Delay the answer to the next ``times`` requests by ``seconds``."""
        self._queue.extend(Fault("slow", seconds=seconds) for _ in range(times))

    def malformed_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 whose body is not JSON."""
        self._queue.extend(Fault("malformed") for _ in range(times))

    def truncate_next(self, times: int = 1) -> None:
        """Answer the next ``times`` requests with a 200 body cut short mid-stream."""
        self._queue.extend(Fault("truncated") for _ in range(times))

    @property
    def queued_faults(self) -> int:
        """How many queued faults are still to be served."""
        return len(self._queue)
