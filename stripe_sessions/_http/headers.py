"""The headers every request of a client sends, its API key hidden from every ``repr``."""

from __future__ import annotations

from collections.abc import Mapping

from .._config import Config
from .pool import SDK_HEADERS

__all__ = ["Masked", "client_headers", "masked"]


class Masked(str):
    """A header value whose ``repr`` hides it: error trackers render locals with ``repr``."""

    masked: str

    def __repr__(self) -> str:
        return repr(self.masked)


def masked(value: str, shown: str) -> Masked:
    """``value`` as a :class:`Masked` string whose ``repr`` is that of ``shown``."""
    secret = Masked(value)
    secret.masked = shown
    return secret


def client_headers(config: Config, sent: Mapping[str, str]) -> dict[str, str]:
    """The headers a client adds to every request, less those the session ``sent`` anyway.

    ``Authorization`` is :class:`Masked`: a traceback's locals show ``sk_test_****1234``.
    A call adds its ``Idempotency-Key`` and its own overrides.
    """
    headers: dict[str, str] = {
        "Authorization": masked(f"Bearer {config.api_key}", f"Bearer {config.masked_key}"),
        "Stripe-Version": config.stripe_version,
        **SDK_HEADERS,
    }
    if config.stripe_account:
        headers["Stripe-Account"] = config.stripe_account
    if config.stripe_context:
        headers["Stripe-Context"] = config.stripe_context
    headers.update(config.default_headers)
    return {k: v for k, v in headers.items() if sent.get(k) != v}
