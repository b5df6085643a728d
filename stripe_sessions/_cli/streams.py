"""The command line's standard streams: checked, written best-effort, silenced once broken."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TextIO

__all__ = ["say", "silence_stderr", "silence_stdout", "unwritable", "write_stderr"]


def unwritable(stream: TextIO | None) -> str | None:
    """Why ``stream`` cannot be written at all, or None when it may be.

    Checked before anything is sent: a stdout closed with ``>&-`` is None in Python, and
    one open for reading only (``1</dev/null``) fails every write; either way a session
    created could not be reported. A stream without a descriptor (a test's capture) is
    taken as writable; a full disk shows only on writing, and is handled there.
    """
    if stream is None:
        return "it is closed"
    try:
        fd = stream.fileno()
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
    if sys.platform == "win32":  # pragma: no cover - no fcntl; writing will tell
        return None
    import fcntl  # noqa: PLC0415 - POSIX only

    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as e:
        return e.strerror or "its descriptor is not open"
    if flags & os.O_ACCMODE == os.O_RDONLY:
        return "it is open for reading only"
    return None


def say(text: str) -> None:
    """One line on stderr, flushed; a stderr that cannot be written is left be."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(text, file=sys.stderr, flush=True)


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def silence_stderr() -> None:
    """Point stderr at /dev/null once it broke (EPIPE: its reader is gone), so that
    nothing written to it later (a note, the log, the interpreter's last flush) fails
    or stops the batch."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stderr.fileno())
        os.close(devnull)


def write_stderr(stream: TextIO, text: str) -> None:
    """Write and flush ``text``, best-effort: progress and notes are never worth
    stopping the work for (see run_batch), so a stream that fails is silenced."""
    try:
        stream.write(text)
        stream.flush()
    except (OSError, ValueError):
        if stream is sys.stderr:
            silence_stderr()
        with contextlib.suppress(OSError, ValueError):
            stream.flush()  # drops what was buffered: it goes to /dev/null now
