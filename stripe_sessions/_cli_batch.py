"""The ``batch`` command: customer ids in, one JSON line per session out, as they come.

Each id is sent as soon as it is read and each result written (and flushed) as soon as
it is back; progress and one closing summary go to stderr. The batch key is chosen
before the first request, so every way the run can end (done, failures, Ctrl-C,
SIGTERM, ``| head -1``, an unreachable server) can say how to resume it without
creating anything twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any, Final, TextIO

import attrs

from ._async_client import AsyncClient
from ._batch import BatchResult, Counts, make_batch_key
from ._errors import StripeError

__all__ = ["Progress", "Stats", "count_ids", "read_ids", "run_batch"]

#: Latencies kept for the p50/p99 of the summary: a uniform sample, so memory stays flat
#: however long the batch.
SAMPLE: Final = 10_000
#: Exit codes of a run stopped by a signal or by its reader going away (128 + signal).
EXIT_SIGINT: Final = 130
EXIT_SIGPIPE: Final = 141
EXIT_SIGTERM: Final = 143


def plural(n: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def read_ids(source: TextIO) -> Iterator[str]:
    """The ids in ``source``, one per line; blank lines and ``#`` comments are skipped."""
    for line in source:
        text = line.strip()
        if text and not text.startswith("#"):
            yield text


def count_ids(source: TextIO) -> int | None:
    """How many ids a regular file holds (then rewound); None for a pipe or a terminal."""
    try:
        if not source.seekable() or source.isatty():
            return None
        start = source.tell()
        total = sum(1 for _ in read_ids(source))
        source.seek(start)
    except (OSError, ValueError):
        return None
    return total


@attrs.define
class Stats(Counts):
    """The batch's counts, plus a bounded latency sample for the summary."""

    started: float = attrs.field(factory=time.monotonic)
    _latencies: list[float] = attrs.field(factory=list)
    _seen: int = 0
    _rng: random.Random = attrs.field(factory=lambda: random.Random(0))

    def add(self, result: BatchResult) -> None:
        """Count one result and sample its latency."""
        super().add(result)
        if result.attempts:  # reservoir sampling (Algorithm R): each latency equally likely
            self._seen += 1
            if len(self._latencies) < SAMPLE:
                self._latencies.append(result.elapsed)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < SAMPLE:
                    self._latencies[slot] = result.elapsed

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
        return (
            f"created {self.succeeded}, failed {self.failed}, retried {self.retried} in "
            f"{wall:.1f} s ({rate}); latency p50 {self.percentile(0.5):.0f} ms, "
            f"p99 {self.percentile(0.99):.0f} ms; batch key {batch_key}"
        )


class Progress:
    """One progress line on stderr: redrawn in place on a terminal, else every 2 s.

    When stdout is the same terminal, the line is wiped before each JSON line is
    written and drawn again after it, so the two never share a line.
    """

    def __init__(self, stats: Stats, total: int | None, stream: TextIO = sys.stderr) -> None:
        self.stats = stats
        self.total = total
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0
        self._shown = False

    def line(self) -> str:
        """The progress text for the results counted so far."""
        s = self.stats
        if self.total is not None:
            head = f"{s.done}/{plural(self.total, 'session')}"
        else:
            head = plural(s.done, "session")
        wall = s.elapsed()
        # No rate in the first second: 1 result in 2 ms is not "500/s".
        rate = f"  {s.done / wall:.1f}/s" if wall >= 1.0 else ""
        return f"{head}  created {s.succeeded}  failed {s.failed}  retried {s.retried}{rate}"

    def update(self, force: bool = False) -> None:
        """Draw the line, at most every 0.1 s on a terminal and every 2 s otherwise."""
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        if self.tty:
            self.stream.write("\r\x1b[K" + self.line())
            self._shown = True
        else:
            self.stream.write(self.line() + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Wipe the line from the terminal (before other output)."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def finish(self) -> None:
        """Draw the final count, whatever the throttle says, and end the line."""
        self.update(force=True)
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = False


def _line(r: BatchResult, customer: str | None) -> dict[str, Any]:
    line: dict[str, Any] = {
        "index": r.index,
        "customer": customer,
        "idempotency_key": r.idempotency_key,
    }
    if r.session is not None:
        line["client_secret"] = r.session.client_secret
        line["expires_at"] = int(r.session.expires_at.timestamp())
        line["request_id"] = r.request_id
    elif r.error is not None:
        line["error"] = {
            "type": type(r.error).__name__,
            "message": r.error.message,
            "code": r.error.code,
            "request_id": r.request_id,
        }
    return line


def _resume(key: str) -> str:
    return f"run again with --batch-key {key} to create nothing twice"


async def run_batch(args: argparse.Namespace, client: AsyncClient) -> int:
    """Run ``batch``; returns the exit code."""
    source: TextIO = args.file
    key = make_batch_key(args.batch_key)
    total = count_ids(source)
    components = {name: {"enabled": True} for name in args.component or ["pricing_table"]}
    pending: dict[int, str] = {}  # index -> customer, from read until written
    counter = itertools.count()

    def params() -> Iterator[dict[str, Any]]:
        # Runs in the SDK's input thread, in input order: the indexes match the SDK's.
        for customer in read_ids(source):
            pending[next(counter)] = customer
            yield {"customer": customer, "components": components}

    stats = Stats()
    progress = Progress(stats, total)
    shared_terminal = progress.tty and sys.stdout.isatty()
    stopped_by: int | None = None
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        nonlocal stopped_by
        if stopped_by is None and task is not None:
            stopped_by = signum
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    of = f" of {total}" if total is not None else ""
    try:
        stream = client.customer_sessions.stream_many(
            params(),
            concurrency=args.concurrency,
            rate_limit=None if getattr(args, "shared", False) else args.rate,
            batch_key=key,
        )
        async with contextlib.aclosing(stream):
            async for r in stream:
                stats.add(r)
                customer = pending.pop(r.index, None)
                if shared_terminal:
                    progress.clear()
                try:
                    sys.stdout.write(json.dumps(_line(r, customer)) + "\n")
                    sys.stdout.flush()
                except BrokenPipeError:  # `| head -1`: the reader has what it wanted
                    _silence_stdout()
                    progress.clear()
                    print(f"output closed after {stats.done}{of}; {_resume(key)}", file=sys.stderr)
                    return EXIT_SIGPIPE
                if r.error is not None:
                    progress.clear()
                    print(f"failed: #{r.index} {customer}: {r.error}", file=sys.stderr)
                progress.update()
    except asyncio.CancelledError:
        if stopped_by is None:
            raise
        progress.clear()
        print(f"interrupted after {stats.done}{of}; {_resume(key)}", file=sys.stderr)
        return EXIT_SIGINT if stopped_by == signal.SIGINT else EXIT_SIGTERM
    except StripeError as e:  # the batch stopped: nothing could reach the server
        progress.clear()
        unsent = (total - stats.done) if total is not None else len(pending)
        print(f"error: {e.message}", file=sys.stderr)
        print(
            f"{stats.done}{of} done, {plural(unsent, 'item')} not sent; {_resume(key)}",
            file=sys.stderr,
        )
        return 1
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if source is not sys.stdin:
            source.close()  # argparse opened it
    progress.finish()
    print(stats.summary(key), file=sys.stderr)
    if stats.failed:
        failed = plural(stats.failed, "item")
        print(f"{failed} failed (listed above); {_resume(key)}", file=sys.stderr)
    return 1 if stats.failed else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
