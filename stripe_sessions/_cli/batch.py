"""The ``batch`` command: customer ids in, one JSON line per session out, as they come.

The input is read once, as bytes, line by line (each line at most MAX_LINE bytes, so
memory stays flat however long a line): each id is sent as soon as it is read and each
result written (and flushed) as soon as it is back; progress and one closing summary go
to stderr. The batch key is printed (and flushed) before the first request, and every
early end (a bad line, stdout full or closed, Ctrl-C, SIGTERM, an unreachable server)
exits non-zero with the command that resumes it without creating anything twice.

Exit codes: 0 every id created (lines skipped by ``--skip-invalid`` aside), 1 some
items failed or the server could not be reached, 2 a usage or input error (a line not
UTF-8, too long or holding odd whitespace stops the batch after the ids before it), 3
stdout could not be written, 130 Ctrl-C, 141 stdout closed, 143 SIGTERM. A stderr that
breaks after the batch key is out changes none of them (see run_batch).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import errno
import io
import itertools
import json
import os
import queue
import random
import shlex
import signal
import stat
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, Final, TextIO

import attrs

from .._batch.results import BatchResult, Counts, make_batch_key
from .._client import AsyncClient
from .._errors import StripeError
from .text import printable

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_OUTPUT",
    "EXIT_SIGINT",
    "EXIT_SIGPIPE",
    "EXIT_SIGTERM",
    "MAX_LINE",
    "MAX_SKIP",
    "EndlessLine",
    "Line",
    "Progress",
    "Stats",
    "count_ids",
    "printable",
    "raw_lines",
    "read_lines",
    "run_batch",
    "shown",
]

#: Latencies kept for the p50/p99 of the summary: a uniform sample, so memory stays flat
#: however long the batch.
SAMPLE: Final = 10_000
#: The longest input line read whole (no customer id is longer: Stripe's strings are at
#: most 5,000 characters). A longer line is a bad line: without --skip-invalid the batch
#: stops as soon as it passes this cap (nothing more of it, or after it, is read); with
#: --skip-invalid it is read past in _CHUNK pieces, up to MAX_SKIP bytes.
MAX_LINE: Final = 32 * 1024
_CHUNK: Final = 64 * 1024
#: With --skip-invalid, the longest line read past to find its end. A line over it is
#: not a line of a file of ids but a stream that never ends one (/dev/zero, a producer
#: that writes no newline): the batch stops there (exit 2) instead of reading forever.
#: A bound in bytes, not seconds, so the outcome does not depend on how fast the input
#: comes or how busy the machine is; 1 GiB is read past in about a second, and is
#: 30,000 times the longest line that can hold an id.
MAX_SKIP: Final = 1024**3
#: How many bytes of a bad line an error message shows (escaped).
SHOWN: Final = 40
#: Exit codes: some items failed; a usage or input error; stdout could not be written.
EXIT_FAILED: Final = 1
EXIT_INPUT: Final = 2
EXIT_OUTPUT: Final = 3
#: Exit codes of a run stopped by a signal or by its reader going away (128 + signal).
EXIT_SIGINT: Final = 130
EXIT_SIGPIPE: Final = 141
EXIT_SIGTERM: Final = 143


def plural(n: int, word: str) -> str:
    """``1 session``, ``2 sessions``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def shown(raw: bytes) -> str:
    """A bad line as an error shows it: its first bytes, escaped (``b'caf\\xe9'``)."""
    raw = raw.rstrip(b"\r\n")
    return repr(raw[:SHOWN]) + ("..." if len(raw) > SHOWN else "")


@attrs.frozen
class Line:
    """One input line: ``id`` when it holds one, else ``problem`` says why it cannot be read.

    Blank lines and comments are not :class:`Line` s at all. ``would_be_id``: the line is
    neither blank nor a comment, so once fixed it will be an id (and keeps an index).
    """

    number: int
    raw: bytes  # the line's first MAX_LINE bytes at most
    id: str | None = None
    problem: str | None = None
    would_be_id: bool = True


class EndlessLine(Exception):
    """A line longer than MAX_SKIP: too long to skip, so the input ends there."""

    def __init__(self, number: int, raw: bytes) -> None:
        super().__init__(f"line {number} is longer than {MAX_SKIP} bytes")
        self.number = number
        self.raw = raw  # its first MAX_LINE bytes


