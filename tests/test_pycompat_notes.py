"""A batch's key is in ``__notes__`` of the error that ends it, on every Python.

``BaseException.add_note`` is 3.11+; on 3.10 the SDK keeps the same list in
``__notes__`` (3.10's tracebacks do not print it), so ``e.__notes__`` and
``e.batch_key`` read alike on 3.10 to 3.13.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stripe_sessions._batch.keys import mark_batch_key
from tests.helpers import PRICING, Api

NOTE = "stripe_sessions: run the batch again with batch_key='k-1' to create nothing twice"


def test_the_note_is_added_once_next_to_the_callers_own() -> None:
    error = LookupError("cursor closed")
    error.__notes__ = ["the caller's own note"]  # type: ignore[attr-defined]
    mark_batch_key(error, "k-1")
    mark_batch_key(error, "k-1")
    assert error.batch_key == "k-1"  # type: ignore[attr-defined]
    assert error.__notes__ == ["the caller's own note", NOTE]  # type: ignore[attr-defined]


def test_an_error_that_takes_no_attribute_is_left_alone() -> None:
    class Frozen(Exception):
        def __setattr__(self, name: str, value: Any) -> None:
            raise AttributeError(name)

    error = Frozen("x")
    mark_batch_key(error, "k-1")  # never raises instead of the error itself
    assert not hasattr(error, "__notes__")


async def test_an_input_that_raises_ends_the_batch_with_the_note(api: Api) -> None:
    def broken() -> Iterator[dict[str, Any]]:
        yield {"customer": "c", "components": PRICING}
        raise LookupError("cursor closed")

    with pytest.raises(LookupError) as info:
        await api.call("create_many", broken(), rate_limit=None, batch_key="k-1")
    assert info.value.__notes__ == [NOTE]  # type: ignore[attr-defined]
