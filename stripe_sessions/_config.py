"""Frozen client settings: the API key (hidden from repr), URLs, timeouts and retries."""

from __future__ import annotations

import os
from typing import Final

import attrs

from ._errors import AuthenticationError
from ._version import STRIPE_API_VERSION

DEFAULT_BASE_URL: Final = "https://api.stripe.com"
DEFAULT_TIMEOUT: Final = 80.0
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 100


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


def _check_timeout(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_retries(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_retries must be a whole number >= 0, got {value!r}")
    return value


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

    @property
    def masked_key(self) -> str:
        """The API key as it may appear in a message: ``sk_test_****1234``."""
        return _mask(self.api_key)


def resolve_api_key(api_key: str | None) -> str:
    """Return the key given, else ``$STRIPE_API_KEY``; raise a clear error when neither is set."""
    key = api_key if api_key is not None else os.environ.get("STRIPE_API_KEY")
    if not key:
        raise AuthenticationError(
            "No API key provided: pass api_key=... to the client or set the "
            "STRIPE_API_KEY environment variable. Keys are at "
            "https://dashboard.stripe.com/apikeys."
        )
    if not isinstance(key, str) or key != key.strip() or not key.isprintable():
        raise AuthenticationError(
            "The API key must be a string without spaces or control characters "
            "(it goes into the Authorization header)."
        )
    return key


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
    default_headers: dict[str, str] | None,
) -> Config:
    """Check and freeze the constructor's arguments."""
    url = (base_url or DEFAULT_BASE_URL).rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"base_url must start with http:// or https://, got {url!r}")
    if isinstance(max_connections, bool) or not isinstance(max_connections, int):
        raise ValueError(f"max_connections must be a whole number, got {max_connections!r}")
    if max_connections < 1:
        raise ValueError(f"max_connections must be >= 1, got {max_connections!r}")
    return Config(
        api_key=resolve_api_key(api_key),
        base_url=url,
        stripe_version=stripe_version or STRIPE_API_VERSION,
        stripe_account=stripe_account,
        stripe_context=stripe_context,
        timeout=_check_timeout("timeout", timeout),
        connect_timeout=_check_timeout("connect_timeout", connect_timeout),
        max_retries=_check_retries(max_retries),
        max_connections=max_connections,
        default_headers=tuple((default_headers or {}).items()),
    )
