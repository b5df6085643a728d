"""The pause after a ``rate_limit`` 429: how long by default, at most, and how it is read.

One home for every pause a 429 causes: both limiters', a batch's pacer's and the
:class:`~stripe_sessions._http.retry.RetryPolicy`'s. Stripe sends no ``Retry-After``;
a proxy's is honoured up to :data:`MAX_PAUSE`.
"""

from __future__ import annotations

from typing import Final

from .._validate import seconds

__all__ = ["DEFAULT_PAUSE", "MAX_PAUSE", "PAUSE", "clamp_pause"]

#: Pause of batch traffic after a rate_limit 429 with no Retry-After (Stripe sends none).
DEFAULT_PAUSE: Final = 1.0
#: The longest pause a 429 (its Retry-After, or ``pause=``) can cause.
MAX_PAUSE: Final = 60.0
#: The check of a ``pause=`` setting: seconds in [0, MAX_PAUSE].
PAUSE: Final = seconds("pause", MAX_PAUSE, zero=True)


def clamp_pause(retry_after: float | None, default: float, cap: float = MAX_PAUSE) -> float:
    """The pause after a ``rate_limit`` 429: its ``Retry-After``, else ``default``, at most ``cap``.

    A missing, negative or NaN ``Retry-After`` means ``default``.
    """
    if retry_after is None or not retry_after >= 0:  # None or NaN
        return min(default, cap)
    return min(float(retry_after), cap)
