"""What went wrong on the way to Stripe, in words: connection failures, redirects, timeouts.

Each message names the cause and what to do, never the key or a proxy's credentials.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp

from .._config import Config
from .._errors import APIError, APITimeoutError, ValidationError
from .._safe_text import (
    MAX_QUOTE,
    printable,
    redact,
    request_id_of,
    safe_headers,
    safe_repr,
    server_text,
)
from .._urls import mask_url

__all__ = ["redirect_error", "refused_request", "timeout_error", "why_unreachable"]


def why_unreachable(e: aiohttp.ClientError, config: Config) -> str:
    """What went wrong connecting, in words, with no key or proxy credentials.

    aiohttp's own words are quoted on one line and bounded: its parser's errors quote
    the server's bytes (a header line, say) over several lines.
    """
    said = " ".join(redact(str(e), *config.secrets).split())
    text = printable(f"{type(e).__name__}: {said}", MAX_QUOTE * 2)
    if isinstance(e, aiohttp.ClientResponseError) and not isinstance(
        e, aiohttp.ClientHttpProxyError
    ):
        # Raised while reading the status line and headers: something answered, not in HTTP
        # aiohttp accepts (a bad Content-Length, a NUL in a header, a broken line).
        return f"the answer was not valid HTTP [{text}]"
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return (
            "the server's TLS certificate failed verification (certificate verify failed); "
            "for a private or corporate CA give ssl=ssl.create_default_context(cafile=...) "
            f"[{text}]"
        )
    if isinstance(e, (aiohttp.ClientProxyConnectionError, aiohttp.ClientHttpProxyError)):
        proxy = mask_url(config.proxy) if config.proxy else "the proxy from the environment"
        return f"through proxy {proxy}: {text}"
    return text


def redirect_error(
    status: int, headers: Mapping[str, str], key: str, secrets: tuple[str, ...] = ()
) -> APIError:
    """The error for a 3xx answer, which is never followed: says where it pointed.

    Reads any ``Location`` (absent, relative, not a URL, not ASCII, huge) without raising.
    """
    location = headers.get("Location") or ""
    host = _host_of(location)
    if host:
        where = f" to host {safe_repr(server_text(host, 80, secrets))}"
    elif not location:
        where = " with no location"
    elif host is None:
        where = " to a location that is not a valid URL"
    else:
        where = " to a relative location"
    return APIError(
        f"Stripe answered HTTP {status}, a redirect{where}; Stripe never redirects, "
        "so it was not followed and nothing was sent there (is a proxy in the way?)",
        http_status=status,
        request_id=request_id_of(headers, secrets),
        idempotency_key=key,
        headers=safe_headers(headers, secrets),
    )


def _host_of(location: str) -> str | None:
    """The host a ``Location`` names; ``""`` for a relative one, None when it is no URL."""
    if not location.isascii():
        return None
    try:  # urlsplit raises on a broken IPv6 literal ("http://[::1/"), .hostname on "[zz]"
        return urlsplit(location).hostname or ""
    except ValueError:
        return None


def timeout_error(
    e: asyncio.TimeoutError, timeout: aiohttp.ClientTimeout, key: str
) -> APITimeoutError:
    if isinstance(e, aiohttp.ConnectionTimeoutError):
        what = f"could not connect within the connect timeout of {timeout.connect}s"
    elif isinstance(e, aiohttp.SocketTimeoutError):
        what = f"got no data within the read timeout of {timeout.sock_read}s"
    else:
        what = f"took longer than the timeout of {timeout.total}s for one attempt"
    return APITimeoutError(f"Request to Stripe timed out: it {what}", idempotency_key=key)


def refused_request(e: ValueError, config: Config) -> ValidationError:
    """aiohttp refused to build the request (nothing was sent), as a ValidationError.

    It does so when credentials it would add itself meet the SDK's ``Authorization``
    header: a ``~/.netrc`` entry for the host (with ``trust_env``), say.
    """
    return ValidationError(
        "aiohttp refused to build the request, so nothing was sent: "
        f"{type(e).__name__}: {redact(str(e), *config.secrets)[:200]} "
        "(a ~/.netrc entry for the API host, read with trust_env=True, or credentials "
        "in a URL would replace the API key's Authorization header)",
        param="session",
    )
