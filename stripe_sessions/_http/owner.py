"""Whose answer is it: the checks that an answer belongs to the request that was sent.

A connection that is out of step (a stray response on a kept-alive connection, a
confused proxy) delivers another request's answer; it is refused here, before anyone
reads it, by its ``Idempotency-Key`` echo, its owner and its mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias
from urllib.parse import unquote_plus

from .._config import Config
from .._errors import APIError
from .._safe_text import request_id_of, safe_headers, server_text

__all__ = ["Owner", "asked_owner", "key_mode", "not_ours"]

#: The owner a request asks a session for: ``(customer, customer_account)``.
Owner: TypeAlias = tuple[str | None, str | None]


def asked_owner(body: str) -> Owner:
    """Which owner the form ``body`` asks a session for: ``(customer, customer_account)``.

    Read from the body as sent (``extra_params`` may have replaced an argument):
    ``customer=`` and ``customer_account=`` at the top level of the form, None where
    the body names none.
    """
    return _field(body, "customer=", "&customer="), _field(
        body, "customer_account=", "&customer_account="
    )


def _field(body: str, prefix: str, inner: str) -> str | None:
    """The first top-level value of a form field (its ``prefix`` and ``&prefix`` given)."""
    if body.startswith(prefix):
        start = len(prefix)
    else:
        at = body.find(inner)
        if at < 0:
            return None
        start = at + len(inner)
    end = body.find("&", start)
    value = body[start:] if end < 0 else body[start:end]
    return unquote_plus(value) if "%" in value or "+" in value else value


def not_ours(
    data: Mapping[str, Any] | None,
    status: int,
    headers: Mapping[str, str],
    key: str,
    asked: Owner,
    config: Config,
) -> APIError | None:
    """The error refusing an answer (``data``: its JSON, None for an error) that belongs
    to another request, or None.

    Stripe echoes the ``Idempotency-Key`` it answers; a session names its owner and
    whether it is live. An answer that echoes another key, whose ``customer`` or
    ``customer_account`` is not what was asked for (null where one was asked for,
    one where none was; the id of an expanded Customer included), or whose
    ``livemode`` is not the API key's mode (``sk_test_``/``rk_test_``: false;
    ``sk_live_``/``rk_live_``: true) was read from a connection that is out of step
    (a stray response on a kept-alive connection, a confused proxy): it is refused,
    retryable, and its connection is closed.

    An answer without the echo is accepted when all else matches: proxies may strip
    headers, so a missing echo is no sign of another request. A value of the wrong
    type is left to the converter to report.
    """
    echoed = headers.get("Idempotency-Key")
    live = key_mode(config.api_key)
    # Speed: the common answer, plainly ours, skips the walk below: 18-19 K instructions
    # (2%) less per create (benchmarks/instructions.py, two paired runs).
    if (
        data is not None
        and (echoed is None or echoed == key)
        and data.get("customer") == asked[0]
        and data.get("customer_account") == asked[1]
        and (live is None or data.get("livemode") is live)
    ):
        return None
    found: list[str] = []
    if echoed is not None and echoed != key:
        found.append(f"the idempotency key {_quoted(echoed, config)} where {key!r} was sent")
    if data is not None:  # a decoded answer, not an error
        customer = data.get("customer")
        if isinstance(customer, dict):  # expanded: a Customer, named by its id
            customer = customer.get("id")
            if not isinstance(customer, str):
                customer = _NO_ID  # the converter refuses it
        for field, got, wanted in (
            ("customer", customer, asked[0]),
            ("customer_account", data.get("customer_account"), asked[1]),
        ):
            if got != wanted and (got is None or isinstance(got, str)):
                found.append(
                    f"{field} {_owner(got, config)} where "
                    f"{'none' if wanted is None else repr(wanted)} was asked for"
                )
        livemode = data.get("livemode")
        if isinstance(livemode, bool) and live is not None and livemode != live:
            found.append(
                f"livemode {'true' if livemode else 'false'} where a "
                f"{'live' if live else 'test'} mode key was sent"
            )
    if not found:
        return None
    return APIError(
        f"Refused an answer to another request: it carries {' and '.join(found)}; "
        "its connection was closed (the call may be retried on a new one with the same key)",
        http_status=status,
        request_id=request_id_of(headers, config.secrets),
        idempotency_key=key,
        headers=safe_headers(headers, config.secrets),
        should_retry=True,
    )


#: An expanded Customer without a string id: no owner to compare (a value of the wrong
#: type is the converter's to report).
_NO_ID: Final = object()


def _owner(value: str | None, config: Config) -> str:
    """An answer's customer or customer_account for a message (null: ``null``)."""
    return "null" if value is None else _quoted(value, config)


def key_mode(api_key: str) -> bool | None:
    """Whether ``api_key`` is a live mode key; None when its prefix does not say."""
    if api_key.startswith(("sk_test_", "rk_test_")):
        return False
    if api_key.startswith(("sk_live_", "rk_live_")):
        return True
    return None


def _quoted(value: str, config: Config) -> str:
    """A server's value for a message: masked, bounded, printable, quoted."""
    return repr(server_text(value, 80, config.secrets))
