"""An embedded Stripe-compatible fake server for tests and demos: no network, no account.

::

    from stripe_sessions.testing import FakeStripe

    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as stripe:
            ...
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._fake import FakeStripe, FaultMix, RecordedRequest

__all__ = ["FakeStripe", "FaultMix", "RecordedRequest"]

# Lazy (PEP 562): pytest imports this package at every start-up, for the registered
# plugin, and the fake pulls in aiohttp. Only a test that uses the fake pays for it.
_LAZY = frozenset(__all__)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _fake  # noqa: PLC0415 - only on a first use

    value = getattr(_fake, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
