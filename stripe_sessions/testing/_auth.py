"""How the fake reads an API key: Bearer or HTTP Basic, test keys only, masked like Stripe."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Final

__all__ = ["check_key", "mask_headers", "shown"]

TEST_KEY_PREFIXES: Final = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES: Final = ("sk_live_", "rk_live_")

NO_KEY: Final = (
    "You did not provide an API key. You need to provide your API key in the "
    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
)


def key_of(authorization: str) -> str | None:
    """The key in an ``Authorization`` header: ``Bearer KEY`` or Basic with KEY as user name."""
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":  # curl -u sk_test_...:  (Stripe reads the user name)
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        # binascii.Error and UnicodeDecodeError, and the ValueError b64decode raises for
        # text that is not ASCII (a header's bytes that are not UTF-8 arrive as surrogates).
        except ValueError:
            return None
        return decoded.partition(":")[0]
    return None


def shown(key: str) -> str:
    """A key as Stripe quotes it in a 401: its prefix and last four (``sk_test_****1234``).

    A key too short to hide anything is shown as its prefix and ``****`` only.
    """
    second = key.find("_", key.find("_") + 1)
    prefix = key[: second + 1] if 0 < second <= 8 else ""
    rest = key[len(prefix) :]
    return f"{prefix}****{rest[-4:]}" if len(rest) > 8 else f"{prefix}****"


def check_key(authorization: str) -> str | None:
    """None when ``authorization`` carries a test key, else the 401's message."""
    if not authorization.strip():
        return NO_KEY
    key = key_of(authorization)
    if key is None or not key:
        return f"Invalid API Key provided: {shown(key or '')}"
    if key.startswith(LIVE_KEY_PREFIXES):
        return (
            f"FakeStripe takes test-mode keys only (sk_test_... or rk_test_...), got a "
            f"live-mode key: {shown(key)}. Never send a live key to a test server."
        )
    if not key.startswith(TEST_KEY_PREFIXES) or len(key) == len("sk_test_"):
        return f"Invalid API Key provided: {shown(key)}"
    return None


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the key in ``Authorization`` masked, for a repr."""
    masked = dict(headers)
    for name, value in headers.items():
        if name.lower() == "authorization":
            key = key_of(value)
            scheme = value.strip().partition(" ")[0]
            masked[name] = f"{scheme} {shown(key)}" if key else "****"
    return masked
