"""Numbers on the command line: positive, finite and, where it matters, bounded."""

from __future__ import annotations

import argparse
import math
from typing import Any

__all__ = ["positive"]


def positive(kind: type[int] | type[float], most: int | None = None) -> Any:
    """An argparse ``type=``: a ``kind`` greater than 0, finite, at most ``most`` if given."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most:,}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse
