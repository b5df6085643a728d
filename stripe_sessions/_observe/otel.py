"""OpenTelemetry, when ``opentelemetry-api`` is importable: the SDK's tracer, meter and spans.

Native instrumentation: the global tracer and meter providers, no code from the user.
The API is not imported by this package: a client only asks once per process whether
it is installed (:func:`available`), and its observer loads it the first time the
application has imported ``opentelemetry.trace`` or ``.metrics`` (:func:`imported`; no
provider can be set before). Nothing is made per call until a provider is set
(:meth:`Telemetry.live`): with the API alone, every span would be a no-op, so none is
started. Attributes follow the stable HTTP client semantic
conventions (``http.request.method``, ``server.address``, ``url.full``,
``http.response.status_code``, ``error.type``, ``http.request.resend_count``), plus
``stripe.*``; never the API key, a client secret or a body.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import Any, Final
from urllib.parse import urlsplit

from .._safe_text import printable, redact
from .._version import __version__

__all__ = [
    "BUCKETS",
    "ENV_FLAG",
    "Telemetry",
    "available",
    "error_type",
    "imported",
    "load",
    "named_provider",
    "tracing_default",
]

#: ``STRIPE_SESSIONS_OTEL_ENABLED=false`` turns tracing off for clients that do not say.
ENV_FLAG: Final = "STRIPE_SESSIONS_OTEL_ENABLED"
#: Its values read as off without a word (``false``, as OpenTelemetry's boolean variables
#: say, and the spellings documented before); ``true`` (any case) or unset/empty is on.
_OFF: Final = frozenset(("false", "0", "no", "off"))
#: The unknown values already warned of (one warning each per process).
_warned: set[str] = set()
logger: Final = logging.getLogger("stripe_sessions")
#: ``http.client.request.duration``'s buckets, as the semantic conventions advise (s).
BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_SCHEMA: Final = "https://opentelemetry.io/schemas/1.26.0"
_NAME: Final = "stripe_sessions"
#: The API's globals holding the providers set (``opentelemetry.trace``, ``.metrics._internal``).
_SET: Final = ("_TRACER_PROVIDER", "_METER_PROVIDER")

#: The API's modules once imported, False when it is not installed, None before the try.
_api: Any = None
#: Whether ``opentelemetry`` can be imported; None before the first look.
_found: bool | None = None
#: The environment variables naming a provider the API's getters load themselves.
_PROVIDER_VARS: Final = ("OTEL_PYTHON_TRACER_PROVIDER", "OTEL_PYTHON_METER_PROVIDER")
_modules: Final = sys.modules


class _Api:
    """The OpenTelemetry API's parts this module uses, imported once."""

    def __init__(self) -> None:
        from opentelemetry import context, metrics, trace  # noqa: PLC0415 - optional

        self.context = context
        self.trace = trace
        self.metrics = metrics
        self.CLIENT = trace.SpanKind.CLIENT
        self.INTERNAL = trace.SpanKind.INTERNAL
        self.ERROR = trace.StatusCode.ERROR
        # The key HTTP instrumentations check (aiohttp-client's among them): set inside
        # an attempt, theirs is not made beside ours (as the botocore instrumentation does).
        self.SUPPRESS_HTTP = getattr(
            context, "_SUPPRESS_HTTP_INSTRUMENTATION_KEY", "suppress_http_instrumentation"
        )
        idle_meters: list[type] = [metrics.NoOpMeterProvider]
        try:  # the proxy the API hands out until a provider is set
            from opentelemetry.metrics._internal import _ProxyMeterProvider  # noqa: PLC0415

            idle_meters.append(_ProxyMeterProvider)
        except ImportError:  # pragma: no cover - another API layout: count metrics as live
            pass
        self.idle_tracers = (trace.ProxyTracerProvider, trace.NoOpTracerProvider)
        self.idle_meters = tuple(idle_meters)
        # Where the API keeps the providers set (None until then); another layout: ask
        # the getters every time.
        from opentelemetry.metrics import _internal as metrics_internal  # noqa: PLC0415

        self._globals = (trace, metrics_internal)
        if not all(hasattr(m, n) for m, n in zip(self._globals, _SET, strict=True)):
            self.unset = lambda: False  # type: ignore[method-assign]  # pragma: no cover
        trace.get_tracer_provider()  # loads one an environment variable names
        metrics.get_meter_provider()

    def unset(self) -> bool:
        """Whether neither a tracer provider nor a meter provider has been set."""
        trace, metrics_internal = self._globals
        return trace._TRACER_PROVIDER is None and metrics_internal._METER_PROVIDER is None


