"""``Quiet``: collects everything that would say something was left behind or failed.

Not a test module: the loop tests (``tests/test_loops_any.py``, ``tests/test_limits_loops*.py``)
assert that a run left ``quiet.problems`` empty.
"""

from __future__ import annotations

import gc
import logging
import sys
import warnings

__all__ = ["Quiet"]


class Quiet:
    """Warnings, unraisable exceptions, and records of ``loggers`` at ``level`` or above.

    On exit the garbage is collected (three passes), so what a finalizer would say about
    an object left behind (an unclosed pool, socket or client) is among the problems.
    """

    def __init__(
        self,
        loggers: tuple[str, ...] = ("asyncio", "stripe_sessions"),
        level: int = logging.WARNING,
    ) -> None:
        self.problems: list[str] = []
        self._loggers = loggers
        self._level = level

    def __enter__(self) -> Quiet:
        self._warnings = warnings.catch_warnings(record=True)
        self._caught = self._warnings.__enter__()
        warnings.simplefilter("always")
        self._hook = sys.unraisablehook
        sys.unraisablehook = lambda u: self.problems.append(f"unraisable: {u.exc_value!r}")
        self._handler = _Collect(self.problems, self._level)
        for name in self._loggers:
            logging.getLogger(name).addHandler(self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for _ in range(3):
                gc.collect()
        finally:
            for name in self._loggers:
                logging.getLogger(name).removeHandler(self._handler)
            sys.unraisablehook = self._hook
            self._warnings.__exit__(None, None, None)
        self.problems += [f"{w.category.__name__}: {w.message}" for w in self._caught]


class _Collect(logging.Handler):
    def __init__(self, into: list[str], level: int) -> None:
        super().__init__(level)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(f"log {record.name}: {record.getMessage()}")
