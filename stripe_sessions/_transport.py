"""The owner of the aiohttp session: headers, idempotency keys, send with retries, decode."""

from __future__ import annotations

import asyncio
import json
import logging
import platform
import uuid
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs

from ._config import Config
from ._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ValidationError,
    error_from_response,
)
from ._retry import call_with_retries
from ._version import __version__

__all__ = ["Pool", "Response", "Transport", "check_idempotency_key"]

logger: Final = logging.getLogger("stripe_sessions")

USER_AGENT: Final = (
    f"stripe-sessions/{__version__} aiohttp/{aiohttp.__version__} "
    f"python/{platform.python_version()}"
)
MAX_IDEMPOTENCY_KEY: Final = 255
#: Objects a forked child inherited from its parent and must never close (see Pool.forget).
INHERITED: Final[list[object]] = []


def check_idempotency_key(key: str) -> str:
    """Return ``key`` if Stripe accepts it as an ``Idempotency-Key``, else raise ValueError."""
    if not isinstance(key, str) or not key or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationError(
            f"idempotency_key must be a non-empty string of at most {MAX_IDEMPOTENCY_KEY} "
            f"characters, got {key!r}"[:400],
            param="idempotency_key",
        )
    if not key.isprintable() or not key.isascii():
        raise ValidationError(
            "idempotency_key must be printable ASCII (it is sent as a header)",
            param="idempotency_key",
        )
    return key


@attrs.frozen
class Response:
    """A successful answer: decoded JSON and the headers worth keeping."""

    data: dict[str, Any]
    request_id: str | None
    replayed: bool


class Pool:
    """Owns (or borrows) the aiohttp session, created lazily on the loop that first uses it.

    Copies made by ``with_options`` share one Pool, and so one connection pool.
    """

    def __init__(self, max_connections: int, session: aiohttp.ClientSession | None) -> None:
        self._max_connections = max_connections
        self._session = session
        self._owned = session is None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def get(self) -> aiohttp.ClientSession:
        """The session to send with, creating it on the running loop the first time."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop:
            return session
        if self._closed:
            raise RuntimeError("This client is closed; create a new one.")
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(
                "This client was first used on another event loop and is bound to it. "
                "Create one client per event loop (for example in your app's startup hook), "
                "or use stripe_sessions.Client from synchronous code."
            )
        self._loop = loop
        if session is None:
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300)
            session = self._session = aiohttp.ClientSession(
                connector=connector, skip_auto_headers=("Accept-Encoding",)
            )
        return session

    async def aclose(self) -> None:
        """Close the session if this pool created it; a caller's own session is left open."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owned and not session.closed:
            await session.close()

    def forget(self) -> None:
        """After ``os.fork()``: drop the parent's session in the child, without touching it.

        Closing it here would unregister the parent's sockets from the epoll set the
        two processes share, and the parent would never hear its answers; letting it be
        garbage-collected does the same. So the child keeps it, unused, for good.
        """
        if self._owned and self._session is not None:
            INHERITED.append(self._session)
            self._session = None
        self._loop = None
        self._closed = False


class Transport:
    """Sends one logical POST with Stripe's headers, idempotency and retry rules."""

    def __init__(self, config: Config, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        headers = {
            "Authorization": f"Bearer {config.api_key}",
            "Stripe-Version": config.stripe_version,
            "User-Agent": USER_AGENT,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        if config.stripe_account:
            headers["Stripe-Account"] = config.stripe_account
        if config.stripe_context:
            headers["Stripe-Context"] = config.stripe_context
        headers.update(config.default_headers)
        self._headers: Final = headers
        self._timeout: Final = aiohttp.ClientTimeout(
            total=config.timeout, connect=config.connect_timeout
        )

    async def post(
        self,
        path: str,
        body: str,
        *,
        idempotency_key: str | None = None,
        stripe_account: str | None = None,
        stripe_version: str | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
    ) -> Response:
        """POST ``body`` to ``path``, retrying as Stripe's rules allow with one idempotency key."""
        headers = self._headers.copy()
        key = idempotency_key if idempotency_key is not None else str(uuid.uuid4())
        headers["Idempotency-Key"] = key
        if stripe_account is not None:
            headers["Stripe-Account"] = stripe_account
        if stripe_version is not None:
            headers["Stripe-Version"] = stripe_version
        client_timeout = (
            self._timeout
            if timeout is None
            else aiohttp.ClientTimeout(
                total=timeout, connect=min(timeout, self.config.connect_timeout)
            )
        )
        url = self.config.base_url + path
        data = body.encode()
        retries = self.config.max_retries if max_retries is None else max_retries
        return await call_with_retries(
            lambda: self._attempt(url, data, headers, client_timeout, key), retries
        )

    async def _attempt(
        self,
        url: str,
        data: bytes,
        headers: Mapping[str, str],
        timeout: aiohttp.ClientTimeout,
        key: str,
    ) -> Response:
        session = self.pool.get()
        try:
            async with session.post(url, data=data, headers=headers, timeout=timeout) as resp:
                raw = await resp.read()
                status = resp.status
                resp_headers = resp.headers
        except asyncio.TimeoutError as e:
            raise APITimeoutError(
                f"Request to Stripe timed out after {timeout.total}s "
                f"(connect timeout {timeout.connect}s)",
                idempotency_key=key,
            ) from e
        except aiohttp.ClientError as e:
            raise APIConnectionError(
                f"Could not reach Stripe at {self.config.base_url}: {type(e).__name__}: {e}",
                idempotency_key=key,
            ) from e
        request_id = resp_headers.get("Request-Id")
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("POST %s -> %d request_id=%s", url, status, request_id)
        if status >= 300:
            raise error_from_response(status, resp_headers, raw, idempotency_key=key)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            # The body is not kept: a damaged session body may hold a client secret.
            raise APIError(
                f"Stripe answered HTTP {status} with a body that is not a JSON object "
                f"({len(raw)} bytes)",
                http_status=status,
                request_id=request_id,
                idempotency_key=key,
                headers=resp_headers,
            )
        return Response(payload, request_id, resp_headers.get("Idempotent-Replayed") == "true")
