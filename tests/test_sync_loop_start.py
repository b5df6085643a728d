"""A sync client whose private loop cannot start raises at once; it never waits forever.

The caller waits, under the portal's lock, for the loop thread to say its loop runs.
A thread that failed before it said so (its loop not made, or ended before it ran)
left the caller, and every later caller of the client, waiting forever.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import stripe_sessions as ss
from stripe_sessions._sync import loop as sync_loop
from tests.helpers import PATIENCE, PRICING


def _outcome(client: ss.Client) -> list[BaseException]:
    """What a create raised, from a thread joined with a bound (a hang fails, not blocks)."""
    raised: list[BaseException] = []

    def create() -> None:
        try:
            client.customer_sessions.create(customer="cus_1", components=PRICING)
        except BaseException as e:
            raised.append(e)

    thread = threading.Thread(target=create, daemon=True)
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the call waited for a loop that never ran"
    return raised


def test_a_loop_that_fails_to_start_is_an_error_not_a_hang(
    monkeypatch: pytest.MonkeyPatch, fake_stripe: Any
) -> None:
    def fail() -> int:  # after the loop was made, before the thread said it runs
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(sync_loop, "current_ident", fail)
    client = ss.Client(api_key=fake_stripe.api_key, base_url=fake_stripe.url)
    raised = _outcome(client)
    assert len(raised) == 1 and isinstance(raised[0], OSError), raised
    monkeypatch.undo()  # the next call starts a loop that runs
    assert _outcome(client) == []
    client.close()
    assert fake_stripe.created == 1
