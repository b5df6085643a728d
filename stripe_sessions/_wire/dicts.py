# GENERATED FILE: do not edit. Written by `python -m stripe_sessions._wire.dictgen` from
# the attrs classes in _wire/params.py; change those and run it again (the tests run --check).
"""The dict forms of the create parameters, as TypedDicts that mypy and pyright check.

A dict literal given where one of these is expected is checked key by key: an unknown
key (``"pricing_tabel"``) or a value outside an enum (``"payment_method_save": "on"``) is a
type error. At run time a dict is a plain dict; ``create`` checks it as before.
"""

# No ``from __future__ import annotations``: evaluated here, ``Required`` is seen at run
# time too (``__required_keys__``), for libraries that read TypedDicts (pydantic...).
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from .params import (
    ActiveEntitlements,
    AllowRedisplay,
    BuyButton,
    Components,
    CustomerPortal,
    CustomerSheet,
    CustomerSheetFeatures,
    MobilePaymentElement,
    MobilePaymentElementFeatures,
    PaymentElement,
    PaymentElementFeatures,
    PricingTable,
    SaveUsage,
    TaxIdElement,
    TaxIdElementFeatures,
    Toggle,
)

if sys.version_info >= (3, 11):
    from typing import Required, TypedDict
else:  # a dependency of cattrs and aiohttp on 3.10
    from typing_extensions import Required, TypedDict

__all__ = [
    "ActiveEntitlementsDict",
    "BuyButtonDict",
    "ComponentsDict",
    "CreateParamsDict",
    "CustomerPortalDict",
    "CustomerSheetDict",
    "CustomerSheetFeaturesDict",
    "MobilePaymentElementDict",
    "MobilePaymentElementFeaturesDict",
    "PaymentElementDict",
    "PaymentElementFeaturesDict",
    "PricingTableDict",
    "TaxIdElementDict",
    "TaxIdElementFeaturesDict",
]


class ActiveEntitlementsDict(TypedDict, total=False):
    """The dict form of :class:`ActiveEntitlements`."""

    enabled: Required[bool]


class BuyButtonDict(TypedDict, total=False):
    """The dict form of :class:`BuyButton`."""

    enabled: Required[bool]


class CustomerPortalDict(TypedDict, total=False):
    """The dict form of :class:`CustomerPortal`."""

    enabled: Required[bool]


class PricingTableDict(TypedDict, total=False):
    """The dict form of :class:`PricingTable`."""

    enabled: Required[bool]


class CustomerSheetFeaturesDict(TypedDict, total=False):
    """The dict form of :class:`CustomerSheetFeatures`."""

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None
    payment_method_remove: Toggle | None


class CustomerSheetDict(TypedDict, total=False):
    """The dict form of :class:`CustomerSheet`."""

    enabled: Required[bool]
    features: CustomerSheetFeaturesDict | CustomerSheetFeatures | None


class MobilePaymentElementFeaturesDict(TypedDict, total=False):
    """The dict form of :class:`MobilePaymentElementFeatures`."""

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None
    payment_method_redisplay: Toggle | None
    payment_method_remove: Toggle | None
    payment_method_save: Toggle | None
    payment_method_save_allow_redisplay_override: AllowRedisplay | None


class MobilePaymentElementDict(TypedDict, total=False):
    """The dict form of :class:`MobilePaymentElement`."""

    enabled: Required[bool]
    features: MobilePaymentElementFeaturesDict | MobilePaymentElementFeatures | None


class PaymentElementFeaturesDict(TypedDict, total=False):
    """The dict form of :class:`PaymentElementFeatures`."""

    payment_method_allow_redisplay_filters: Sequence[AllowRedisplay] | None
    payment_method_redisplay: Toggle | None
    payment_method_redisplay_limit: int | None
    payment_method_remove: Toggle | None
    payment_method_save: Toggle | None
    payment_method_save_usage: SaveUsage | None


class PaymentElementDict(TypedDict, total=False):
    """The dict form of :class:`PaymentElement`."""

    enabled: Required[bool]
    features: PaymentElementFeaturesDict | PaymentElementFeatures | None


class TaxIdElementFeaturesDict(TypedDict, total=False):
    """The dict form of :class:`TaxIdElementFeatures`."""

    tax_id_redisplay: Toggle | None
    tax_id_save: Toggle | None


class TaxIdElementDict(TypedDict, total=False):
    """The dict form of :class:`TaxIdElement`."""

    enabled: Required[bool]
    features: TaxIdElementFeaturesDict | TaxIdElementFeatures | None


class ComponentsDict(TypedDict, total=False):
    """The dict form of :class:`Components`."""

    active_entitlements: ActiveEntitlementsDict | ActiveEntitlements | None
    buy_button: BuyButtonDict | BuyButton | None
    customer_portal: CustomerPortalDict | CustomerPortal | None
    customer_sheet: CustomerSheetDict | CustomerSheet | None
    mobile_payment_element: MobilePaymentElementDict | MobilePaymentElement | None
    payment_element: PaymentElementDict | PaymentElement | None
    pricing_table: PricingTableDict | PricingTable | None
    #: Preview: only under a ``.preview`` Stripe-Version (2025-10-29.preview on).
    tax_id_element: TaxIdElementDict | TaxIdElement | None


class CreateParamsDict(TypedDict, total=False):
    """The dict form of :class:`CreateParams`."""

    components: Required[ComponentsDict | Components]
    customer: str | None
    customer_account: str | None
    expand: Sequence[str] | None
    extra_params: Mapping[str, Any] | None
