"""Which customers the fake takes: Stripe's id shape always, and only known ones when strict."""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Collection
from typing import Any

__all__ = ["customer_refusal", "is_customer_id", "new_customer_id"]

# ``cus_`` and id characters. Stripe's own ids are ``cus_`` and 14 letters and digits;
# underscores are taken too, as test suites often name customers ``cus_alice_1``.
# ASCII only (``str.isalnum`` would take "²" and "٣").
_CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]+").fullmatch
_ALNUM = string.ascii_letters + string.digits


def is_customer_id(value: Any) -> bool:
    """True when ``value`` has the shape of a customer id: ``cus_`` and id characters."""
    return isinstance(value, str) and _CUSTOMER_ID(value) is not None


def new_customer_id() -> str:
    """A fresh id of Stripe's shape, ``cus_`` and 14 letters and digits."""
    return "cus_" + "".join(secrets.choice(_ALNUM) for _ in range(14))


def customer_refusal(customer: Any, known: Collection[str] | None) -> str | None:
    """None when the fake takes ``customer`` (absent, or a customer id that exists), else
    Stripe's message for it: "No such customer: '...'".

    Every well-formed id (and the empty string, a cleared field) exists when ``known``
    is None; otherwise only those in it (whatever their shape: a test that adds "alice"
    meant it).
    """
    if customer is None or (customer in known if known is not None else is_customer_id(customer)):
        return None
    if customer == "" and known is None:  # how Stripe clears a field: not an id to refuse
        return None
    shown = customer if len(customer) <= 200 else customer[:200] + "..."
    return f"No such customer: '{shown}'"
