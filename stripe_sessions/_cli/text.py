"""What the command line echoes of its input or argv: bounded, control characters escaped."""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, with control characters escaped.

    What the input, argv or a server wrote reaches a terminal only this way: no escape
    sequence is ever written raw, and nothing is echoed whole however long.
    """
    cut = text[:limit]
    if not cut.isprintable():
        cut = "".join(c if c.isprintable() else repr(c)[1:-1] for c in cut)
    return cut + ("..." if len(text) > limit else "")
