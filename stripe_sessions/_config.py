"""Frozen client settings: the API key (hidden from repr), URLs, timeouts and retries."""

from __future__ import annotations

import os
import ssl as _ssl
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._errors import AuthenticationError
from ._http import retry as _retry
from ._http.reserved import owned_reason
from ._http.retry import RetryPolicy
from ._observe.events import Hooks, check_event_hooks
from ._observe.otel import tracing_default
from ._urls import mask_url, url_secrets
from ._validate import (
    checked,
    flag,
    header,
    header_name,
    instance,
    optional,
    refuse,
    seconds,
    url,
    whole,
)
from ._version import STRIPE_API_VERSION

__all__ = [
    "BASE_URL_VARIABLE",
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "MAX_RETRIES",
    "NOT_GIVEN",
    "Config",
    "NotGiven",
    "check_api_key",
    "resolve_base_url",
    "check_headers",
    "check_retries",
    "resolve_api_key",
]

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


# Each setting's check (see _validate), built once; Config's fields convert with them
# and RequestOptions.checked uses the same ones for a call's overrides.
TIMEOUT: Final = seconds("timeout")
CONNECT_TIMEOUT: Final = seconds("connect_timeout")
RETRIES: Final = whole("max_retries", 0, MAX_RETRIES)
MAX_CONNECTIONS: Final = whole("max_connections", 1)
STRIPE_VERSION: Final = header("stripe_version")
STRIPE_ACCOUNT: Final = header("stripe_account")
STRIPE_CONTEXT: Final = header("stripe_context")
#: The longest base URL taken: every request line starts with it, servers refuse
#: request lines of a few KB, and a client's repr shows it whole.
MAX_BASE_URL: Final = 2048


def _base_url(name: str) -> Any:
    """``url(name, ...)`` for a base URL, at most :data:`MAX_BASE_URL` characters."""
    check = url(name, example=DEFAULT_BASE_URL, credentials=False, base=True)

    def bounded(value: Any) -> str:
        if isinstance(value, str) and len(value) > MAX_BASE_URL:
            raise refuse(name, f"must be at most {MAX_BASE_URL} characters, got {len(value):,}")
        return check(value)

    return bounded


BASE_URL: Final = _base_url("base_url")
#: The environment variable a client reads its base URL from when ``base_url`` is not
#: given (as ``STRIPE_API_KEY`` for the key): checked as ``base_url`` is, its errors
#: naming the variable.
BASE_URL_VARIABLE: Final = "STRIPE_BASE_URL"
_ENV_BASE_URL: Final = _base_url(BASE_URL_VARIABLE)
PROXY: Final = url("proxy", example="http://proxy:3128", credentials=True)
TRUST_ENV: Final = flag("trust_env")
_TRACING: Final = flag("tracing")


def _tracing(value: Any) -> bool:
    """``tracing``: True, False, or None for the environment's say (on by default)."""
    return tracing_default() if value is None else _TRACING(value)


SSL: Final = instance(
    "ssl", _ssl.SSLContext, "must be an ssl.SSLContext, e.g. ssl.create_default_context(cafile=...)"
)
#: The name _batch/results.py imports (``check_retries(n)``).
check_retries: Final = RETRIES
_API_KEY: Final = header("api_key")
#: A ``default_headers`` name: a valid one that neither frames the request nor is the
#: SDK's own (``Authorization``, ``Idempotency-Key``, ``Stripe-Version``...; see
#: _http/reserved.py, the list a lent session's default headers are checked against).
HEADER_NAME: Final = header_name("default_headers", owned_reason)


def check_api_key(key: Any) -> str:
    """Return ``key`` if it can be sent as a Bearer token, else raise ValidationError."""
    if " " in _API_KEY(key):
        raise refuse(
            "api_key",
            "must not contain spaces or control characters (it goes into the Authorization header)",
        )
    return str(key)


def check_headers(headers: Any) -> tuple[tuple[str, str], ...]:
    """``default_headers`` (a mapping, or the pairs a Config keeps) as checked pairs."""
    if headers is None:
        return ()
    if isinstance(headers, tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in headers):
        headers = dict(headers)  # a Config's own pairs, given back by attrs.evolve
    if not isinstance(headers, Mapping):
        raise refuse("default_headers", f"must be a mapping, got {type(headers).__name__}")
    seen: dict[str, str] = {}
    for name, value in headers.items():
        HEADER_NAME(name)
        if name.lower() in seen:  # header names are case-insensitive: both would be sent
            raise refuse(
                f"default_headers[{name}]",
                f"is given twice (as {seen[name.lower()]!r} too: header names are "
                "case-insensitive)",
            )
        seen[name.lower()] = name
        header(f"default_headers[{name}]")(value)
    return tuple(headers.items())


