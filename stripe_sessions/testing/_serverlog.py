"""aiohttp's server log for the fake: a client's malformed request is one DEBUG line."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["ServerLog", "logger"]

#: The fake's own log: a malformed request is one line here, at DEBUG.
logger = logging.getLogger("stripe_sessions.testing")


class ServerLog:
    """aiohttp's server log for the fake: a client's malformed request is one DEBUG line.

    aiohttp answers a request it cannot parse (a header line over 8 KiB, a control
    character, TLS sent to the HTTP port) with its own plain-text 400 before any handler
    or middleware runs, and logs the parser's traceback at ERROR. For a server that
    hostile clients may reach, that is one traceback per bad request; here it is one
    line naming the error's kind, never the bytes sent (they may carry a key). Any other
    error, e.g. in the fake's own code, is logged in full to ``aiohttp.server`` as usual.
    """

    def __init__(self) -> None:
        self._server = logging.getLogger("aiohttp.server")

    def _client_error(self, kw: dict[str, Any]) -> bool:
        return isinstance(kw.get("exc_info"), HttpProcessingError)

    def _one_line(self, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        peer = args[1] if len(args) > 1 else None
        logger.debug(
            "FakeStripe: malformed request from %s refused with 400 (%s)",
            peer,
            type(kw["exc_info"]).__name__,
        )

    def exception(self, *args: Any, **kw: Any) -> None:
        """Log an error: a client's malformed request as one line, anything else in full."""
        if self._client_error(kw):
            self._one_line(args, kw)
        else:
            self._server.exception(*args, **kw)

    def debug(self, *args: Any, **kw: Any) -> None:
        """Log at DEBUG: a client's malformed request as one line, anything else as is."""
        if self._client_error(kw):
            self._one_line(args, kw)
        else:
            self._server.debug(*args, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)
