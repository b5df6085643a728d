"""A batch observed: its ``INTERNAL`` span with its counts, the parent of its items' spans.

The batch's span is never made current: its generator runs a step at a time in
whatever task (or, for the sync client, whichever call) drives it. Its context is
handed to each item's scope as the parent instead, in the worker that runs the item.
"""

from __future__ import annotations

from typing import Any, Final

from .observer import Observer, Scope
from .otel import error_type

__all__ = ["BATCH", "BatchTrace", "observe_batch"]

#: The name of a batch's span (``create_many`` and ``stream_many``).
BATCH: Final = "customer_sessions.batch"


class BatchTrace:
    """One batch's span (when a provider is set) and counts; its items' scopes."""

    def __init__(self, observer: Observer, batch_key: str) -> None:
        self.observer = observer
        self.span: Any = None
        #: The OpenTelemetry context whose span is the batch's (None: no span).
        self.parent: Any = None
        self.created = self.replayed = self.failed = self.retried = 0
        telemetry = observer.telemetry
        if telemetry is not None and telemetry.live():
            api = telemetry.api
            self.span = telemetry.tracer.start_span(
                BATCH, kind=api.INTERNAL, attributes={"stripe.batch_key": batch_key}
            )
            self.parent = api.trace.set_span_in_context(self.span)

    def item(self, options: Any, index: int) -> Scope:
        """The scope of item ``index``'s attempts (``async with``), a child of the batch."""
        return self.observer.create(options, self.parent, index)

    def add(self, result: Any) -> None:
        """Count one finished item (a ``BatchResult``)."""
        if result.session is None:
            self.failed += 1
        elif result.session.idempotent_replayed:
            self.replayed += 1
        else:
            self.created += 1
        self.retried += max(0, result.attempts - 1)

    def end(self, failure: BaseException | None) -> None:
        """End the batch's span with its counts (and ``error.type`` if it ended early)."""
        span, self.span = self.span, None
        if span is None:
            return
        span.set_attributes(
            {
                "stripe.batch.created": self.created,
                "stripe.batch.replayed": self.replayed,
                "stripe.batch.failed": self.failed,
                "stripe.batch.retried": self.retried,
            }
        )
        if failure is not None and not isinstance(failure, GeneratorExit):  # not a break
            kind = error_type(failure)
            span.set_attribute("error.type", kind)
            span.set_status(self.observer.telemetry.api.ERROR, kind)  # type: ignore[union-attr]
        span.end()


def observe_batch(observer: Observer | None, batch_key: str) -> BatchTrace | None:
    """A starting batch's trace, or None when nothing observes it (one check per item)."""
    if observer is None or not observer.active():
        return None
    return BatchTrace(observer, batch_key)
