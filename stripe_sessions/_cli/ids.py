"""The batch's input: customer ids read line by line, bounded, and why a line holds none."""

from __future__ import annotations

import codecs
import io
import os
import stat
from collections.abc import Iterator
from typing import Any, BinaryIO, Final

import attrs

__all__ = [
    "MAX_LINE",
    "MAX_SKIP",
    "SHOWN",
    "EndlessLine",
    "Line",
    "count_ids",
    "raw_lines",
    "read_lines",
    "shown",
]

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
