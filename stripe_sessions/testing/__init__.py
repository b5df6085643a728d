"""An embedded Stripe-compatible fake server for tests and demos: no network, no account.

::

    from stripe_sessions.testing import FakeStripe

    async with FakeStripe() as fake:
        async with ss.AsyncClient(api_key=fake.api_key, base_url=fake.url) as stripe:
            ...
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; at run time the names load on first use
    from ._fake import FakeStripe
    from ._faults import FaultMix
    from ._parse import FormLimits
    from ._recording import RecordedRequest
    from ._redis import RedisCluster, RedisServer

__all__ = [
    "FakeStripe",
    "FaultMix",
    "FormLimits",
    "RecordedRequest",
    "RedisCluster",
    "RedisServer",
]

# Lazy (PEP 562): pytest imports this package at every start-up, for the registered
# plugin, and the fake pulls in aiohttp. Only a test that uses the fake pays for it.
_LAZY = {
    "FakeStripe": "_fake",
    "FaultMix": "_faults",
    "FormLimits": "_parse",
    "RecordedRequest": "_recording",
    "RedisServer": "_redis",
    "RedisCluster": "_redis",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib  # noqa: PLC0415 - only on a first use

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
