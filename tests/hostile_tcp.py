"""Raw-TCP hostile tools on 127.0.0.1: a scripted HTTP server and a tampering proxy.

Both are async context managers that close everything they opened (connections, tasks)
on exit, so they are safe under ``filterwarnings=error``. Neither parses more HTTP than
it must: they deal in bytes, so a test can send anything at any time.

**ScriptedServer** runs ``script(conn)`` for each accepted connection::

    async def script(conn: Conn) -> None:
        request = await conn.read_request()        # one HTTP/1.1 request, or None at EOF
        conn.write(response(200, session_json(request)))
        await asyncio.sleep(0.05)
        conn.write(response(200, b'{"customer": "cus_VICTIM"}'))   # unsolicited

    async with ScriptedServer(script) as server:
        server.url                   # "http://127.0.0.1:<port>"
        server.requests              # every Request read, in order, on any connection
        server.connections           # every Conn accepted (conn.received: raw bytes)
        server.accepted              # how many connections were accepted

``Conn``: ``read_request()`` (its ``connection`` is the conn's ``index``), ``read(n)``
(raw bytes, b"" at EOF), ``write(data)``, ``await drain()``, ``close()`` (FIN),
``abort()`` (RST), ``closed`` (the peer closed or we did), ``received`` (every byte read
so far), ``index`` (0 for the first connection).
When the script returns, the connection is closed. Helpers: ``response(status, body,
headers)`` builds one HTTP/1.1 response with Content-Length; ``form_of(request)`` is the
decoded form body; ``Request.header(name)`` reads a header case-insensitively.

**Proxy** forwards 127.0.0.1 to an upstream ``(host, port)``; every connection is a
``Link`` with one ``Pipe`` per direction (``link.up``: client to server, ``link.down``:
server to client). A pipe passes each chunk it reads to its ``tamper`` (``None``:
forward as is), an ``async (pipe, data) -> None`` that decides what to write::

    async with Proxy(fake.host, fake.port, down=duplicate) as proxy:
        proxy.url                    # point the client here
        proxy.links                  # every Link, in order of connection
        proxy.links[0].down.inject(b"HTTP/1.1 200 OK...")   # at any time
        proxy.links[0].cut()         # close both sides now

Ready-made tampers: ``delay(seconds)``, ``trickle(size, interval)``,
``cut_after(nbytes)``, ``duplicate`` (each chunk twice), ``drop`` (swallow). A pipe's
``forwarded`` counts the bytes written on. ``Proxy(..., up=..., down=...)`` sets the
tamper of every new link; ``link.up.tamper = ...`` changes one link's on the fly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs

from tests.helpers import close_server

__all__ = [
    "Conn",
    "Link",
    "Pipe",
    "Proxy",
    "Request",
    "ScriptedServer",
    "cut_after",
    "delay",
    "drop",
    "duplicate",
    "form_of",
    "response",
    "trickle",
]

HOST = "127.0.0.1"
_MAX_HEAD = 64 * 1024


class Request:
    """One HTTP request as the server read it: request line, headers, body (all raw)."""

    def __init__(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes):
        self.method = method
        self.target = target
        self.headers = headers
        self.body = body
        #: The ``index`` of the connection it came on (0 for the first).
        self.connection = 0

    def header(self, name: str) -> str | None:
        """The first header called ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.target}, {len(self.body)} bytes)"


def form_of(request: Request) -> dict[str, str]:
    """The request's form body, decoded (first value of each key)."""
    parsed = parse_qs(request.body.decode("latin-1"), keep_blank_values=True)
    return {k: v[0] for k, v in parsed.items()}


def response(
    status: int = 200,
    body: bytes | str | dict[str, Any] = b"",
    headers: dict[str, str] | None = None,
    *,
    reason: str = "OK",
) -> bytes:
    """One HTTP/1.1 response with a Content-Length (a dict body is sent as JSON)."""
    if isinstance(body, dict):
        body = json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})}
    data = body.encode() if isinstance(body, str) else body
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(data)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


