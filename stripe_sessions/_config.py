"""Frozen client settings: the API key (hidden from repr), URLs, timeouts and retries."""

from __future__ import annotations

import base64
import math
import os
import ssl as _ssl
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import attrs

from ._errors import AuthenticationError, ValidationError, safe_repr
from ._version import STRIPE_API_VERSION

DEFAULT_BASE_URL: Final = "https://api.stripe.com"
DEFAULT_TIMEOUT: Final = 80.0
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 100
#: The most retries a call (or a batch item) may be given: more would only hang.
MAX_RETRIES: Final = 100


class NotGiven:
    """Marks an argument the caller left out, as opposed to one given as ``None``."""

    _instance: NotGiven | None = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> bool:
        return False


NOT_GIVEN: Final = NotGiven()


def _mask(key: str) -> str:
    """Show a key the way Stripe's dashboard does: prefix and last four characters."""
    if len(key) <= 12:
        return "****"
    prefix = key[: key.find("_", 3) + 1] if key.count("_") >= 2 else key[:3]
    return f"{prefix}****{key[-4:]}"


def _bad(param: str, message: str) -> ValidationError:
    return ValidationError(f"{param}: {message}", param=param)


def _check_timeout(name: str, value: float) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise _bad(name, f"must be a positive, finite number of seconds, got {safe_repr(value)}")
    return float(value)


def _check_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RETRIES:
        raise _bad(
            "max_retries",
            f"must be a whole number from 0 to {MAX_RETRIES}, got {safe_repr(value)}",
        )
    return value


def check_header_value(param: str, value: Any) -> str:
    """Return ``value`` if it can be sent as an HTTP header value, else raise ValidationError.

    A header value must be a non-empty string of printable ASCII: a CR or LF would
    split the request, and anything outside ASCII is sent differently by each server.
    """
    if not isinstance(value, str):
        raise _bad(param, f"must be a string, got {type(value).__name__}")
    if not value:
        raise _bad(param, "must not be empty")
    if not (value.isascii() and value.isprintable()):
        raise _bad(param, "must be printable ASCII (it is sent as an HTTP header)")
    return value