def raw_lines(stream: BinaryIO, skip_long: bool = True) -> Iterator[tuple[int, bytes, bool]]:
    """``(number, first bytes, too long)`` for each line, reading each at most once.

    Hand-written because no reader in the standard library caps a line. A line over
    MAX_LINE bytes ends the lines at once unless ``skip_long``; then it is read past in
    64 KiB chunks (a 100 MB line costs 64 KiB), and one over MAX_SKIP bytes raises
    EndlessLine.
    """
    number = 0
    while True:
        raw = stream.readline(MAX_LINE + 1)
        if not raw:
            return
        number += 1
        too_long = len(raw) > MAX_LINE and not raw.endswith(b"\n")
        head = raw[:MAX_LINE]
        if number == 1 and head.startswith(codecs.BOM_UTF8):
            head = head[len(codecs.BOM_UTF8) :]
        if too_long:
            if not skip_long:  # its end may never come: read nothing more
                yield number, head, True
                return
            seen, rest = len(raw), raw
            while rest and not rest.endswith(b"\n"):
                if seen > MAX_SKIP:
                    raise EndlessLine(number, head)
                rest = stream.readline(_CHUNK)
                seen += len(rest)
        yield number, head, too_long


def _is_comment_or_blank(raw: bytes) -> bool:
    """The one rule, for every line, read or not: blank or ``#`` once ASCII whitespace
    (space, tab, CR, LF, VT, FF: what ``bytes.strip`` strips) is stripped.

    Decided on the bytes, so a line that is not UTF-8 and the same line fixed are the
    same kind: a line that holds an index keeps it once fixed. ``str.strip`` would
    also strip NBSP, U+2028, U+0085 and others, and turn a line that was a would-be id
    into a comment after a fix, shifting every later index.
    """
    stripped = raw.strip()
    return not stripped or stripped.startswith(b"#")


def _odd_space(text: str) -> str | None:
    """The first whitespace character in an id but an ASCII space or tab, as ``U+XXXX``.

    Such a character is not stripped (the rule above keeps to ASCII) and no id holds
    one: it is far likelier a stray NBSP or line separator than part of an id.
    """
    for c in text:
        if c.isspace() and c not in " \t":
            return f"U+{ord(c):04X}"
    return None


def read_lines(stream: BinaryIO, skip_long: bool = True) -> Iterator[Line]:
    """The lines of ``stream`` that hold an id, or should and cannot be read.

    A line must be UTF-8 and at most MAX_LINE bytes; blank lines and ``#`` comments
    are skipped (a comment that is not UTF-8 is still a bad line: the file is then
    not in the encoding it is read in); an id is the line without its ASCII
    whitespace at either end, and may hold no other whitespace but spaces and tabs.
    Without ``skip_long`` a line over MAX_LINE bytes is the last one read.
    """
    for number, raw, too_long in raw_lines(stream, skip_long):
        would_be_id = not _is_comment_or_blank(raw)
        if too_long:
            problem = f"longer than {MAX_LINE} bytes"
            yield Line(number, raw, problem=problem, would_be_id=would_be_id)
            continue
        try:
            text = raw.strip().decode("utf-8")
        except UnicodeDecodeError:
            yield Line(number, raw, problem="not valid UTF-8", would_be_id=would_be_id)
            continue
        if not would_be_id:
            continue
        odd = _odd_space(text)
        if odd is not None:
            problem = f"not an id: it holds whitespace other than space and tab ({odd})"
            yield Line(number, raw, problem=problem)
        else:
            yield Line(number, raw, id=text)


