"""The observer keeps the client's secrets with a masking repr: no frame's ``self`` shows them.

Some error trackers render each frame's locals and the attributes of its ``self``
(stackprinter, Sentry's object serializer...): the observer's attributes must not
show the API key either.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions.testing import FakeStripe
from tests.helpers import PRICING


class Stop(BaseException):
    """Not an Exception: a hook's ``KeyboardInterrupt``..."""


def _stopping(event: Any) -> None:
    raise Stop


def _locals_and_attributes(tb: TracebackType | None) -> str:
    shown: list[str] = []
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            shown.append(repr(value))
            attributes = getattr(value, "__dict__", None)
            if isinstance(attributes, dict):
                shown += [f"{k}={v!r}" for k, v in attributes.items()]
        tb = tb.tb_next
    return "\n".join(shown)


@pytest.mark.parametrize("kind", ["request", "response", "retry"])
async def test_no_key_in_the_attributes_of_a_hook_calling_frame(
    fake: FakeStripe, kind: str
) -> None:
    fake.fail_next(500)  # a retry event for "retry" hooks
    async with ss.AsyncClient(
        api_key=fake.api_key, base_url=fake.url, event_hooks={kind: _stopping}
    ) as client:
        with pytest.raises(Stop) as caught:
            await client.customer_sessions.create(customer="cus_1", components=PRICING)
    text = _locals_and_attributes(caught.value.__traceback__)
    assert "secrets=" in text  # an observer's attributes are on it
    assert fake.api_key not in text
