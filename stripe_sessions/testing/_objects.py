"""Stripe-shaped bodies the fake answers with: sessions, customers, errors."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

__all__ = ["customer_object", "error_body", "new_request_id", "session_object"]

_ALNUM = string.ascii_letters + string.digits
SESSION_LIFETIME = 30 * 60


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_request_id() -> str:
    """A fresh ``req_…`` id."""
    return "req_" + _random(14)


def error_body(
    message: str, type: str = "invalid_request_error", **fields: str | None
) -> dict[str, Any]:
    """An error body as Stripe sends it; ``None`` fields are left out."""
    error: dict[str, Any] = {"message": message, "type": type}
    error.update({k: v for k, v in fields.items() if v is not None})
    if "code" in error and "doc_url" not in error:
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{error['code'].replace('_', '-')}"
    return {"error": error}


def customer_object(customer_id: str, created: int) -> dict[str, Any]:
    """A test-mode Customer, as ``expand[]=customer`` returns it."""
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": _random(7).upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def _bool(value: Any) -> bool:
    return bool(value == "true")


def _features(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    given = given if isinstance(given, dict) else {}
    out = dict(defaults)
    for key, value in given.items():
        if key == "payment_method_redisplay_limit":
            out[key] = int(value)
        elif isinstance(value, list):
            out[key] = value
        elif value == "":
            out[key] = [] if isinstance(defaults.get(key), list) else None
        else:
            out[key] = value
    return out


_SHEET = dict.fromkeys(("payment_method_allow_redisplay_filters", "payment_method_remove"))
_MOBILE = dict.fromkeys(
    (
        "payment_method_allow_redisplay_filters",
        "payment_method_redisplay",
        "payment_method_remove",
        "payment_method_save",
        "payment_method_save_allow_redisplay_override",
    )
)
_PAYMENT_ELEMENT: dict[str, Any] = {
    "payment_method_allow_redisplay_filters": ["always"],
    "payment_method_redisplay": "disabled",
    "payment_method_redisplay_limit": None,
    "payment_method_remove": "disabled",
    "payment_method_save": "disabled",
    "payment_method_save_usage": None,
}


_TAX_ID = dict.fromkeys(("tax_id_redisplay", "tax_id_save"), "disabled")


def session_object(form: dict[str, Any], now: int | None = None) -> dict[str, Any]:
    """The ``customer_session`` Stripe would create for a valid decoded form."""
    created = int(time.time()) if now is None else now
    comps = form.get("components") or {}

    def simple(name: str) -> dict[str, Any]:
        return {"enabled": _bool((comps.get(name) or {}).get("enabled"))}

    def featured(name: str, defaults: dict[str, Any]) -> dict[str, Any]:
        given = comps.get(name) or {}
        return {
            "enabled": _bool(given.get("enabled")),
            "features": _features(given.get("features"), defaults),
        }

    preview = (
        {"tax_id_element": featured("tax_id_element", _TAX_ID)} if "tax_id_element" in comps else {}
    )
    customer: Any = form.get("customer")
    expand = form.get("expand") or []
    if customer is not None and "customer" in expand:
        customer = customer_object(customer, created)
    return {
        "object": "customer_session",
        "client_secret": "cuss_secret_" + _random(46),
        "components": {
            "active_entitlements": simple("active_entitlements"),
            "buy_button": simple("buy_button"),
            "customer_portal": simple("customer_portal"),
            "customer_sheet": featured("customer_sheet", _SHEET),
            "mobile_payment_element": featured("mobile_payment_element", _MOBILE),
            "payment_element": featured("payment_element", _PAYMENT_ELEMENT),
            "pricing_table": simple("pricing_table"),
            **preview,  # only asked for under a preview version (validate checked)
        },
        "created": created,
        "customer": customer,
        "customer_account": form.get("customer_account"),
        "expires_at": created + SESSION_LIFETIME,
        "livemode": False,
    }
