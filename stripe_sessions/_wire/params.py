"""Typed create parameters: the attrs classes a caller may give instead of dicts.

Parameters may be given as these classes or as plain dicts of the same shape; both go
through ``encode.encode_create``, which checks every key, type and enum value and
names the path of the first problem, before anything is sent. These classes (and
``CreateParams``, in ``create_params``) are the one source of truth: the dicts'
TypedDicts (``dicts.py``) are generated from them (``python -m
stripe_sessions._wire.dictgen``; the tests run ``--check``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

__all__ = [
    "MAX_REDISPLAY_LIMIT",
    "MAX_STRING",
    "PREVIEW",
    "ActiveEntitlements",
    "AllowRedisplay",
    "BuyButton",
    "Components",
    "CustomerPortal",
    "CustomerSheet",
    "CustomerSheetFeatures",
    "MobilePaymentElement",
    "MobilePaymentElementFeatures",
    "PaymentElement",
    "PaymentElementFeatures",
    "PricingTable",
    "SaveUsage",
    "TaxIdElement",
    "TaxIdElementFeatures",
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
#: The metadata key of a field that only a preview ``Stripe-Version`` knows: its value is
#: the first preview version that has it (see ``encode.encode_create``).
PREVIEW = "preview_since"


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
class TaxIdElementFeatures:
    """Whether the Tax ID Element shows and saves the customer's tax IDs."""

    tax_id_redisplay: Toggle | None = None
    tax_id_save: Toggle | None = None


@attrs.frozen
class TaxIdElement:
    """The Tax ID Element, a public preview: only with a ``.preview`` ``Stripe-Version``
    (``2025-10-29.preview`` or later)::

    TaxIdElement(enabled=True, features=TaxIdElementFeatures(tax_id_save="enabled"))
    """

    enabled: bool
    features: TaxIdElementFeatures | None = None


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
    #: Preview: sent only under a ``.preview`` ``Stripe-Version`` (else a ValidationError).
    tax_id_element: TaxIdElement | None = attrs.field(
        default=None, metadata={PREVIEW: "2025-10-29.preview"}
    )