@attrs.frozen(slots=True)
class Config:
    """Everything a client needs to send a request; built once, shared by copies.

    Every field checks itself (attrs converters): building one, or a copy with
    ``attrs.evolve(config, ...)``, raises :class:`ValidationError` naming the bad
    setting, so a ``Config`` that exists is one that can be sent with.
    """

    api_key: str = attrs.field(repr=False, converter=check_api_key)
    base_url: str = checked(BASE_URL, DEFAULT_BASE_URL)
    #: Where ``base_url`` came from when the client was not given one:
    #: ``"STRIPE_BASE_URL"`` (the environment), else None.
    base_url_from: str | None = attrs.field(default=None, kw_only=True)
    stripe_version: str = checked(STRIPE_VERSION, STRIPE_API_VERSION)
    stripe_account: str | None = checked(optional(STRIPE_ACCOUNT), None)
    stripe_context: str | None = checked(optional(STRIPE_CONTEXT), None)
    timeout: float = checked(TIMEOUT, DEFAULT_TIMEOUT)
    connect_timeout: float = checked(CONNECT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT)
    max_retries: int = checked(RETRIES, DEFAULT_MAX_RETRIES)
    max_connections: int = checked(MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS)
    #: Given as a mapping; kept as checked (name, value) pairs.
    default_headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=check_headers)
    #: An HTTP(S) proxy URL; its credentials are kept out of the repr.
    proxy: str | None = checked(
        optional(PROXY), None, repr=lambda p: "None" if p is None else repr(mask_url(p))
    )
    #: Honour ``HTTP(S)_PROXY``, ``NO_PROXY`` and ``~/.netrc`` (off, as in aiohttp).
    trust_env: bool = checked(TRUST_ENV, False)
    #: The TLS context that verifies the server (None: the system's default CAs).
    ssl: _ssl.SSLContext | None = checked(optional(SSL), None)  # noqa: RUF009 - attrs, not a default
    #: Called with each request event: ``{"request": [...], "response": [...], "retry": [...]}``
    #: (given as a mapping of callables or lists; kept as ``(kind, hooks)`` pairs).
    event_hooks: Hooks = attrs.field(default=(), converter=check_event_hooks, repr=False)
    #: OpenTelemetry spans and metrics, when ``opentelemetry-api`` is importable. Given as
    #: None: on unless ``STRIPE_SESSIONS_OTEL_ENABLED=false``.
    tracing: bool = attrs.field(default=None, converter=_tracing)
    #: How calls are retried (Stripe's rules and waits), with ``max_retries`` retries:
    #: derived, so a copy with another ``max_retries`` gets its own.
    retry: RetryPolicy = attrs.field(
        init=False,
        repr=False,
        default=attrs.Factory(lambda c: _retry.DEFAULT_POLICY.with_retries(c.max_retries), True),
    )

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
        ``$STRIPE_API_KEY``; the base URL: ``$STRIPE_BASE_URL``, else Stripe's)."""
        api_key = resolve_api_key(api_key)
        base_url, base_url_from = resolve_base_url(base_url)
        return cls(
            api_key=api_key,
            base_url=base_url,
            base_url_from=base_url_from,
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


def resolve_base_url(base_url: str | None) -> tuple[str, str | None]:
    """The base URL given, else ``$STRIPE_BASE_URL``, else Stripe's; and where it came
    from (``"STRIPE_BASE_URL"`` or None).

    The argument wins over the environment. An empty variable counts as unset (as an
    empty ``STRIPE_API_KEY`` does); any other value is checked as ``base_url=`` is, and
    a bad one is a :class:`ValidationError` naming the variable (its value masked).
    """
    if base_url is not None:
        return base_url, None
    value = os.environ.get(BASE_URL_VARIABLE)
    if not value:
        return DEFAULT_BASE_URL, None
    return _ENV_BASE_URL(value), BASE_URL_VARIABLE
