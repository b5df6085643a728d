"""The package version and the Stripe API version the models were written for."""

__version__ = "0.1.0"

#: The ``Stripe-Version`` every request sends unless told otherwise. The typed
#: models hold for this version: a newer one may add fields (kept, see
#: ``to_dict()``) but the SDK is only tested against this one.
STRIPE_API_VERSION = "2026-10-28.endive"