def check_base_url(value: Any) -> str:
    """Return ``value`` without a trailing slash if it is an absolute http(s) URL for an API."""
    if not isinstance(value, str) or not value:
        raise _bad(
            "base_url", f"must be a URL such as {DEFAULT_BASE_URL!r}, got {safe_repr(value)}"
        )
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise _bad("base_url", "must be printable ASCII without spaces")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as e:
        raise _bad("base_url", f"is not a valid URL ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise _bad("base_url", f"must start with http:// or https://, got {safe_repr(value)}")
    if not parts.hostname:
        raise _bad("base_url", f"has no host: {safe_repr(value)}")
    if parts.username is not None or parts.password is not None:
        raise _bad("base_url", "must not hold credentials (user:password@)")
    if parts.query or parts.fragment or "?" in value or "#" in value:
        raise _bad("base_url", "must not have a query string or fragment (? or #)")
    del port
    return value.rstrip("/")


def check_proxy(value: Any) -> str:
    """Return ``value`` if it is an http(s) proxy URL (credentials allowed), else raise."""
    if not isinstance(value, str) or not value:
        raise _bad("proxy", f"must be a URL such as 'http://proxy:3128', got {safe_repr(value)}")
    if not (value.isascii() and value.isprintable()) or " " in value:
        raise _bad("proxy", "must be printable ASCII without spaces")
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise _bad("proxy", "is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _bad(
            "proxy", f"must be an http:// or https:// URL with a host, got {mask_url(value)!r}"
        )
    del port
    return value


def mask_url(url: str) -> str:
    """``url`` with any ``user:password@`` shown as ``****@``: for reprs and messages."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" in authority:
        authority = "****@" + authority.rpartition("@")[2]
    return f"{scheme}://{authority}{slash}{tail}"


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials in a proxy URL, in every form a message could quote them."""
    if not url:
        return ()
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return ()
    user, password = parts.username or "", parts.password or ""
    pair = f"{unquote(user)}:{unquote(password)}"
    userinfo = url.partition("://")[2].rpartition("@")[0]
    found = (userinfo, pair, base64.b64encode(pair.encode()).decode(), password)
    return tuple(s for s in found if len(s) >= 3)


def check_api_key(key: Any) -> str:
    """Return ``key`` if it can be sent as a Bearer token, else raise ValidationError."""
    check_header_value("api_key", key)
    if " " in key:
        raise ValidationError(
            "api_key: must not contain spaces or control characters "
            "(it goes into the Authorization header)",
            param="api_key",
        )
    return str(key)


@attrs.frozen(slots=True)
class Config:
    """Everything a client needs to send a request; built once, shared by copies."""

    api_key: str = attrs.field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    stripe_version: str = STRIPE_API_VERSION
    stripe_account: str | None = None
    stripe_context: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    default_headers: tuple[tuple[str, str], ...] = ()
    #: An HTTP(S) proxy URL; its credentials are kept out of the repr.
    proxy: str | None = attrs.field(
        default=None, repr=lambda p: "None" if p is None else repr(mask_url(p))
    )
    #: Honour ``HTTP(S)_PROXY``, ``NO_PROXY`` and ``~/.netrc`` (off, as in aiohttp).
    trust_env: bool = False
    #: The TLS context that verifies the server (None: the system's default CAs).
    ssl: _ssl.SSLContext | None = None

    @property
    def masked_key(self) -> str:
        """The API key as it may appear in a message: ``sk_test_****1234``."""
        return _mask(self.api_key)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What no message may quote: the API key and the proxy's credentials."""
        return (self.api_key, *url_secrets(self.proxy))


def resolve_api_key(api_key: str | None) -> str:
    """Return the key given, else ``$STRIPE_API_KEY``; raise a clear error when neither is set."""
    key = api_key if api_key is not None else os.environ.get("STRIPE_API_KEY")
    if not key:
        raise AuthenticationError(
            "No API key provided: pass api_key=... to the client or set the "
            "STRIPE_API_KEY environment variable. Keys are at "
            "https://dashboard.stripe.com/apikeys."
        )
    return check_api_key(key)


def make_config(
    *,
    api_key: str | None,
    base_url: str | None,
    stripe_version: str | None,
    stripe_account: str | None,
    stripe_context: str | None,
    timeout: float,
    connect_timeout: float,
    max_retries: int,
    max_connections: int,
    default_headers: Mapping[str, str] | None,
    proxy: str | None = None,
    trust_env: bool = False,
    ssl: _ssl.SSLContext | None = None,
) -> Config:
    """Check and freeze the constructor's arguments; a bad one raises ValidationError."""
    if (
        isinstance(max_connections, bool)
        or not isinstance(max_connections, int)
        or max_connections < 1
    ):
        raise _bad(
            "max_connections", f"must be a whole number >= 1, got {safe_repr(max_connections)}"
        )
    return Config(
        api_key=resolve_api_key(api_key),
        base_url=DEFAULT_BASE_URL if base_url is None else check_base_url(base_url),
        stripe_version=(
            STRIPE_API_VERSION
            if stripe_version is None
            else check_header_value("stripe_version", stripe_version)
        ),
        stripe_account=(
            None if stripe_account is None else check_header_value("stripe_account", stripe_account)
        ),
        stripe_context=(
            None if stripe_context is None else check_header_value("stripe_context", stripe_context)
        ),
        timeout=_check_timeout("timeout", timeout),
        connect_timeout=_check_timeout("connect_timeout", connect_timeout),
        max_retries=_check_retries(max_retries),
        max_connections=max_connections,
        default_headers=_check_headers(default_headers),
        proxy=None if proxy is None else check_proxy(proxy),
        trust_env=_check_flag("trust_env", trust_env),
        ssl=_check_ssl(ssl),
    )


def _check_flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, f"must be True or False, got {safe_repr(value)}")
    return value


def _check_ssl(value: Any) -> _ssl.SSLContext | None:
    if value is not None and not isinstance(value, _ssl.SSLContext):
        raise _bad(
            "ssl",
            "must be an ssl.SSLContext, e.g. ssl.create_default_context(cafile=...), "
            f"got {type(value).__name__}",
        )
    return value


def _check_headers(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if headers is None:
        return ()
    if not isinstance(headers, Mapping):
        raise _bad("default_headers", f"must be a mapping, got {type(headers).__name__}")
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not all(c in _TOKEN for c in name):
            raise _bad("default_headers", f"{safe_repr(name)} is not a valid header name")
        check_header_value(f"default_headers[{name}]", value)
    return tuple(headers.items())


# The characters of an HTTP header name (RFC 9110 "token").
_TOKEN: Final = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
