"""stripe-sessions: an async-first, typed SDK for Stripe's Customer Sessions API.

::

    import stripe_sessions as ss

    async with ss.AsyncClient() as stripe:          # api_key from $STRIPE_API_KEY
        session = await stripe.customer_sessions.create(
            customer="cus_123", components={"pricing_table": {"enabled": True}}
        )
"""

from ._async_client import AsyncClient, AsyncCustomerSessions
from ._batch import BatchProgress, BatchResult
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
from ._models import Customer, CustomerSession
from ._params import (
    ActiveEntitlements,
    AllowRedisplay,
    BuyButton,
    Components,
    CreateParams,
    CustomerPortal,
    CustomerSheet,
    CustomerSheetFeatures,
    MobilePaymentElement,
    MobilePaymentElementFeatures,
    PaymentElement,
    PaymentElementFeatures,
    PricingTable,
    SaveUsage,
    Toggle,
)
from ._sync_client import Client, CustomerSessions
from ._version import STRIPE_API_VERSION, __version__

__all__ = [
    # clients
    "AsyncClient",
    "AsyncCustomerSessions",
    "Client",
    "CustomerSessions",
    "Config",
    "NOT_GIVEN",
    "NotGiven",
    # results
    "BatchProgress",
    "BatchResult",
    "Customer",
    "CustomerSession",
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
    "Toggle",
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
    # versions
    "STRIPE_API_VERSION",
    "__version__",
]
