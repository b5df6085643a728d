"""A batch's key is in ``__notes__`` of the error that ends it, on every Python.

``BaseException.add_note`` is 3.11+; on 3.10 the SDK keeps the same list in
``__notes__`` (3.10's tracebacks do not print it), so ``e.__notes__`` and
``e.batch_key`` read alike on 3.10 to 3.13.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from stripe_sessions._batch.results import mark_batch_key
from tests.helpers import PRICING, Api, run_script

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


def test_ctrl_c_through_a_sync_batch_carries_the_note() -> None:
    out = run_script(
        """
        items = ({"customer": f"cus_{i}", "components": P} for i in range(400))
        with FakeStripe.running(latency=0.05) as fake:
            with ss.Client(api_key=fake.api_key, base_url=fake.url) as client:
                threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
                try:
                    client.customer_sessions.create_many(
                        items, concurrency=8, rate_limit=None, batch_key="k-1")
                    print("not interrupted")
                except KeyboardInterrupt as e:
                    print(e.batch_key, e.__notes__)
        """,
        "-W",
        "error::ResourceWarning",
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"k-1 {[NOTE]!r}", out.stdout
