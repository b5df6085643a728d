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
import contextlib
import errno
import itertools
import json
import os
import queue
import shlex
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

import attrs

from .._batch.keys import make_batch_key
from .._client import AsyncClient
from .._errors import StripeError
from .ids import EndlessLine, Line, count_ids, read_lines, shown
from .report import Progress, Stats, plural, result_line
from .streams import silence_stdout, write_stderr
from .text import printable

__all__ = [
    "EXIT_FAILED",
    "EXIT_INPUT",
    "EXIT_OUTPUT",
    "EXIT_SIGINT",
    "EXIT_SIGPIPE",
    "EXIT_SIGTERM",
    "resume_command",
    "run_batch",
]

#: Exit codes: some items failed; a usage or input error; stdout could not be written.
EXIT_FAILED: Final = 1
EXIT_INPUT: Final = 2
EXIT_OUTPUT: Final = 3
#: Exit codes of a run stopped by a signal or by its reader going away (128 + signal).
EXIT_SIGINT: Final = 130
EXIT_SIGPIPE: Final = 141
EXIT_SIGTERM: Final = 143


def _say(text: str) -> None:
    """One line on stderr, flushed; a stderr that cannot be written is left be."""
    write_stderr(sys.stderr, text + "\n")


def resume_command(args: argparse.Namespace, key: str, base_url: str | None = None) -> str:
    """The command that runs this batch again under ``key``: the options that decide
    what is created (file, components, base URL, key file, --skip-invalid), never a key.

    ``base_url``: the one the batch sends to when it came from ``$STRIPE_BASE_URL``
    (never holding credentials): a resume run from a shell without the variable would
    otherwise go to Stripe itself, where the batch key replays nothing.
    """
    from_stdin = args.file in (None, "-")
    words = ["stripe-sessions", "batch"] + ([] if from_stdin else [args.file])
    for name in args.component or []:
        words += ["--component", name]
    if args.base_url or base_url:
        words += ["--base-url", args.base_url or base_url]
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
    config = client.config
    command = resume_command(args, key, config.base_url if config.base_url_from else None)
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

    stats = Stats(resumed=getattr(args, "resumed", True))
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
    # Ctrl-C and SIGTERM are ours before the key is out: one that lands just after it
    # ends with the summary and the resume command, not a bare "interrupted".
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        try:  # the key, flushed, before the first request: even a SIGKILL leaves it behind
            sys.stderr.write(f"batch key: {key}  (resume with: {command})\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            return EXIT_OUTPUT  # nowhere to say how to resume: start nothing
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
                    sys.stdout.write(json.dumps(result_line(r, customer)) + "\n")
                    sys.stdout.flush()
                except BrokenPipeError:  # `| head -1`: the reader has what it wanted
                    silence_stdout()
                    progress.clear()
                    _say(f"output closed after {stats.done}{of()}; {resume}")
                    return EXIT_SIGPIPE
                except (OSError, ValueError) as e:  # a full disk, EIO: stop creating at once
                    silence_stdout()
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
