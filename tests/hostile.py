"""A hostile HTTP server on 127.0.0.1: answers what Stripe never would.

Each answer is chosen by the request's ``customer`` form field, so one server serves a
whole test (and a batch can meet one poison answer among good ones). Big answers are
streamed from one small chunk, so the server itself stays small.
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from aiohttp import web

SESSION = json.loads((Path(__file__).parent / "fixtures" / "customer_session.json").read_text())
# The customer the tests ask for: the SDK refuses a session for another customer.
SESSION["customer"] = "cus_1"
MiB = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def session_body(**changes: Any) -> dict[str, Any]:
    """A real customer_session body with some fields replaced (``None`` values are kept)."""
    body = dict(SESSION)
    body.update(changes)
    return body


def gzip_bomb(inflated: int = 1024 * MiB) -> bytes:
    """A gzip stream of ``inflated`` zero bytes, built in 1 MiB steps (about 1 MiB)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    zero = bytes(MiB)
    parts = [packer.compress(zero) for _ in range(inflated // MiB)]
    parts.append(packer.flush())
    return b"".join(parts)


def deep_json(depth: int = 100_000) -> bytes:
    """A JSON array nested ``depth`` deep: json.loads raises RecursionError on it."""
    return b"[" * depth + b"]" * depth


async def stream_bytes(
    request: web.Request,
    total: int,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> web.StreamResponse:
    """Send ``total`` bytes of ``x`` in 1 MiB writes (with or without Content-Length)."""
    resp = web.StreamResponse(status=status, headers=headers)
    if length:
        resp.content_length = total
    resp.content_type = "application/json"
    await resp.prepare(request)
    chunk = b"x" * MiB
    sent = 0
    try:
        while sent < total:
            await resp.write(chunk[: total - sent])
            sent += MiB
    except (ConnectionResetError, RuntimeError):  # the client stopped reading: good
        pass
    return resp


async def trickle(request: web.Request, delay: float = 0.2, count: int = 100) -> web.StreamResponse:
    """Headers at once, then one byte every ``delay`` seconds."""
    resp = web.StreamResponse(status=200)
    resp.content_length = count
    await resp.prepare(request)
    try:
        for _ in range(count):
            await resp.write(b" ")
            await asyncio.sleep(delay)
    except (ConnectionResetError, RuntimeError):
        pass
    return resp


class Hostile:
    """Records every request; ``answers[customer]`` decides each answer."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, Handler] = {}
        self.default: Handler = self.good
        self.url = ""

    async def good(self, request: web.Request) -> web.StreamResponse:
        customer = self.requests[-1]["form"].get("customer", "cus_x")
        return web.json_response(session_body(customer=customer), headers={"Request-Id": "req_h"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        self.requests.append(
            {
                "headers": dict(request.headers),
                "form": form,
                "path": request.path,
                "at": time.monotonic(),
            }
        )
        handler = self.answers.get(form.get("customer", ""), self.default)
        return await handler(request)


@asynccontextmanager
async def serve(server: Hostile) -> AsyncIterator[Hostile]:
    """Run ``server`` on a free port of 127.0.0.1 for the block."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", server.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
