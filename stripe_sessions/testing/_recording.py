"""What the fake keeps of requests and sessions: RecordedRequest, its caps, the memory bounds."""

from __future__ import annotations

import collections
import sys
import time
from collections.abc import Mapping
from typing import Any

import attrs
from aiohttp import web

from ._auth import mask_headers
from ._objects import new_request_id

__all__ = [
    "MAX_RECORDS",
    "MAX_RECORD_BYTES",
    "RECORDED_BODY_CHARS",
    "RECORDED_FORM_BYTES",
    "RECORDED_HEADERS_CHARS",
    "RECORDED_HEADER_CHARS",
    "RECORDED_METHOD_CHARS",
    "RECORDED_NAME_CHARS",
    "RECORDED_PATH_CHARS",
    "RECORD_BYTES",
    "STRIPE_HEADERS",
    "RecordedRequest",
    "RequestLog",
    "SessionLog",
    "keep_form",
    "new_record",
    "retained",
]

#: Requests (and sessions) the fake remembers by default; older ones are dropped.
MAX_RECORDS = 10_000
#: Characters of a body a :class:`RecordedRequest` keeps (a real request is a few KB).
RECORDED_BODY_CHARS = 16 * 1024
#: Characters of each header value a :class:`RecordedRequest` keeps (aiohttp takes 8 KiB).
RECORDED_HEADER_CHARS = 1024
#: Characters of each header name a :class:`RecordedRequest` keeps (aiohttp takes 8 KiB).
RECORDED_NAME_CHARS = 256
#: Characters of header names and values a :class:`RecordedRequest` keeps in all (aiohttp
#: takes 128 headers of 8 KiB); Stripe's own headers (``STRIPE_HEADERS``) are kept first.
RECORDED_HEADERS_CHARS = 8 * 1024
#: Characters of the method and of the path a :class:`RecordedRequest` keeps.
RECORDED_METHOD_CHARS = 64
RECORDED_PATH_CHARS = 1024
#: Bytes a record's decoded form may take in memory to be kept (a real one takes ~2 KB).
RECORDED_FORM_BYTES = 32 * 1024
#: The most memory one :class:`RecordedRequest` takes whatever the request, as counted by
#: ``sys.getsizeof`` of its parts: text is 1 to 4 bytes a character, so 16 KiB of body
#: can take 64 KiB, and 8 KiB of headers 32 KiB plus their dict.
RECORD_BYTES = 192 * 1024
#: Bytes of memory each of the fake's stores (requests, sessions, remembered answers)
#: may keep by default; beyond it the oldest entries are dropped, as beyond ``max_records``.
MAX_RECORD_BYTES = 96 * 1024 * 1024
#: Headers a record keeps before any other, in this order (each still capped).
STRIPE_HEADERS = (
    "Authorization",
    "Idempotency-Key",
    "Stripe-Version",
    "Stripe-Account",
    "Content-Type",
    "Content-Length",
    "Content-Encoding",
    "User-Agent",
)


@attrs.define
class RecordedRequest:
    """One request the fake received, as it arrived, and what it answered."""

    #: As received, cut to ``RECORDED_METHOD_CHARS`` (64) and ``RECORDED_PATH_CHARS``
    #: (1 KiB) characters and ``...``.
    method: str
    path: str
    #: As received, the first value of each name: names cut to ``RECORDED_NAME_CHARS``
    #: (256), values to ``RECORDED_HEADER_CHARS`` (1 KiB), each followed by ``...`` when
    #: cut, and at most ``RECORDED_HEADERS_CHARS`` (8 KiB) of them in all: ``STRIPE_HEADERS``
    #: first, then the others in arrival order while they fit. The repr masks the key in
    #: ``Authorization``.
    headers: dict[str, str] = attrs.field(repr=lambda h: repr(mask_headers(h)))
    #: The body as text (bytes that are not UTF-8 as U+FFFD), at most
    #: ``RECORDED_BODY_CHARS`` (16 KiB) of it; ``size`` is its whole length in bytes.
    body: str
    #: The decoded form body (``{}`` for a body that is not a form, not a POST, or longer
    #: than ``RECORDED_BODY_CHARS``).
    form: dict[str, Any]
    request_id: str
    status: int | None = None
    fault: str | None = None
    #: ``time.monotonic()`` when the request's headers arrived (before its body was read).
    at: float = attrs.field(factory=time.monotonic)
    #: The peer's ``host:port``: requests on one connection share it.
    peer: str | None = None
    #: ``time.monotonic()`` when the answer was ready (None until then, or for a reset).
    answered_at: float | None = None
    #: Bytes of body received (``None`` while it is still arriving, or when it was refused
    #: for its size, or did not arrive in time, before the end).
    size: int | None = None
    #: The memory this record is counted for in the fake's ``max_record_bytes``.
    _cost: int = attrs.field(default=0, init=False, repr=False, eq=False)

    @property
    def idempotency_key(self) -> str | None:
        """The request's ``Idempotency-Key`` header, if any."""
        return self.headers.get("Idempotency-Key")


