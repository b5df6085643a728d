"""What a call the loop ended carries: a closed client's error, a Ctrl-C's keys and notes."""

from __future__ import annotations

from .._lifecycle import ClientClosedError

__all__ = ["carry", "closed_under"]


def closed_under(unwound: list[BaseException]) -> ClientClosedError:
    """The error of a call whose loop ended under it: the client was closed meanwhile."""
    error = ClientClosedError(
        "The client was closed while this call was running; a batch can be run again "
        "with its batch_key to create nothing twice"
    )
    for inner in unwound:
        batch_key = getattr(inner, "batch_key", None)
        if batch_key is not None:
            error.batch_key = batch_key
    return error


def carry(source: BaseException, target: BaseException) -> None:
    """Put on a Ctrl-C what the interrupted call can be retried with, as attribute and note.

    A batch's ``batch_key`` (and its notes); a single call's ``idempotency_key`` (the
    call's ``with pool.calls.track(key)`` put it on the cancellation): its request may
    have been sent.
    """
    if source is target:  # the call raised the interrupt itself (an on_progress did)
        return
    batch_key = getattr(source, "batch_key", None)
    if batch_key is not None:
        target.batch_key = batch_key  # type: ignore[attr-defined]
    for note in tuple(getattr(source, "__notes__", ())):
        _add_note(target, note)
    key = getattr(source, "idempotency_key", None)
    if (
        isinstance(key, str)
        and batch_key is None
        and getattr(target, "idempotency_key", None) is None
    ):
        target.idempotency_key = key  # type: ignore[attr-defined]
        _add_note(
            target,
            "stripe_sessions: the request may have been sent: retry with "
            f"idempotency_key={key!r} to create nothing twice",
        )


def _add_note(target: BaseException, note: str) -> None:
    if hasattr(target, "add_note"):
        target.add_note(note)
    else:  # Python 3.10: the list add_note keeps (as the batch's mark_batch_key does)
        target.__notes__ = [*getattr(target, "__notes__", ()), note]  # type: ignore[attr-defined]
