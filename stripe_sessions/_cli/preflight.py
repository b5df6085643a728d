"""What a command needs before it sends anything: the API key, the batch's ids; UsageError."""

from __future__ import annotations

import argparse
import os
import sys
from typing import BinaryIO

from .text import printable

__all__ = [
    "ARGV_KEY_WARNING",
    "MAX_KEY_FILE",
    "NO_KEY",
    "UsageError",
    "api_key",
    "open_ids",
    "read_key_file",
]

NO_KEY = "no API key: set STRIPE_API_KEY or pass --api-key-file PATH (a file, or - for stdin)"
ARGV_KEY_WARNING = (
    "warning: --api-key puts the key in the process list (ps) and in your shell history; "
    "set STRIPE_API_KEY or pass --api-key-file PATH instead"
)
#: The largest API key file read: a key is about 100 bytes, so a bigger file is not one.
MAX_KEY_FILE = 4096


class UsageError(Exception):
    """A command line that cannot run: printed as ``prog: error: message``, exit 2."""


def read_key_file(path: str) -> str:
    """The API key in ``path`` (``-``: stdin), without one trailing newline.

    Raises UsageError naming the path, never the contents, for a file that cannot be
    read, is over MAX_KEY_FILE bytes, is not UTF-8, is empty or is not one key.
    """

    def bad(why: str) -> UsageError:
        return UsageError(f"--api-key-file {printable(path)}: {why}")

    try:
        if path == "-":
            if sys.stdin is None:
                raise bad("stdin is closed")
            data = sys.stdin.buffer.read(MAX_KEY_FILE + 1)
        else:
            with open(path, "rb") as f:
                data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise bad(f"cannot read it: {e.strerror or type(e).__name__}") from None
    if len(data) > MAX_KEY_FILE:
        raise bad(f"is over {MAX_KEY_FILE} bytes")
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    try:
        key = data.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("is not UTF-8 text") from None
    if not key:
        raise bad("is empty")
    if "\n" in key:
        raise bad("holds more than one line")
    if not key.isprintable() or " " in key:
        raise bad("holds spaces or control characters")
    return key


def api_key(args: argparse.Namespace) -> str:
    """The key from --api-key (with a warning), --api-key-file or STRIPE_API_KEY."""
    if args.api_key:
        print(ARGV_KEY_WARNING, file=sys.stderr, flush=True)
        return str(args.api_key)
    if args.api_key_file is not None:
        return read_key_file(args.api_key_file)
    key = os.environ.get("STRIPE_API_KEY")
    if not key:
        raise UsageError(NO_KEY)
    return key


def open_ids(args: argparse.Namespace) -> BinaryIO:
    """The batch's input, opened once for reading as bytes (stdin for none or ``-``)."""
    if args.file in (None, "-"):
        if args.api_key_file == "-":
            raise UsageError(
                "--api-key-file - reads the key from stdin, which holds the ids: "
                "give the ids as FILE"
            )
        if sys.stdin is None:
            raise UsageError("cannot read the ids: stdin is closed (give the ids as FILE)")
        return sys.stdin.buffer
    try:
        return open(args.file, "rb")  # run_batch closes it
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise UsageError(f"cannot read {printable(args.file)}: {why}") from None