class _Positional(io.RawIOBase):
    """A file read with ``pread`` at an offset of its own, through a descriptor it owns.

    So a count can read the very file the batch reads (a dup of its descriptor: no
    second ``open`` of a path that may be a FIFO or a device) without moving the
    batch's place in it.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._at = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = os.pread(self._fd, len(buffer), self._at)
        buffer[: len(data)] = data
        self._at += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            os.close(self._fd)
        super().close()


def count_ids(fd: int) -> int | None:
    """How many lines of the regular file ``fd`` hold an id, or would once fixed.

    Takes ownership of ``fd`` (a dup of the batch's), reads without decoding and
    without moving the shared offset; None for anything but a regular file, or a
    file that cannot be read.
    """
    try:
        with io.BufferedReader(_Positional(fd), _CHUNK) as stream:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return sum(1 for _, raw, _ in raw_lines(stream) if not _is_comment_or_blank(raw))
    except (OSError, ValueError, EndlessLine):
        return None


@attrs.define
class Stats(Counts):
    """The batch's counts, plus a bounded latency sample for the summary.

    ``skipped``: lines ``--skip-invalid`` skipped (not in ``done``, which counts sessions).
    """

    skipped: int = 0
    held: int = 0  # skipped lines that hold an index (their results are not counted)
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
        skipped = f"skipped {plural(self.skipped, 'invalid line')}, " if self.skipped else ""
        return (
            f"created {self.succeeded}, failed {self.failed}, {skipped}"
            f"retried {self.retried} in "
            f"{wall:.1f} s ({rate}); latency p50 {self.percentile(0.5):.0f} ms, "
            f"p99 {self.percentile(0.99):.0f} ms; batch key {batch_key}"
        )


def _silence_stderr() -> None:
    """Point stderr at /dev/null once it broke (EPIPE: its reader is gone), so that
    nothing written to it later (a note, the log, the interpreter's last flush) fails
    or stops the batch."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)


def _write_stderr(stream: TextIO, text: str) -> None:
    """Write and flush ``text``, best-effort: progress and notes are never worth
    stopping the work for (see run_batch), so a stream that fails is silenced."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        if stream is sys.stderr:
            _silence_stderr()
        with contextlib.suppress(OSError, ValueError):
            stream.flush()  # drops what was buffered: it goes to /dev/null now


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
        return (
            f"{head}  created {s.succeeded}  failed {s.failed}{skipped}  retried {s.retried}{rate}"
        )

    def update(self, force: bool = False) -> None:
        """Draw the line, at most every 0.1 s on a terminal and every 2 s otherwise."""
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last = now
        if self.tty:
            _write_stderr(self.stream, "\r\x1b[K" + self.line())
            self._shown = True
        else:
            _write_stderr(self.stream, self.line() + "\n")

    def clear(self) -> None:
        """Wipe the line from the terminal (before other output)."""
        if self._shown:
            _write_stderr(self.stream, "\r\x1b[K")
            self._shown = False

    def finish(self) -> None:
        """Draw the final count, whatever the throttle says, and end the line."""
        self.update(force=True)
        if self.tty:
            _write_stderr(self.stream, "\n")
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


def _say(text: str) -> None:
    """One line on stderr, flushed; a stderr that cannot be written is left be."""
    _write_stderr(sys.stderr, text + "\n")


def resume_command(args: argparse.Namespace, key: str) -> str:
    """The command that runs this batch again under ``key``: the options that decide
    what is created (file, components, base URL, key file, --skip-invalid), never a key."""
    from_stdin = args.file in (None, "-")
    words = ["stripe-sessions", "batch"] + ([] if from_stdin else [args.file])
    for name in args.component or []:
        words += ["--component", name]
    if args.base_url:
        words += ["--base-url", args.base_url]
    if args.api_key_file not in (None, "-"):
        words += ["--api-key-file", args.api_key_file]
    if args.skip_invalid:
        words.append("--skip-invalid")
    command = printable(shlex.join([*words, "--batch-key", key]), 2000)
    return f"{command}, with the same ids on stdin" if from_stdin else command


@attrs.frozen
class _Skipped:
    """Stands in the batch for a skipped line that would hold an id, so that the ids
    after it keep their indexes (and idempotency keys) once it is fixed. The SDK fails it
    as an item that is not a mapping, before anything is sent."""

    line: Line


async def run_batch(args: argparse.Namespace, client: AsyncClient) -> int:
    """Run ``batch`` over ``args.source`` (a binary stream main opened); the exit code."""
    source: BinaryIO = args.source
    key = make_batch_key(args.batch_key)
    components = {name: {"enabled": True} for name in args.component or ["pricing_table"]}
    command = resume_command(args, key)
    resume = f"run again with --batch-key {shlex.quote(key)} to create nothing twice: {command}"
    pending: dict[int, str | _Skipped] = {}  # index -> customer, from read until written
    counter = itertools.count()
    skipped: queue.SimpleQueue[Line] = queue.SimpleQueue()  # from the input thread
    stop: list[Line | OSError] = []  # why the input thread stopped reading early

    def params() -> Iterator[Any]:
        # Runs in the SDK's input thread, in input order: the indexes match the SDK's.
        # A bad line ends the input (the ids before it are sent; nothing after it is
        # read), or with --skip-invalid is reported and skipped.
        try:
            for line in read_lines(source, skip_long=args.skip_invalid):
                if line.id is not None:
                    pending[next(counter)] = line.id
                    yield {"customer": line.id, "components": components}
                elif not args.skip_invalid:
                    stop.append(line)
                    return
                else:
                    skipped.put(line)
                    if line.would_be_id:
                        index, placeholder = next(counter), _Skipped(line)
                        pending[index] = placeholder
                        yield placeholder
        except EndlessLine as e:  # only with --skip-invalid: too long to skip
            stop.append(Line(e.number, e.raw, problem="longer than 1 GiB: too long to skip"))
        except OSError as e:  # EIO, a file truncated under us...
            stop.append(e)

    stats = Stats()
    progress = Progress(stats, None)
    with contextlib.suppress(OSError, ValueError):  # a total for the progress line
        if stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            fd = os.dup(source.fileno())  # the thread's own: closing the batch's is safe

            def count() -> None:
                progress.total = count_ids(fd)

            threading.Thread(target=count, name="stripe-sessions-count", daemon=True).start()
    shared_terminal = progress.tty and sys.stdout is not None and sys.stdout.isatty()
    stopped_by: int | None = None
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        nonlocal stopped_by
        if stopped_by is None and task is not None:
            stopped_by = signum
            task.cancel()

    def of() -> str:
        return f" of {progress.total}" if progress.total is not None else ""

    def report_skipped() -> None:
        while not skipped.empty():
            line = skipped.get()
            stats.skipped += 1
            progress.clear()
            _say(f"skipped line {line.number}: {line.problem}: {shown(line.raw)}")

    # Once the key is out, stderr is best-effort. If it breaks later (a `2>&1 | tee`
    # whose tee died, a log collector restarting), the batch goes on and the exit code
    # still tells of the work alone: the only thing stderr had to deliver, the key that
    # resumes the batch, was delivered (and flushed) before the first request; every
    # result, failures included, is on stdout; and a non-zero code for a batch that
    # did its work would invite a re-run, which without the key creates everything
    # again. So a broken stderr is silenced (pointed at /dev/null) and nothing else.
    try:  # the key, flushed, before the first request: even a SIGKILL leaves it behind
        sys.stderr.write(f"batch key: {key}  (resume with: {command})\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        return EXIT_OUTPUT  # nowhere to say how to resume: start nothing
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        stream = client.customer_sessions.stream_many(
            params(),
            concurrency=args.concurrency,
            rate_limit=None if getattr(args, "shared", False) else args.rate,
            batch_key=key,
        )
        async with contextlib.aclosing(stream):
            async for r in stream:
                report_skipped()
                customer = pending.pop(r.index, None)
                if isinstance(customer, _Skipped):  # never sent; reported when read
                    stats.held += 1
                    progress.update()
                    continue
                stats.add(r)
                if shared_terminal:
                    progress.clear()
                try:
                    if sys.stdout is None:  # main refuses a closed stdout: a last guard
                        raise OSError(errno.EBADF, "stdout is closed")
                    sys.stdout.write(json.dumps(_line(r, customer)) + "\n")
                    sys.stdout.flush()
                except BrokenPipeError:  # `| head -1`: the reader has what it wanted
                    _silence_stdout()
                    progress.clear()
                    _say(f"output closed after {stats.done}{of()}; {resume}")
                    return EXIT_SIGPIPE
                except (OSError, ValueError) as e:  # a full disk, EIO: stop creating at once
                    _silence_stdout()
                    progress.clear()
                    _say(f"error: cannot write to stdout: {e}")
                    _say(f"stopped after {stats.done}{of()}; {resume}")
                    return EXIT_OUTPUT
                if r.error is not None:
                    progress.clear()
                    who = printable(customer or "", 80)
                    _say(printable(f"failed: #{r.index} {who}: {r.error}", 500))
                progress.update()
    except asyncio.CancelledError:
        if stopped_by is None:
            raise
        report_skipped()
        progress.clear()
        _say(stats.summary(key))
        _say(f"interrupted after {stats.done}{of()}; {resume}")
        return EXIT_SIGINT if stopped_by == signal.SIGINT else EXIT_SIGTERM
    except StripeError as e:  # the batch stopped: nothing could reach the server
        progress.clear()
        total = progress.total
        unsent = (total - stats.done - stats.held) if total is not None else len(pending)
        _say(printable(f"error: {e.message}", 1000))
        _say(f"{stats.done}{of()} done, {plural(unsent, 'item')} not sent; {resume}")
        return EXIT_FAILED
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        if args.file not in (None, "-"):
            source.close()  # main opened it
    report_skipped()
    if not stop:
        progress.total = stats.done + stats.held  # every line read: the exact total
    progress.finish()
    if stop:
        reason = stop[0]
        if isinstance(reason, Line):
            what = f"line {reason.number}"
            why = f"{reason.problem}: {shown(reason.raw)}"
            hint = "" if args.skip_invalid else " (--skip-invalid skips such lines)"
            _say(f"error: {what} is {why}{hint}")
        else:
            what = "a read error"
            _say(printable(f"error: cannot read {args.file or 'stdin'}: {reason}", 500))
    _say(stats.summary(key))
    if stats.failed:
        failed = plural(stats.failed, "item")
        _say(f"{failed} failed (listed above); {resume}")
    if stop:
        _say(f"stopped at {what}: nothing after it was read; {resume}")
        return EXIT_INPUT
    return EXIT_FAILED if stats.failed else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
