"""What a batch shows: one JSON line per result, the progress line and the closing summary."""

from __future__ import annotations

import random
import sys
import time
from typing import Any, Final, TextIO

import attrs

from .._batch.results import BatchResult, Counts
from .streams import write_stderr

__all__ = ["SAMPLE", "Progress", "Stats", "plural", "result_line"]

#: Latencies kept for the p50/p99 of the summary: a uniform sample, so memory stays flat
#: however long the batch.
SAMPLE: Final = 10_000


def plural(n: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@attrs.define
class Stats(Counts):
    """The batch's counts, plus a bounded latency sample for the summary.

    ``skipped``: lines ``--skip-invalid`` skipped (not in ``done``, which counts sessions).
    ``replayed``: sessions Stripe answered with ``Idempotent-Replayed: true`` (made
    before under the same key) in a ``resumed`` run (``--batch-key`` given): an earlier
    run may have made them. A run under a fresh random key has no earlier run: a replay
    there is of this run's own attempt whose answer was lost, so it counts as ``new``
    (this run created it). ``new``: the rest of ``succeeded``.
    """

    replayed: int = 0
    resumed: bool = True
    skipped: int = 0
    held: int = 0  # skipped lines that hold an index (their results are not counted)
    started: float = attrs.field(factory=time.monotonic)
    _latencies: list[float] = attrs.field(factory=list)
    _seen: int = 0
    _rng: random.Random = attrs.field(factory=lambda: random.Random(0))

    def add(self, result: BatchResult) -> None:
        """Count one result and sample its latency."""
        super().add(result)
        session = result.session
        if session is not None and session.idempotent_replayed and self.resumed:
            self.replayed += 1
        if result.attempts:  # reservoir sampling (Algorithm R): each latency equally likely
            self._seen += 1
            if len(self._latencies) < SAMPLE:
                self._latencies.append(result.elapsed)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < SAMPLE:
                    self._latencies[slot] = result.elapsed

    @property
    def new(self) -> int:
        """Sessions this run created (Stripe did not replay them)."""
        return self.succeeded - self.replayed

    def created(self, sep: str = ", ") -> str:
        """``created 30``, or with replays ``created 10, replayed 20`` (``sep`` between)."""
        replayed = f"{sep}replayed {self.replayed}" if self.replayed else ""
        return f"created {self.new}{replayed}"

    def elapsed(self) -> float:
        """Seconds since the batch started."""
        return time.monotonic() - self.started

    def percentile(self, q: float) -> float:
        """The ``q`` quantile of the latencies, in milliseconds (0 with none)."""
        if not self._latencies:
            return 0.0
        ordered = sorted(self._latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000

    def summary(self, batch_key: str) -> str:
        """The closing line: counts, time, rate, latency and the batch key."""
        wall = self.elapsed()
        rate = f"{self.done / wall:.1f}/s" if wall > 0 else "-"
        skipped = f"skipped {plural(self.skipped, 'invalid line')}, " if self.skipped else ""
        return (
            f"{self.created()}, failed {self.failed}, {skipped}"
            f"retried {self.retried} in "
            f"{wall:.1f} s ({rate}); latency p50 {self.percentile(0.5):.0f} ms, "
            f"p99 {self.percentile(0.99):.0f} ms; batch key {batch_key}"
        )


class Progress:
    """One progress line on stderr: redrawn in place on a terminal, else every 2 s.

    When stdout is the same terminal, the line is wiped before each JSON line is
    written and drawn again after it, so the two never share a line. Drawing is
    best-effort: a stream that cannot be written is left be.
    """

    def __init__(self, stats: Stats, total: int | None, stream: TextIO | None = None) -> None:
        self.stats = stats
        self.total = total
        self.stream = stream = sys.stderr if stream is None else stream
        try:
            self.tty = stream.isatty()
        except (OSError, ValueError):
            self.tty = False
        self._last = 0.0
        self._shown = False

    def line(self) -> str:
        """The progress text for the results counted so far."""
        s = self.stats
        total = self.total  # set by another thread once a file's lines are counted
        seen = s.done + s.held  # the total counts the skipped lines that would be ids
        head = (
            f"{seen}/{plural(total, 'session')}" if total is not None else plural(seen, "session")
        )
        wall = s.elapsed()
        # No rate in the first second: 1 result in 2 ms is not "500/s".
        rate = f"  {s.done / wall:.1f}/s" if wall >= 1.0 else ""
        skipped = f"  skipped {s.skipped}" if s.skipped else ""
        return f"{head}  {s.created('  ')}  failed {s.failed}{skipped}  retried {s.retried}{rate}"

    def update(self, force: bool = False) -> None:
        """Draw the line, at most every 0.1 s on a terminal and every 2 s otherwise."""
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        if self.tty:
            write_stderr(self.stream, "\r\x1b[K" + self.line())
            self._shown = True
        else:
            write_stderr(self.stream, self.line() + "\n")

    def clear(self) -> None:
        """Wipe the line from the terminal (before other output)."""
        if self._shown:
            write_stderr(self.stream, "\r\x1b[K")
            self._shown = False

    def finish(self) -> None:
        """Draw the final count, whatever the throttle says, and end the line."""
        self.update(force=True)
        if self.tty:
            write_stderr(self.stream, "\n")
            self._shown = False


def result_line(r: BatchResult, customer: str | None) -> dict[str, Any]:
    """The JSON line written for one result: its session (``replayed``: Stripe answered
    with ``Idempotent-Replayed: true``), or its error; never a key."""
    line: dict[str, Any] = {
        "index": r.index,
        "customer": customer,
        "idempotency_key": r.idempotency_key,
    }
    if r.session is not None:
        line["client_secret"] = r.session.client_secret
        line["expires_at"] = int(r.session.expires_at.timestamp())
        line["request_id"] = r.request_id
        line["replayed"] = r.session.idempotent_replayed
    elif r.error is not None:
        line["error"] = {
            "type": type(r.error).__name__,
            "message": r.error.message,
            "code": r.error.code,
            "request_id": r.request_id,
        }
    return line
