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

from ._errors import AuthenticationError, ValidationError
from ._safe_text import safe_repr
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
#: A field a half-built Config does not have yet (see Config.__repr__).
_UNSET: Final = object()


def _mask(key: str) -> str:
    """Show a key the way Stripe's dashboard does: prefix and last four characters."""
    if len(key) <= 12:
        return "****"
    prefix = key[: key.find("_", 3) + 1] if key.count("_") >= 2 else key[:3]
    return f"{prefix}****{key[-4:]}"


def _bad(param: str, message: str) -> ValidationError:
    return ValidationError(f"{param}: {message}", param=param)


def check_timeout(name: str, value: Any) -> float:
    """Return ``value`` as seconds if it is a positive, finite number, else raise."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not value > 0
    ):
        raise _bad(name, f"must be a positive, finite number of seconds, got {safe_repr(value)}")
    return float(value)


def check_retries(value: Any) -> int:
    """Return ``value`` if it is a whole number of retries from 0 to MAX_RETRIES, else raise."""
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


# Config's converters: named functions, one a field, so type checkers can follow them.
def _api_key(value: Any) -> str:
    return check_api_key(value)


def _base_url(value: Any) -> str:
    return check_base_url(value)


def _stripe_version(value: Any) -> str:
    return check_header_value("stripe_version", value)


def _stripe_account(value: Any) -> str | None:
    return None if value is None else check_header_value("stripe_account", value)


def _stripe_context(value: Any) -> str | None:
    return None if value is None else check_header_value("stripe_context", value)


def _timeout(value: Any) -> float:
    return check_timeout("timeout", value)


def _connect_timeout(value: Any) -> float:
    return check_timeout("connect_timeout", value)


def _default_headers(value: Any) -> tuple[tuple[str, str], ...]:
    return check_headers(value)


def check_max_connections(value: Any) -> int:
    """Return ``value`` if it is a whole number of connections >= 1, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad("max_connections", f"must be a whole number >= 1, got {safe_repr(value)}")
    return value


def _optional_proxy(value: Any) -> str | None:
    return None if value is None else check_proxy(value)


def _trust_env(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("trust_env", f"must be True or False, got {safe_repr(value)}")
    return value


def _check_ssl(value: Any) -> _ssl.SSLContext | None:
    if value is not None and not isinstance(value, _ssl.SSLContext):
        raise _bad(
            "ssl",
            "must be an ssl.SSLContext, e.g. ssl.create_default_context(cafile=...), "
            f"got {type(value).__name__}",
        )
    return value


@attrs.frozen(slots=True)
class Config:
    """Everything a client needs to send a request; built once, shared by copies.

    Every field checks itself (attrs converters): building one, or a copy with
    ``attrs.evolve(config, ...)``, raises :class:`ValidationError` naming the bad
    setting, so a ``Config`` that exists is one that can be sent with.
    """

    api_key: str = attrs.field(repr=False, converter=_api_key)
    base_url: str = attrs.field(default=DEFAULT_BASE_URL, converter=_base_url)
    stripe_version: str = attrs.field(default=STRIPE_API_VERSION, converter=_stripe_version)
    stripe_account: str | None = attrs.field(default=None, converter=_stripe_account)
    stripe_context: str | None = attrs.field(default=None, converter=_stripe_context)
    timeout: float = attrs.field(default=DEFAULT_TIMEOUT, converter=_timeout)
    connect_timeout: float = attrs.field(
        default=DEFAULT_CONNECT_TIMEOUT, converter=_connect_timeout
    )
    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, converter=check_retries)
    max_connections: int = attrs.field(
        default=DEFAULT_MAX_CONNECTIONS, converter=check_max_connections
    )
    default_headers: tuple[tuple[str, str], ...] = attrs.field(
        default=(), converter=_default_headers
    )
    #: An HTTP(S) proxy URL; its credentials are kept out of the repr.
    proxy: str | None = attrs.field(
        default=None,
        converter=_optional_proxy,
        repr=lambda p: "None" if p is None else repr(mask_url(p)),
    )
    #: Honour ``HTTP(S)_PROXY``, ``NO_PROXY`` and ``~/.netrc`` (off, as in aiohttp).
    trust_env: bool = attrs.field(default=False, converter=_trust_env)
    #: The TLS context that verifies the server (None: the system's default CAs).
    ssl: _ssl.SSLContext | None = attrs.field(default=None, converter=_check_ssl)

    @classmethod
    def from_arguments(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        stripe_version: str | None,
        **settings: Any,
    ) -> Config:
        """A client constructor's arguments, where None means "the default" (the key:
        ``$STRIPE_API_KEY``)."""
        return cls(
            api_key=resolve_api_key(api_key),
            base_url=DEFAULT_BASE_URL if base_url is None else base_url,
            stripe_version=STRIPE_API_VERSION if stripe_version is None else stripe_version,
            **settings,
        )

    def __repr__(self) -> str:
        # By hand, not attrs': a Config whose converter raised is half-built (the
        # ``self`` of attrs' __init__ on the traceback) and its repr must not raise,
        # or an error tracker rendering locals loses the ValidationError.
        shown = []
        for field in attrs.fields(Config):
            if field.repr is False:
                continue
            value = getattr(self, field.name, _UNSET)
            if value is _UNSET:
                text = "<unset>"
            elif callable(field.repr):
                text = field.repr(value)
            else:
                text = repr(value)
            shown.append(f"{field.name}={text}")
        return f"Config({', '.join(shown)})"

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


def check_headers(headers: Any) -> tuple[tuple[str, str], ...]:
    """``default_headers`` (a mapping, or the pairs a Config keeps) as checked pairs."""
    if headers is None:
        return ()
    if isinstance(headers, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in headers):
        headers = dict(headers)  # a Config's own pairs, given back by attrs.evolve
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