def load() -> _Api | None:
    """The OpenTelemetry API, or None when it is not installed (tried once per process)."""
    global _api  # noqa: PLW0603 - a cache of one import
    if _api is None:
        try:
            _api = _Api()
        except ImportError:
            _api = False
    return _api or None


def available() -> bool:
    """Whether ``opentelemetry`` could be imported, without importing it (looked once per process).

    Importing the API costs every later create of the process about 2% more instructions
    (its objects on the heap, walked by the garbage collector's full passes), so a
    client that may trace does not import it until the application has (:func:`imported`).
    """
    global _found  # noqa: PLW0603 - a cache of one look-up
    if _found is None:
        try:
            _found = importlib.util.find_spec("opentelemetry") is not None
        except (ImportError, ValueError):  # a parent blocked, or a module without a spec
            _found = False
    return _found


def imported() -> bool:
    """Whether the application has imported the API's tracing or metrics module (two dict
    look-ups: asked per call until it has; a provider cannot be set before)."""
    return "opentelemetry.trace" in _modules or "opentelemetry.metrics" in _modules


def named_provider() -> bool:
    """Whether ``OTEL_PYTHON_TRACER_PROVIDER`` or ``..._METER_PROVIDER`` names a provider,
    which the API's getters load without the application importing the API."""
    return any(os.environ.get(name) for name in _PROVIDER_VARS)


def tracing_default() -> bool:
    """``tracing=None``: on when ``STRIPE_SESSIONS_OTEL_ENABLED`` is unset, empty or ``true``.

    Read as OpenTelemetry's specification reads its boolean variables: only ``true`` (any
    case) is true; ``false`` (and the ``0``, ``no``, ``off`` documented before) is off;
    any other value (``disabled``, ``1``...) is off too, with a warning once per value
    (it was silently on: ``disabled`` traced).
    """
    raw = os.environ.get(ENV_FLAG, "")
    flag = raw.strip().lower()
    if flag in ("", "true"):
        return True
    if flag not in _OFF and flag not in _warned:
        _warned.add(flag)
        logger.warning(
            "stripe_sessions: %s=%s is not true or false; tracing is off "
            "(accepted: true, false; unset or empty: on)",
            ENV_FLAG,
            printable(raw, 40),
        )
    return False


def error_type(e: BaseException) -> str:
    """The class of what ended a call, as ``error.type`` names it (``asyncio.CancelledError``)."""
    cls = type(e)
    module = cls.__module__
    if module.startswith("stripe_sessions"):
        module = "stripe_sessions"  # every error is exported there
    elif module == "asyncio.exceptions":
        module = "asyncio"
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


class Telemetry:
    """One client's tracer and duration histogram, and what every span of it says of the server."""

    def __init__(self, api: _Api, base_url: str, secrets: tuple[str, ...] = ()) -> None:
        self.api = api
        self.tracer = api.trace.get_tracer(_NAME, __version__, schema_url=_SCHEMA)
        meter = api.metrics.get_meter(_NAME, __version__, schema_url=_SCHEMA)
        self.duration = meter.create_histogram(
            "http.client.request.duration",
            unit="s",
            description="Duration of HTTP client requests.",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        split = urlsplit(base_url)  # a Config's base_url: no credentials, query or fragment
        port = split.port or (443 if split.scheme == "https" else 80)
        #: The attributes every attempt's span and measurement carry.
        self.server: dict[str, Any] = {
            "http.request.method": "POST",
            "server.address": split.hostname or "",
            "server.port": port,
        }
        self.base_url = base_url
        #: ``url.full``'s base: the base URL with the client's own secrets masked (a key
        #: in a gateway's path of any shape, not only Stripe's usual one), masked once.
        self.url_base = redact(base_url, *secrets)
        self._live = False

    def live(self) -> bool:
        """Whether a tracer or meter provider is set: spans and measurements are kept.

        The API's own providers until then make nothing (every span a no-op), so the
        SDK makes none. Asked once per logical call, so it reads the API's two globals
        (the public getters cost 20 K instructions a create more: each looks up an
        environment variable, a KeyError raised and caught); a provider named by
        ``OTEL_PYTHON_*_PROVIDER`` is loaded by the getters, called once at start. A
        global provider is set once for good, so ``True`` is kept.
        """
        if self._live:
            return True
        api = self.api
        if api.unset():
            return False
        if isinstance(api.trace.get_tracer_provider(), api.idle_tracers) and isinstance(
            api.metrics.get_meter_provider(), api.idle_meters
        ):
            return False  # a no-op provider set on purpose
        self._live = True
        return True
