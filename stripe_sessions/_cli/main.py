"""Command line: ``python -m stripe_sessions {demo,create,batch,fake-server}``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from .args import Command, build_parser
from .commands import batch_command, create_command, demo_command, fake_server_command
from .preflight import UsageError, api_key, open_ids
from .streams import say, unwritable
from .text import printable

__all__ = ["COMMANDS", "main"]

#: Each command's run, by its name on the command line.
COMMANDS: dict[str, Command] = {
    "demo": demo_command,
    "create": create_command,
    "batch": batch_command,
    "fake-server": fake_server_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser(COMMANDS)
    args = parser.parse_args(argv)
    debug = args.debug or bool(os.environ.get("STRIPE_SESSIONS_DEBUG"))
    if args.command != "fake-server" and unwritable(sys.stderr):  # started with 2>&-
        # nowhere to say why; a batch could not say how to resume: start nothing
        return 3
    if args.command != "fake-server" and (why := unwritable(sys.stdout)):  # >&-
        # Refused before anything is sent, not found after: a session created then
        # could only be reported on stderr, and a batch's results would all be lost.
        say(
            f"{parser.prog} {args.command}: error: cannot write to stdout ({why}): nothing was sent"
        )
        return 3
    try:  # what can be refused before anything is sent: the key, the batch's input
        if args.command in ("create", "batch"):
            args.key = api_key(args)
        if args.command == "batch":
            from .._batch.keys import make_batch_key  # noqa: PLC0415 - the CLI starts light

            # A key given resumes a batch; a fresh one has no earlier run (see Stats).
            args.resumed = args.batch_key is not None
            try:
                args.batch_key = make_batch_key(args.batch_key)
            except ValueError as e:
                raise UsageError(f"--batch-key: {getattr(e, 'message', e)}") from None
            args.source = open_ids(args)
    except UsageError as e:
        say(f"{parser.prog} {args.command}: error: {e}")
        return 2
    if args.trace:  # spans on stderr, stdout left to the results
        from .._observe.console import console_tracing  # noqa: PLC0415 - only --trace

        try:
            console_tracing(sys.stderr)
        except ImportError as e:
            say(f"{parser.prog} {args.command}: error: {e}")
            return 2
    # The commands report batch ends and failures themselves; --debug shows the SDK's
    # own log too (each retry, each early end).
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    sdk_log = logging.getLogger("stripe_sessions")
    level = sdk_log.level  # put back when main() returns: it may run in-process (a test)
    sdk_log.setLevel(logging.DEBUG if debug else logging.ERROR)
    try:
        try:
            code: int = asyncio.run(args.run(args))
        except KeyboardInterrupt:
            say("interrupted")
            return 130
        except UsageError as e:  # found once the loop ran: the client's key, URL or options
            say(f"{parser.prog} {args.command}: error: {e}")
            return 2
        except Exception as e:
            from .._errors import StripeError, ValidationError  # noqa: PLC0415 - starts light

            if not isinstance(e, (StripeError, ValueError, OSError)):
                raise  # a bug: its traceback is the report
            if debug:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    traceback.print_exc()
            if isinstance(e, ValidationError):  # checked before sending: a bad option
                say(f"{parser.prog} {args.command}: error: {printable(e.message, 1000)}")
                return 2
            say(printable(f"error: {type(e).__name__}: {e}", 1000))
            return 1
        return code
    finally:
        sdk_log.setLevel(level)