class Conn:
    """One accepted connection of a :class:`ScriptedServer`."""

    def __init__(
        self,
        server: ScriptedServer,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ):
        self.server = server
        self.index = index
        self.reader = reader
        self.writer = writer
        self.received = bytearray()

    @property
    def closed(self) -> bool:
        """Whether the peer closed (EOF seen) or this side closed."""
        return self.reader.at_eof() or self.writer.is_closing()

    async def read(self, n: int = 65536) -> bytes:
        """Up to ``n`` raw bytes; b"" at EOF or after a reset."""
        try:
            data = await self.reader.read(n)
        except ConnectionError:
            return b""
        self.received += data
        return data

    async def read_request(self) -> Request | None:
        """One request (headers, then a Content-Length body); None if the peer closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return None
        self.received += head
        lines = head.decode("latin-1").split("\r\n")
        method, target = ([*lines[0].split(" "), "", ""])[:2]
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]
        request = Request(method, target, [(h[0], h[1]) for h in headers if len(h) == 2], b"")
        request.connection = self.index
        length = int(request.header("Content-Length") or 0)
        try:
            request.body = await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        self.received += request.body
        self.server.requests.append(request)
        return request

    def write(self, data: bytes) -> None:
        """Queue ``data`` to the client (ignored once closed)."""
        if not self.writer.is_closing():
            self.writer.write(data)

    async def drain(self) -> None:
        """Wait until the written bytes are handed to the kernel."""
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def close(self) -> None:
        """Close this side (a FIN after what was written)."""
        self.writer.close()

    def abort(self) -> None:
        """Reset the connection at once (RST, nothing queued is sent)."""
        transport = self.writer.transport
        transport.abort()


Script = Callable[[Conn], Awaitable[None]]


class _Tasks:
    """A tool's server, its connections and the task serving each; all ended on close."""

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.writers: list[asyncio.StreamWriter] = []

    def start(self, coro: Awaitable[None], writer: asyncio.StreamWriter) -> None:
        """Serve the connection of ``writer`` with ``coro``, in a task of its own."""
        self.writers.append(writer)
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close(self, server: asyncio.Server | None) -> None:
        """Stop listening, cancel every task, and close every connection (bounded).

        A task cancelled before it ran never closes its connection: close_server resets
        those, or (Python 3.12+) the server's wait_closed() would wait forever.
        """
        if server is not None:
            server.close()
        # Only the tasks not done: a task done this loop step is still in the set (its
        # discard runs at the next step), and from Python 3.12 gather() over tasks all
        # done returns without yielding, so "while self.tasks" spun forever on it.
        while pending := [task for task in self.tasks if not task.done()]:
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if server is not None:
            await close_server(server, self.writers)


async def _close_writer(writer: asyncio.StreamWriter, *, abort: bool = False) -> None:
    """Close (or reset) a connection and wait, at most a second, until it is closed.

    Bounded: a graceful close waits to flush what was written, which a peer that stops
    reading would make wait forever (and the tool's ``aclose`` with it).
    """
    if abort:
        writer.transport.abort()
    else:
        writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (asyncio.TimeoutError, ConnectionError, OSError):
        writer.transport.abort()


class ScriptedServer:
    """A TCP server on 127.0.0.1 that runs ``script(conn)`` on every connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[Request] = []
        self.connections: list[Conn] = []
        self.errors: list[BaseException] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks = _Tasks()
        self._closing = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    @property
    def accepted(self) -> int:
        """How many connections were accepted."""
        return len(self.connections)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Conn(self, len(self.connections), reader, writer)
        self.connections.append(conn)
        try:
            await self.script(conn)
            await conn.drain()
        except asyncio.CancelledError:
            pass
        except Exception as e:  # kept for the test to look at; the connection closes
            self.errors.append(e)
        finally:
            await _close_writer(writer, abort=self._closing)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted as the server closed: asyncio may still hand it over
            writer.close()
            return
        self._tasks.start(self._serve(reader, writer), writer)

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._accept, HOST, 0, limit=_MAX_HEAD)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening, end every script and close every connection."""
        self._closing = True
        server, self._server = self._server, None
        await self._tasks.close(server)


