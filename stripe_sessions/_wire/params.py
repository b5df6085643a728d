"""Typed create parameters: the attrs classes a caller may give instead of dicts.

Parameters may be given as these classes or as plain dicts of the same shape; both go
through ``encode.encode_create``, which checks every key, type and enum value and
names the path of the first problem, before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

__all__ = [
    "MAX_REDISPLAY_LIMIT",
    "MAX_STRING",
    "ActiveEntitlements",
    "AllowRedisplay",
    "BuyButton",
    "Components",
    "CreateParams",
    "CustomerPortal",
    "CustomerSheet",
    "CustomerSheetFeatures",
    "MobilePaymentElement",
    "MobilePaymentElementFeatures",
    "PaymentElement",
    "PaymentElementFeatures",
    "PricingTable",
    "SaveUsage",
    "Toggle",
]

#: ``"enabled"`` or ``"disabled"``.
Toggle = Literal["disabled", "enabled"]
#: A saved payment method's ``allow_redisplay`` value.
AllowRedisplay = Literal["always", "limited", "unspecified"]
#: ``setup_future_usage`` for a payment method the customer chose to save.
SaveUsage = Literal["off_session", "on_session"]

MAX_REDISPLAY_LIMIT = 10
MAX_STRING = 5000


@attrs.frozen
class ActiveEntitlements:
    """Enable the active entitlements component: ``ActiveEntitlements(enabled=True)``."""

    enabled: bool


@attrs.frozen
class BuyButton:
    """Enable the buy button: ``BuyButton(enabled=True)``."""

    enabled: bool


@attrs.frozen
class CustomerPortal:
    """Enable the customer portal: ``CustomerPortal(enabled=True)``."""

    enabled: bool


@attrs.frozen
class PricingTable:
    """Enable the pricing table: ``PricingTable(enabled=True)``."""

    enabled: bool


@attrs.frozen
class CustomerSheetFeatures:
    """What the customer sheet may do with saved payment methods."""

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None = None
    payment_method_remove: Toggle | None = None


@attrs.frozen
class CustomerSheet:
    """The mobile customer sheet: ``CustomerSheet(enabled=True, features=...)``."""

    enabled: bool
    features: CustomerSheetFeatures | None = None


@attrs.frozen
class MobilePaymentElementFeatures:
    """What the mobile Payment Element may do with saved payment methods."""

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None = None
    payment_method_redisplay: Toggle | None = None
    payment_method_remove: Toggle | None = None
    payment_method_save: Toggle | None = None
    payment_method_save_allow_redisplay_override: AllowRedisplay | None = None


@attrs.frozen
class MobilePaymentElement:
    """The mobile Payment Element: ``MobilePaymentElement(enabled=True, features=...)``."""

    enabled: bool
    features: MobilePaymentElementFeatures | None = None


@attrs.frozen
class PaymentElementFeatures:
    """What the Payment Element may do with saved payment methods.

    ``payment_method_redisplay_limit`` is at most 10 (Stripe's default is 3).
    """

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None = None
    payment_method_redisplay: Toggle | None = None
    payment_method_redisplay_limit: int | None = None
    payment_method_remove: Toggle | None = None
    payment_method_save: Toggle | None = None
    payment_method_save_usage: SaveUsage | None = None


@attrs.frozen
class PaymentElement:
    """The Payment Element::

    PaymentElement(enabled=True, features=PaymentElementFeatures(payment_method_save="enabled"))
    """

    enabled: bool
    features: PaymentElementFeatures | None = None


@attrs.frozen
class Components:
    """Which front-end components the session is for; at least one must be enabled::

    Components(pricing_table=PricingTable(enabled=True))
    """

    active_entitlements: ActiveEntitlements | None = None
    buy_button: BuyButton | None = None
    customer_portal: CustomerPortal | None = None
    customer_sheet: CustomerSheet | None = None
    mobile_payment_element: MobilePaymentElement | None = None
    payment_element: PaymentElement | None = None
    pricing_table: PricingTable | None = None


@attrs.frozen
class CreateParams:
    """All parameters of one ``create``, as one value (handy for batches)::

    CreateParams(customer="cus_123", components=Components(buy_button=BuyButton(enabled=True)))
    """

    components: Components | Mapping[str, Any]
    customer: str | None = None
    customer_account: str | None = None
    expand: Sequence[str] | None = None
