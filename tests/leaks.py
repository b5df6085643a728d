"""What an error tracker would show of an error, and the secrets it must never show."""

from __future__ import annotations

import traceback

import stripe_sessions as ss

KEY = "sk_test_leakcheck0123456789abcdef"
SECRET = "cuss_secret_Leak0123456789abcdefghij"
MARKERS = (KEY, SECRET, "cuss_secret_", "leakcheck0123")


def rendered(error: BaseException) -> str:
    """Everything a tracker shows of an error: traceback with locals, every link of the chain."""
    text = "".join(traceback.TracebackException.from_exception(error, capture_locals=True).format())
    parts = [text, str(error), repr(error)]
    seen = error
    while seen.__cause__ is not None or seen.__context__ is not None:
        seen = seen.__cause__ or seen.__context__  # type: ignore[assignment]
        parts += [str(seen), repr(seen)]
    if isinstance(error, ss.StripeError):
        parts += [str(error.body), str(error.json_body), str(dict(error.headers))]
    return "\n".join(parts)


def assert_clean(text: str) -> None:
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} leaked:\n{text[-3000:]}"
