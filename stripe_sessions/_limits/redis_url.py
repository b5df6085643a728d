"""RedisURL: a Redis URL that never shows its credentials, and what redis-py would misread."""

from __future__ import annotations

import math
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from .._safe_text import redact
from .._urls import AMBIGUOUS, masked

__all__ = ["RedisURL", "url_problem"]

#: Query parameters of a Redis URL whose values may be shown; any other is masked.
_SHOWN_QUERY: Final = frozenset(
    {
        "db", "protocol", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
        "retry_on_timeout", "max_connections", "health_check_interval", "timeout",
        "ssl_cert_reqs", "ssl_check_hostname", "decode_responses", "client_name",
    }
)  # fmt: skip
#: Query options redis-py reads as seconds, and the least each may be ("> 0" or ">= 0").
_SECONDS_OPTIONS: Final = {
    "socket_timeout": False,
    "socket_connect_timeout": False,
    "timeout": False,
    "health_check_interval": True,
}
#: Characters of a host name or address (IPv6 without its brackets, a %zone), besides
#: letters and digits.
_HOST_CHARS: Final = frozenset(".-_:%")


class RedisURL:
    """A Redis URL whose ``repr`` and ``str`` hide every credential redis-py reads from it.

    Masked: the user info (``user:pass@``, ``:pass@``) and the value of every query
    parameter but a few harmless ones (``?password=``, ``?username=``, in ``redis://``,
    ``rediss://`` and ``unix://`` URLs alike). :attr:`secrets` are the passwords in each
    form a message could quote them (as written and decoded), for :func:`redact`.
    A limiter keeps its URL only in one of these, so a traceback rendered with its
    locals shows the masked form. ``problem`` says why the URL cannot be used, or is None.
    """

    __slots__ = ("_url", "masked", "problem", "scheme", "secrets")

    def __init__(self, url: Any) -> None:
        self._url = url if isinstance(url, str) else ""
        self.problem: str | None = None
        self.secrets: tuple[str, ...] = ()
        self.scheme = ""
        self.masked = "<not a URL>"
        if not isinstance(url, str):
            self.problem = (
                "url: must be a redis://, rediss:// or unix:// URL string, "
                f"got a {type(url).__name__}"
            )
            return
        scheme, sep, _ = url.partition("://")
        self.scheme = scheme.lower()
        if not sep or self.scheme not in ("redis", "rediss", "unix"):
            self.problem = "url: must be a redis://, rediss:// or unix:// URL"
        shown = masked(url, _SHOWN_QUERY)
        if shown.ambiguous:  # "redis://:pa/ss@host": where does the password end?
            self.problem = f"url: {AMBIGUOUS}"
        self.masked, self.secrets = shown.text, shown.secrets

    def reveal(self) -> str:
        """The URL itself, for redis-py only."""
        return self._url

    def redact(self, text: str) -> str:
        """``text`` with every secret of this URL (and any API key) masked."""
        return redact(text, *self.secrets)

    def __repr__(self) -> str:
        return f"RedisURL({self.masked!r})"

    def __str__(self) -> str:
        return self.masked

    def __reduce__(self) -> Any:  # pickled (multiprocessing spawn): as itself, not masked
        return (RedisURL, (self._url,))


def url_problem(url: RedisURL) -> str | None:
    """Why ``url`` can never reach a Redis, as far as can be known without connecting.

    redis-py parses these URLs leniently and silently drops what it cannot read: a path
    that is not a number (``/abc``, and ``/1/2`` reads as db 12), port 0 (then 6379),
    a ``unix://`` URL with no path; it takes ``socket_timeout=nan`` or ``-1``, which
    then fail every call. A limiter with such a URL would fall back to pacing alone for
    good, so it is refused here. Messages name the part, never a value (the URL may hold
    a password). Whether the db exists (Redis has 16 by default, configurable) is known
    only on connecting.
    """
    try:
        parts = urlsplit(url.reveal())
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address; the message only
        return "url: cannot be read as a URL (an unclosed [ of an IPv6 address?)"
    names = [unquote_plus(k) for k, _ in query]
    for name in sorted({n for n in names if names.count(n) > 1}):
        shown = name if name in _SHOWN_QUERY else "a query parameter"
        return f"url: {shown} is given more than once (which one is meant?)"
    options = {unquote_plus(k): unquote_plus(v) for k, v in query}
    db = options.get("db")
    if db is not None and not (db.isascii() and db.isdigit()):
        return "url: db must be a whole number >= 0 (?db=N)"
    if url.scheme == "unix":
        if not unquote(parts.path).strip("/"):
            return (
                "url: a unix:// URL needs the socket's path after the //, "
                "e.g. unix:///var/run/redis.sock"
            )
    else:
        path = unquote(parts.path)
        if path not in ("", "/"):
            number = path[1:]
            if not (number.isascii() and number.isdigit()):
                return "url: the path must be the db, a whole number >= 0 (redis://host:port/N)"
            if db is not None and int(db) != int(number):
                return "url: two different db numbers, in the path and in ?db= (which one?)"
        try:
            port = parts.port
        except ValueError:
            port = None  # out of range: redis-py says so below
        if port == 0:
            return "url: port 0 is no port a Redis listens on"
        host = unquote(parts.hostname or "")
        if not all(c.isalnum() or c in _HOST_CHARS for c in host):
            return (
                "url: the host has a character no host name or address has "
                "(a space, a control character, punctuation)"
            )
    for name, zero_ok in _SECONDS_OPTIONS.items():
        if name in options:
            try:
                seconds = float(options[name])
            except ValueError:
                seconds = math.nan
            if not (math.isfinite(seconds) and (seconds > 0 or (zero_ok and seconds == 0))):
                least = ">= 0" if zero_ok else "> 0"
                return f"url: {name} must be a finite number of seconds {least}"
    if "max_connections" in options:
        value = options["max_connections"]
        if not (value.isascii() and value.isdigit() and int(value) >= 1):
            return "url: max_connections must be a whole number >= 1"
    return None
