"""The benchmark server: answers ``POST /v1/customer_sessions`` the way Stripe does.

Stripe's answers carry about 20 response headers (request id, version, idempotency,
CORS, cache, security) and pretty-printed JSON; a client pays to parse both, so a
benchmark against a terse server flatters every client and hides that cost. This server
answers with Stripe's shape and nothing else (no validation, no idempotency store: the
fake does that in tests), so its own CPU stays small beside the client's.

Prints the port, then serves until killed. ``--fake`` serves the embedded fake instead.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

EXAMPLE = Path(__file__).parent.parent / "tests" / "fixtures" / "customer_session.json"

#: Stripe's response headers for a create, less Date/Server/Content-* (aiohttp adds
#: those): with them, 20 headers in all.
HEADERS = {
    "Access-Control-Allow-Credentials": "true",
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, PATCH, POST, DELETE",
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": (
        "Request-Id, Stripe-Manage-Version, Stripe-Should-Retry, "
        "X-Stripe-External-Auth-Required, X-Stripe-Privileged-Session-Required"
    ),
    "Access-Control-Max-Age": "300",
    "Cache-Control": "no-cache, no-store",
    "Content-Security-Policy": (
        "base-uri 'none'; default-src 'none'; form-action 'none'; frame-ancestors 'none'; "
        "img-src 'self'; script-src 'self' 'report-sample'; style-src 'self'"
    ),
    "Cross-Origin-Opener-Policy-Report-Only": 'same-origin; report-to="coop"',
    "Original-Request": "",  # set per answer
    "Request-Id": "",  # set per answer
    "Stripe-Should-Retry": "false",
    "Stripe-Version": "2026-10-28.endive",
    "Vary": "Origin",
    "X-Stripe-Routing-Context-Priority-Tier": "api-testmode",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
}


def _template() -> tuple[str, dict[str, Any]]:
    session = json.loads(EXAMPLE.read_text())
    session["customer"] = "cus_bench"
    return json.dumps(session, indent=2), session


async def handle(request: web.Request) -> web.Response:
    """One create: read the form, answer a fresh session, pretty-printed, with Stripe's headers."""
    await request.read()
    now = int(time.time())
    request_id = "req_" + secrets.token_hex(7)
    body = (
        TEMPLATE.replace(SECRET, "cuss_secret_" + secrets.token_hex(24))
        .replace('"created": 1234567890', f'"created": {now}')
        .replace('"expires_at": 1234567890', f'"expires_at": {now + 1800}')
    )
    headers = dict(HEADERS)
    headers["Request-Id"] = headers["Original-Request"] = request_id
    key = request.headers.get("Idempotency-Key")
    if key is not None:
        headers["Idempotency-Key"] = key
    return web.Response(body=body.encode(), content_type="application/json", headers=headers)


TEMPLATE, _EXAMPLE = _template()
SECRET = _EXAMPLE["client_secret"]


async def main() -> None:
    """Serve on a free port of 127.0.0.1 and print it (``--fake``: the embedded fake)."""
    if "--fake" in sys.argv:
        # The SDK's own fake (checks every parameter, keeps an idempotency store): its CPU
        # per request is above a client's, so the server, not the client, is the limit.
        from stripe_sessions.testing import FakeStripe

        fake = FakeStripe()
        await fake.start()
        print(fake.port, flush=True)
        while True:  # it records every request for tests: forget them, or it slows down
            await asyncio.sleep(1.0)
            fake.reset()
    app = web.Application()
    app.router.add_post("/v1/customer_sessions", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
