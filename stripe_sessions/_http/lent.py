"""A session the caller lends (``AsyncClient(session=...)``): what is refused or overridden."""

from __future__ import annotations

import functools
import ssl
from typing import Any, Final

import aiohttp

from .._errors import ValidationError
from .._validate import instance
from .reserved import NEVER

__all__ = ["SESSION", "check_lent", "per_request", "verified_context"]

#: ``session=``: an aiohttp session, checked before anything else is read from it.
SESSION: Final = instance(
    "session",
    aiohttp.ClientSession,
    "must be an aiohttp.ClientSession (or None: the client makes its own)",
)
#: aiohttp 3.12 added middlewares, and with them per-request ``middlewares=``.
_PER_REQUEST_MIDDLEWARES: Final = tuple(map(int, aiohttp.__version__.split(".")[:2])) >= (3, 12)


def check_lent(session: aiohttp.ClientSession) -> None:
    """Refuse a lent session whose settings would change the SDK's requests.

    What aiohttp lets a request override, the transport overrides on every request:
    ``raise_for_status``, redirects, decompression, middlewares, TLS verification (see
    ``Transport``), and the cookie jar's cookies are dropped. What it does not is
    refused here, by name: anything but an ``aiohttp.ClientSession``, ``auth``
    (aiohttp adds it even when a request passes ``auth=None``, then refuses to combine
    it with the API key's ``Authorization``), default headers that the SDK does not
    always send itself (``Stripe-Account``, any ``Stripe-*``, and ``reserved.NEVER``:
    ``Cookie``, ``Content-Length``, ``Connection``...), skipped
    ``Host``/``Content-Length``, and on aiohttp before 3.12 a cookie jar that is not
    ``aiohttp.DummyCookieJar``.
    """
    SESSION(session)
    found: list[str] = []
    if session.auth is not None:
        found.append("auth (the SDK sends the API key as its own Authorization header)")
    headers = sorted(
        {
            name
            for name in session.headers
            # NEVER: the names refused in the client's own default_headers too (the
            # SDK's own headers, which it sends on every request, override these).
            if name.lower() in NEVER or name.lower().startswith("stripe-")
        }
    )
    if headers:
        found.append(
            f"default headers {', '.join(headers)} (give stripe_account=, stripe_context=, "
            "stripe_version= or default_headers= to the client instead)"
        )
    skipped = sorted(
        str(h) for h in session.skip_auto_headers if h.lower() in ("host", "content-length")
    )
    if skipped:
        found.append(f"skip_auto_headers {', '.join(skipped)}")
    if not _PER_REQUEST_MIDDLEWARES and not isinstance(
        session.cookie_jar, aiohttp.DummyCookieJar
    ):  # pragma: no cover - aiohttp < 3.12 cannot drop cookies per request
        found.append("cookie_jar (give cookie_jar=aiohttp.DummyCookieJar())")
    if found:
        raise ValidationError(
            "session: the lent aiohttp.ClientSession sets what would change the SDK's "
            f"requests to Stripe: {'; '.join(found)}. Lend a session without them.",
            param="session",
        )


async def _no_cookies(request: Any, handler: Any) -> Any:
    """Middleware for a lent session's requests: send none of its jar's cookies."""
    request.headers.popall("Cookie", None)
    return await handler(request)


@functools.lru_cache(maxsize=1)
def verified_context() -> ssl.SSLContext:
    """A default, verifying SSLContext (for a lent session, whose connector may not verify)."""
    return ssl.create_default_context()


def per_request() -> dict[str, Any]:
    """Keyword arguments every request on a lent session passes so that its settings do not apply.

    (``raise_for_status``, redirects, decompression and TLS verification are set on
    every request by the transport; :func:`check_lent` refused what cannot be set per
    request.) Replaces the session's middlewares (a caller's retry or auth middleware
    must not run on Stripe's requests) with one that drops the jar's cookies.
    """
    return {"middlewares": (_no_cookies,)} if _PER_REQUEST_MIDDLEWARES else {}
