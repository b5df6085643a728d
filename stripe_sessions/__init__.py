"""stripe-sessions: an async-first, typed SDK for Stripe's Customer Sessions API.

::

    import stripe_sessions as ss

    async with ss.AsyncClient() as stripe:          # api_key from $STRIPE_API_KEY
        session = await stripe.customer_sessions.create(
            customer="cus_123", components={"pricing_table": {"enabled": True}}
        )
"""

from typing import TYPE_CHECKING, Any

from ._version import STRIPE_API_VERSION, __version__

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names load lazily
    from ._batch.results import BatchProgress, BatchResult
    from ._batch.stream import BatchStream
    from ._client import AsyncClient
    from ._config import NOT_GIVEN, Config, NotGiven
    from ._errors import (
        APIConnectionError,
        APIError,
        APITimeoutError,
        AuthenticationError,
        CardError,
        IdempotencyError,
        InvalidRequestError,
        PermissionDeniedError,
        RateLimitError,
        StripeError,
        ValidationError,
    )
    from ._lifecycle import ClientClosedError, EventLoopError, LoopThreadError
    from ._limits.local import LocalRateLimiter, RateLimiter
    from ._limits.redis_limiter import RedisRateLimiter
    from ._observe.events import RequestEvent, ResponseEvent, RetryEvent
    from ._resource import AsyncCustomerSessions
    from ._sync.client import Client, CustomerSessions
    from ._wire.create_params import CreateParams
    from ._wire.dicts import (
        ActiveEntitlementsDict,
        BuyButtonDict,
        ComponentsDict,
        CreateParamsDict,
        CustomerPortalDict,
        CustomerSheetDict,
        CustomerSheetFeaturesDict,
        MobilePaymentElementDict,
        MobilePaymentElementFeaturesDict,
        PaymentElementDict,
        PaymentElementFeaturesDict,
        PricingTableDict,
        TaxIdElementDict,
        TaxIdElementFeaturesDict,
    )
    from ._wire.models import Customer, CustomerSession
    from ._wire.params import (
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

# Importing the package imports nothing heavy (aiohttp, cattrs): a name is imported on
# first use (PEP 562). pytest imports the package at every start-up for the plugin it
# registers, so this keeps an installed stripe-sessions from slowing every test run.
_LAZY: dict[str, str] = {
    "AsyncClient": "._client",
    "ClientClosedError": "._lifecycle",
    "BatchStream": "._batch.stream",
    "LoopThreadError": "._lifecycle",
    "EventLoopError": "._lifecycle",
    "AsyncCustomerSessions": "._resource",
    "BatchProgress": "._batch.results",
    "BatchResult": "._batch.results",
    "NOT_GIVEN": "._config",
    "Config": "._config",
    "NotGiven": "._config",
    "APIConnectionError": "._errors",
    "APIError": "._errors",
    "APITimeoutError": "._errors",
    "AuthenticationError": "._errors",
    "CardError": "._errors",
    "IdempotencyError": "._errors",
    "InvalidRequestError": "._errors",
    "PermissionDeniedError": "._errors",
    "RateLimitError": "._errors",
    "StripeError": "._errors",
    "ValidationError": "._errors",
    "LocalRateLimiter": "._limits.local",
    "RateLimiter": "._limits.local",
    "RedisRateLimiter": "._limits.redis_limiter",
    "RequestEvent": "._observe.events",
    "ResponseEvent": "._observe.events",
    "RetryEvent": "._observe.events",
    "Customer": "._wire.models",
    "CustomerSession": "._wire.models",
    "ActiveEntitlements": "._wire.params",
    "AllowRedisplay": "._wire.params",
    "BuyButton": "._wire.params",
    "Components": "._wire.params",
    "CreateParams": "._wire.create_params",
    "CustomerPortal": "._wire.params",
    "CustomerSheet": "._wire.params",
    "CustomerSheetFeatures": "._wire.params",
    "MobilePaymentElement": "._wire.params",
    "MobilePaymentElementFeatures": "._wire.params",
    "PaymentElement": "._wire.params",
    "PaymentElementFeatures": "._wire.params",
    "PricingTable": "._wire.params",
    "SaveUsage": "._wire.params",
    "TaxIdElement": "._wire.params",
    "TaxIdElementFeatures": "._wire.params",
    "Toggle": "._wire.params",
    "ActiveEntitlementsDict": "._wire.dicts",
    "BuyButtonDict": "._wire.dicts",
    "ComponentsDict": "._wire.dicts",
    "CreateParamsDict": "._wire.dicts",
    "CustomerPortalDict": "._wire.dicts",
    "CustomerSheetDict": "._wire.dicts",
    "CustomerSheetFeaturesDict": "._wire.dicts",
    "MobilePaymentElementDict": "._wire.dicts",
    "MobilePaymentElementFeaturesDict": "._wire.dicts",
    "PaymentElementDict": "._wire.dicts",
    "PaymentElementFeaturesDict": "._wire.dicts",
    "PricingTableDict": "._wire.dicts",
    "TaxIdElementDict": "._wire.dicts",
    "TaxIdElementFeaturesDict": "._wire.dicts",
    "Client": "._sync.client",
    "CustomerSessions": "._sync.client",
}

__all__ = [
    # clients
    "AsyncClient",
    "AsyncCustomerSessions",
    "Client",
    "CustomerSessions",
    "Config",
    "NOT_GIVEN",
    "NotGiven",
    "LocalRateLimiter",
    "RateLimiter",
    "RedisRateLimiter",
    # results
    "BatchProgress",
    "BatchResult",
    "BatchStream",
    "Customer",
    "CustomerSession",
    # what event_hooks are called with
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    # parameters (also the components of a result)
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
    "TaxIdElement",
    "TaxIdElementFeatures",
    "Toggle",
    # the dict forms of the parameters (TypedDicts: keys and enum values type-checked)
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
    # errors
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "CardError",
    "IdempotencyError",
    "InvalidRequestError",
    "PermissionDeniedError",
    "RateLimitError",
    "StripeError",
    "ValidationError",
    "ClientClosedError",
    "LoopThreadError",
    "EventLoopError",
    # versions
    "STRIPE_API_VERSION",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - only on a first use

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