Tamper = Callable[["Pipe", bytes], Awaitable[None]]


class Pipe:
    """One direction of a :class:`Link`: reads chunks and hands each to ``tamper``."""

    def __init__(self, link: Link, writer: asyncio.StreamWriter, tamper: Tamper | None):
        self.link = link
        self.writer = writer
        self.tamper = tamper
        self.forwarded = 0
        #: Free for a tamper's own state (how much it has seen, say).
        self.state: dict[str, Any] = {}

    def send(self, data: bytes) -> None:
        """Write ``data`` on (ignored once closed)."""
        if data and not self.writer.is_closing():
            self.writer.write(data)
            self.forwarded += len(data)

    def inject(self, data: bytes) -> None:
        """Write ``data`` on now, whatever else flows: the same as :meth:`send`."""
        self.send(data)

    async def drain(self) -> None:
        """Wait until what was sent is handed to the kernel."""
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def run(self, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(65536):
                if self.tamper is None:
                    self.send(data)
                else:
                    await self.tamper(self, data)
                await self.drain()
        except ConnectionError:
            pass
        finally:
            self.link.cut()


class Link:
    """One client connection through the :class:`Proxy` and its upstream connection."""

    def __init__(
        self,
        client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
        up: Tamper | None,
        down: Tamper | None,
    ):
        self.client_reader, self.client_writer = client
        self.server_reader, self.server_writer = server
        #: Client to server.
        self.up = Pipe(self, self.server_writer, up)
        #: Server to client.
        self.down = Pipe(self, self.client_writer, down)

    def cut(self) -> None:
        """Close both connections now."""
        self.client_writer.close()
        self.server_writer.close()

    @property
    def closed(self) -> bool:
        """Whether the link was cut (by either side or by :meth:`cut`)."""
        return self.client_writer.is_closing() and self.server_writer.is_closing()


class Proxy:
    """A TCP proxy on 127.0.0.1 to ``(host, port)`` whose links can be tampered with."""

    def __init__(
        self, host: str, port: int, *, up: Tamper | None = None, down: Tamper | None = None
    ) -> None:
        self.upstream = (host, port)
        self.up = up
        self.down = down
        self.links: list[Link] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks = _Tasks()
        self._closing = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            await _close_writer(writer)
            return
        link = Link((reader, writer), upstream, self.up, self.down)
        self.links.append(link)
        try:
            await asyncio.gather(link.up.run(reader), link.down.run(upstream[0]))
        except asyncio.CancelledError:
            pass
        finally:
            link.cut()
            await _close_writer(writer, abort=self._closing)
            await _close_writer(upstream[1], abort=self._closing)

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted as the server closed: asyncio may still hand it over
            writer.close()
            return
        self._tasks.start(self._serve(reader, writer), writer)

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and cut every link."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for link in self.links:
            link.cut()
        await self._tasks.close(server)


def delay(seconds: float) -> Tamper:
    """Forward each chunk after ``seconds``."""

    async def tamper(pipe: Pipe, data: bytes) -> None:
        await asyncio.sleep(seconds)
        pipe.send(data)

    return tamper


def trickle(size: int = 1, interval: float = 0.01) -> Tamper:
    """Forward each chunk ``size`` bytes at a time, ``interval`` seconds apart."""

    async def tamper(pipe: Pipe, data: bytes) -> None:
        for i in range(0, len(data), size):
            pipe.send(data[i : i + size])
            await pipe.drain()
            await asyncio.sleep(interval)

    return tamper


def cut_after(nbytes: int) -> Tamper:
    """Forward the first ``nbytes`` bytes of the direction, then cut the link."""

    async def tamper(pipe: Pipe, data: bytes) -> None:
        room = nbytes - pipe.forwarded
        pipe.send(data[: max(room, 0)])
        if pipe.forwarded >= nbytes:
            await pipe.drain()
            pipe.link.cut()

    return tamper


async def duplicate(pipe: Pipe, data: bytes) -> None:
    """Forward each chunk twice."""
    pipe.send(data)
    pipe.send(data)


async def drop(pipe: Pipe, data: bytes) -> None:
    """Forward nothing."""