def retained(obj: object) -> int:
    """Bytes ``obj`` keeps: ``sys.getsizeof`` of it and of each part, each object once.

    Hand-written: the standard library measures one object only, and the fake measures
    only what it builds itself (dicts, lists, text, attrs records), so no general
    profiler (pympler) is needed. Linear in the parts; a record has at most a few
    thousand.
    """
    seen: set[int] = set()
    todo = [obj]
    size = 0
    while todo:
        item = todo.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        size += sys.getsizeof(item)
        if isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, (list, tuple)):
            todo.extend(item)
        elif attrs.has(type(item)):
            fields: Any = attrs.fields(type(item))  # type: ignore[arg-type]
            todo.extend(getattr(item, f.name) for f in fields)
    return size


def _cut(text: str, most: int) -> str:
    """``text``, or its first ``most`` characters and ``...``."""
    return text if len(text) <= most else text[:most] + "..."


def _recorded_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers a record keeps: see :attr:`RecordedRequest.headers`."""
    first: dict[str, tuple[str, str]] = {}  # name as sent -> (cut name, cut value)
    for name, value in headers.items():
        if name not in first:
            first[name] = (_cut(name, RECORDED_NAME_CHARS), _cut(value, RECORDED_HEADER_CHARS))
    kept: set[str] = set()
    room = RECORDED_HEADERS_CHARS
    stripe = {n.lower() for n in STRIPE_HEADERS}
    ours = sorted(
        (n for n in first if n.lower() in stripe),
        key=lambda n: [h.lower() for h in STRIPE_HEADERS].index(n.lower()),
    )
    for name in ours + [n for n in first if n.lower() not in stripe]:
        cost = len(first[name][0]) + len(first[name][1])
        if cost <= room:
            kept.add(name)
            room -= cost
    return dict(first[name] for name in first if name in kept)


def new_record(request: web.Request) -> RecordedRequest:
    """The record of ``request`` as its head arrived (its body is filled in as it comes)."""
    peername = request.transport.get_extra_info("peername") if request.transport else None
    return RecordedRequest(
        _cut(request.method, RECORDED_METHOD_CHARS),
        _cut(request.path, RECORDED_PATH_CHARS),
        _recorded_headers(request.headers),
        "",
        {},
        new_request_id(),
        peer=f"{peername[0]}:{peername[1]}" if peername else None,
    )


def keep_form(rec: RecordedRequest, raw: bytes, form: dict[str, Any]) -> None:
    """Keep ``form`` in ``rec`` when it is small enough (see :attr:`RecordedRequest.form`)."""
    if len(raw) <= RECORDED_BODY_CHARS and retained(form) <= RECORDED_FORM_BYTES:
        rec.form = form


class RequestLog:
    """The memory a fake's list of records is counted for; drops the oldest beyond bounds."""

    def __init__(self) -> None:
        # What the list is counted for, and its length when last counted: a test may
        # clear or cut it, and then it is counted again.
        self._bytes = 0
        self._len = 0

    def charge(
        self, requests: list[RecordedRequest], rec: RecordedRequest, most: int, most_bytes: int
    ) -> None:
        """Count ``rec``'s memory (again, once its body is in); drop the oldest beyond bounds."""
        if rec._cost < 0:  # dropped since
            return
        # Only what the list holds is counted: a record cleared (``reset()``) or cut from
        # it while its body was arriving is no longer (searched from the end, where
        # records in flight are).
        if not any(r is rec for r in reversed(requests)):
            rec._cost = -1
            return
        if len(requests) != self._len + (rec._cost == 0):  # changed from outside: recount
            self._bytes = sum(max(r._cost, 0) for r in requests)
        cost = retained(rec)
        self._bytes += cost - rec._cost
        rec._cost = cost
        drop, kept = 0, self._bytes
        while len(requests) - drop > most or (kept > most_bytes and len(requests) - drop > 1):
            kept -= requests[drop]._cost
            requests[drop]._cost = -1
            drop += 1
        del requests[:drop]
        self._bytes = kept
        self._len = len(requests)

    @property
    def counted(self) -> int:
        """The bytes the list is counted for: the sum of its records' costs."""
        return self._bytes

    def clear(self) -> None:
        """Forget the counts (the list was cleared)."""
        self._bytes = self._len = 0


class SessionLog:
    """The memory a fake's sessions are counted for; drops the oldest beyond bounds."""

    def __init__(self) -> None:
        self._costs: collections.deque[int] = collections.deque()
        self._bytes = 0

    def keep(
        self,
        sessions: list[dict[str, Any]],
        keys: list[str | None],
        session: dict[str, Any],
        idem: str | None,
        most: int,
        most_bytes: int,
    ) -> None:
        """Keep a session and its key; drop the oldest beyond ``most`` and ``most_bytes``."""
        costs = self._costs
        if not len(sessions) == len(keys) == len(costs):  # cut from outside: count again
            del keys[: len(keys) - len(sessions)]
            del sessions[: len(sessions) - len(keys)]
            costs.clear()
            costs.extend(retained(s) for s in sessions)
            self._bytes = sum(costs)
        sessions.append(session)
        keys.append(idem)
        costs.append(retained(session))
        self._bytes += costs[-1]
        drop = 0
        while len(costs) > 1 and (len(costs) > most or self._bytes > most_bytes):
            self._bytes -= costs.popleft()
            drop += 1
        del sessions[:drop]
        del keys[:drop]

    def clear(self) -> None:
        """Forget the counts (the lists were cleared)."""
        self._costs.clear()
        self._bytes = 0
