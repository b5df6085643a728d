"""Header names a caller may not set: they frame the request, or the SDK sends them itself.

One list for both ways a caller gives headers for every request: a lent session's
default headers (``_http/lent.check_lent``) and the client's ``default_headers=``
(``_config.check_headers``). Names are compared lower-cased (HTTP header names are
case-insensitive: ``content-length`` is ``Content-Length``).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = ["NEVER", "OWNED", "owned_reason"]

_FRAMING: Final = "it frames the request or the connection (aiohttp sets it from the body)"
#: Names never sent as given, whoever gives them, each with why. They change how the
#: request is framed or routed (``Content-Length: 5`` cuts the body and leaves the rest on
#: the kept-alive connection as the start of another request; ``Connection`` names the
#: headers a proxy strips; ``Upgrade`` switches protocols), or they carry what Stripe's
#: requests must not (a cookie jar's cookies, a proxy's password sent on to Stripe).
NEVER: Final = MappingProxyType(
    {
        "content-length": _FRAMING,
        "transfer-encoding": _FRAMING,
        "content-encoding": "the SDK sends the body uncompressed",
        "host": "it routes the request (aiohttp sets it from base_url)",
        "expect": _FRAMING,
        "connection": _FRAMING,
        "keep-alive": _FRAMING,
        "proxy-connection": _FRAMING,
        "te": _FRAMING,
        "trailer": _FRAMING,
        "upgrade": _FRAMING,
        "cookie": "Stripe sets no cookies and reads none",
        "proxy-authorization": "give the proxy's credentials in proxy= (they are masked there)",
    }
)
#: What the SDK sends itself on every request, from its own settings; a default header of
#: one of these names would replace (or sit beside) the setting's. ``User-Agent`` and
#: ``Accept`` are not here: an app may name itself, and either Accept is answered in JSON.
#: A lent session's defaults of these names are overridden on every request instead.
OWNED: Final = MappingProxyType(
    {
        "authorization": "the SDK sends api_key as its own Authorization (give api_key=)",
        "idempotency-key": "each call sends its own (give a call idempotency_key=, "
        "a batch batch_key=)",
        "stripe-version": "give stripe_version= (also per call and in with_options)",
        "stripe-account": "give stripe_account= (also per call and in with_options)",
        "stripe-context": "give stripe_context= (also in with_options)",
        "content-type": "the SDK sends the body form-encoded and says so",
        "accept-encoding": "the SDK asks for an uncompressed answer and refuses a compressed one",
    }
)


def owned_reason(name: str) -> str | None:
    """Why ``default_headers`` may not hold ``name`` (any case), or None if it may."""
    lower = name.lower()
    return NEVER.get(lower) or OWNED.get(lower)
