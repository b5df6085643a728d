"""RedisRateLimiter: the budgets of ``_limiter`` kept in Redis, shared by every process.

Every process and machine pointing at the same Redis and ``name`` shares one budget.
Written as one small Lua script run through redis-py rather than with a rate-limiting
library: pyrate-limiter and limits both offer fixed or sliding windows and token
buckets that answer "allowed or not" for one key, while this needs two budgets with a
priority between them, a shared pause, and the wait until the next slot (one round trip
per request) - see :data:`SCRIPT` for the algorithm.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import weakref
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from .._errors import ValidationError
from .._safe_text import redact
from .._urls import AMBIGUOUS, masked
from .._validate import flag, number, text, whole
from .local import (
    DEFAULT_PAUSE,
    DEFAULT_RECOVERY,
    LIVE_BURST,
    LIVE_RESERVE,
    LIVE_SPIN,
    MAX_PAUSE,
    MAX_SLEEP,
    PACING_TOLERANCE,
    PAUSE,
    RATE,
    RECOVERY,
    LocalRateLimiter,
    check_share,
    clamp_pause,
    clamp_timeout,
    rate,
    sleep_until,
)

__all__ = ["PAUSE_SCRIPT", "SCRIPT", "RedisRateLimiter", "RedisURL"]

logger: Final = logging.getLogger("stripe_sessions")

#: How long a Redis call may take before the limiter falls back to pacing in-process.
REDIS_TIMEOUT: Final = 0.25
MAX_REDIS_TIMEOUT: Final = 60.0
#: After a Redis failure, how long the in-process fallback is used before trying again.
RETRY_REDIS_AFTER: Final = 5.0
#: How far ahead live calls may book the account budget (ms): a live call waits at most
#: its timeout, so booking further ahead only grows a queue nobody waits in. With the
#: live burst and one more slot, also the bound past which an account slot is
#: implausible (see SCRIPT).
LIVE_LEAD_MS: Final = 60_000.0
#: At most one "implausible slot repaired" warning per limiter in this many seconds.
REPAIR_LOG_EVERY: Final = 60.0
MAX_NAME: Final = 200
#: More processes than this leave any rate's fallback below one request an hour (1e6/s x
#: 3600 s), and more than a float holds would overflow dividing the rate by them.
MAX_PROCESSES: Final = 10**10
#: Query parameters of a Redis URL whose values may be shown; any other is masked.
_SHOWN_QUERY: Final = frozenset(
    {
        "db", "protocol", "socket_timeout", "socket_connect_timeout", "socket_keepalive",
        "retry_on_timeout", "max_connections", "health_check_interval", "timeout",
        "ssl_cert_reqs", "ssl_check_hostname", "decode_responses", "client_name",
    }
)  # fmt: skip


#: The shared state, in milliseconds of Redis's own clock (``TIME``, the same for every
#: process): KEYS = account next slot, batch next slot, batch pause end, last 429 (all in
#: one hash tag, ``{name}``, so the script runs on one slot of a Redis Cluster).
#: ARGV = 1 for a batch item, account interval, batch interval, recovery, live lead,
#: longest pause (all ms), the pacing tolerance and the live reserve (fractions of a
#: slot), the live burst (slots).
#: GCRA: each budget is the time of its next free slot, and a slot granted at ``now``
#: books the next one from the previous booked slot, but from no earlier than ``now``
#: less the tolerance (``_limiter.book``): a request up to a quarter of a slot late (a
#: round trip, a late wake-up) keeps the schedule, a later one books from its own time.
#: A live call books the account's next slot, or starts now if that is at most the live
#: burst (``_limiter.LIVE_BURST``, one slot) ahead, the next slot moving on one interval
#: either way (never booked more than the live lead ahead), and returns how long to wait
#: for its start. A batch item takes a slot only when its own budget's
#: turn has come (after any pause), and the account has one free now, by the live
#: reserve (``_limiter.LIVE_RESERVE``) at least, so that a live call coming next is
#: booked at once (and a second one at most ``1 - LIVE_RESERVE`` slots ahead);
#: otherwise it takes nothing and returns how long to wait before asking again. So live calls are
#: never queued behind batch items. The answer: the wait (ms, 0 when a slot was
#: taken), the repaired keys, by how far (ms), and for a batch slot taken, how long
#: until the batch's next turn (ms: its own next slot, and the account's next slot plus
#: the live reserve), which the process waits before asking again.
#: A value further ahead than these settings can explain (the live lead and two slots,
#: two batch intervals, the longest pause; a last 429 in the future) is not obeyed: a clock that
#: went back (a failover to a replica on another machine), a key written by hand or by a
#: process with other settings. It is deleted and the script goes on without it; the
#: answer says which keys were repaired (bits 1, 2, 4, 8) and by how far (ms).
SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local batch = ARGV[1] == '1'
local interval = tonumber(ARGV[2])
local bbase = tonumber(ARGV[3])
local recovery = tonumber(ARGV[4])
local lead = tonumber(ARGV[5])
local maxpause = tonumber(ARGV[6])
local tolerance = tonumber(ARGV[7])
local reserve = tonumber(ARGV[8])
local burst = tonumber(ARGV[9])
local repaired, worst = 0, 0
local function book(prev, at, iv)
  return math.max(prev, at - tolerance * iv) + iv
end
local function read(i, limit, default)
  local raw = redis.call('GET', KEYS[i])
  if not raw then return default end
  local v = tonumber(raw)
  if v == nil or v ~= v or v > now + limit then
    redis.call('DEL', KEYS[i])
    repaired = repaired + 2 ^ (i - 1)
    if v ~= nil and v == v and v - now > worst then worst = v - now end
    return default
  end
  return v
end
local function set(i, v, ttl)
  -- To the microsecond, rounded up: tostring keeps 14 digits (0.1 ms of a time in ms),
  -- and each slot is booked from the last, so rounding down would add up to a faster pace.
  local text = string.format('%.3f', math.ceil(v * 1000) / 1000)
  redis.call('SET', KEYS[i], text, 'PX', math.ceil(ttl))
end
local acct = read(1, lead + (1 + burst) * interval + 1, 0)
if not batch then
  local start = math.max(now, acct - burst * interval)
  local after = book(acct, start, interval)
  if start - now <= lead then set(1, after, after - now + 60000) end
  return {tostring(start - now), repaired, tostring(worst)}
end
local last = read(4, 1000, -1e18)
local factor = math.max(0.5, math.min(1, 0.5 + 0.5 * (now - last) / recovery))
local binterval = bbase / factor
local bnext = read(2, 2 * bbase + 1, 0)
local turn = math.max(read(3, maxpause + 1, 0), bnext)
if turn > now then return {tostring(turn - now), repaired, tostring(worst)} end
local gap = acct + reserve * interval
if gap > now then return {tostring(gap - now), repaired, tostring(worst)} end
bnext = book(bnext, now, binterval)
set(2, bnext, bnext - now + 60000)
local after = book(acct, now, interval)
set(1, after, after - now + 60000)
return {'0', repaired, tostring(worst), tostring(math.max(bnext, after + reserve * interval) - now)}
"""

#: Record a rate_limit 429: pause batch traffic until now + ARGV[1] ms (or later), and
#: remember when (for the recovery). ARGV = pause, longest pause, recovery (ms). A pause
#: end further ahead than the longest pause is replaced, as in SCRIPT. Both times are
#: stored to the microsecond, rounded up, as in SCRIPT (``tostring`` keeps 14 digits:
#: a pause stored with it ended up to 0.1 ms early).
PAUSE_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local maxpause = tonumber(ARGV[2])
local until_ = now + math.min(math.max(tonumber(ARGV[1]), 0), maxpause)
local function ms(v) return string.format('%.3f', math.ceil(v * 1000) / 1000) end
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current == nil or current ~= current or current > now + maxpause + 1 or until_ > current then
  redis.call('SET', KEYS[1], ms(until_), 'PX', math.ceil(until_ - now + 60000))
end
redis.call('SET', KEYS[2], ms(now), 'PX', math.ceil(tonumber(ARGV[3]) + 60000))
return 1
"""


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


#: Every RedisRateLimiter, so that a forked child can make each forget its parent's client.
_LIMITERS: Final[weakref.WeakSet[RedisRateLimiter]] = weakref.WeakSet()
#: Redis clients a forked child inherited and must never close, read or write: closing
#: one (or letting it be garbage-collected, which closes its connections) unregisters
#: the parent's socket from the epoll set both processes share, and the parent's next
#: answer from Redis never arrives. So the child keeps them, unused, for good.
_INHERITED: Final[list[object]] = []


def _forget_all_in_child() -> None:
    for limiter in list(_LIMITERS):
        limiter._forget()


os.register_at_fork(after_in_child=_forget_all_in_child)


class RedisRateLimiter:
    """One rate budget for every process that uses the same Redis and ``name``.

    ::

        limiter = ss.RedisRateLimiter("redis://localhost:6379/0", rate=90, name="acct_live")
        async with ss.AsyncClient(rate_limiter=limiter) as stripe: ...

    ``rate`` is the account's requests per second (stay under Stripe's: 100 live, 25
    test); batches together get at most ``batch_share`` of it, live calls the rest and
    any gap. ``cluster=True`` talks to a Redis Cluster (redis-py's ``RedisCluster``;
    every key of one budget shares the hash tag ``{name}``). Needs the ``redis`` extra
    (``pip install stripe-sessions[redis]``).

    If Redis cannot be reached or answers slower than ``redis_timeout``, the limiter
    logs one warning and paces in this process at ``fallback_rate`` (default: ``rate``
    divided by ``processes``, the number of processes you expect to share the budget),
    trying Redis again every few seconds; a create never fails because of it. No wait
    is slept in one piece: at most a second, then Redis is asked again. A slot further
    ahead than the settings explain (a clock that went back on a failover, a stale key)
    is logged and repaired, not obeyed. A forked child never touches the parent's
    connection; it opens its own. The URL's credentials never appear in a repr, a log
    or an error. Every argument is checked here (``ValidationError``, a ``ValueError``).
    """

    def __init__(
        self,
        url: str,
        *,
        rate: float,
        name: str = "default",
        batch_share: float = 0.5,
        processes: int = 4,
        fallback_rate: float | None = None,
        recovery: float = DEFAULT_RECOVERY,
        redis_timeout: float = REDIS_TIMEOUT,
        pause: float = DEFAULT_PAUSE,
        cluster: bool = False,
    ) -> None:
        # The caller's string leaves this frame at once: a traceback rendered with
        # locals (of any error below) shows only the masked form.
        url = RedisURL(url)  # type: ignore[assignment]
        self._url: RedisURL = url  # type: ignore[assignment]
        if self._url.problem is not None:
            raise ValidationError(self._url.problem, param="url")
        self.cluster = _CLUSTER(cluster)
        if cluster and self._url.scheme == "unix":
            raise ValidationError(
                "url: a Redis Cluster is reached by redis:// or rediss://, not unix://",
                param="url",
            )
        self.name = _NAME(name)
        processes = _PROCESSES(processes)
        self.rate = RATE(rate)
        self.batch_share = check_share(batch_share, self.rate)
        self.recovery = RECOVERY(recovery)
        self.pause = PAUSE(pause)
        self.redis_timeout = _REDIS_TIMEOUT(redis_timeout)
        if fallback_rate is None:
            fallback, fallback_param = self.rate / processes, "processes"
        else:
            fallback, fallback_param = _FALLBACK_RATE(fallback_rate), "fallback_rate"
        problem: str | None = None
        try:
            self.fallback = LocalRateLimiter(
                fallback, batch_share=self.batch_share, recovery=self.recovery, pause=self.pause
            )
        except ValidationError as e:
            problem = e.message.partition(": ")[2]
        if problem is not None:  # raised here, without the chain of the one above
            raise ValidationError(
                f"{fallback_param}: the fallback rate ({fallback:.6g}/s) {problem}",
                param=fallback_param,
            )
        problem = _client_problem(self._url, cluster)
        if problem is not None:
            raise ValidationError(problem, param="url")
        # One hash tag, so that every key of this budget lives in one cluster slot.
        prefix = f"stripe_sessions:rate:{{{name}}}"
        self._keys = [f"{prefix}:account", f"{prefix}:batch", f"{prefix}:pause", f"{prefix}:429"]
        self._redis: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = os.getpid()
        self._script: Any = None
        self._pause: Any = None
        self._down_until = 0.0
        self._warned = False
        self._repair_logged = -1e18
        #: How many implausible slots this limiter found in Redis and repaired.
        self.repairs = 0
        self._closing: set[asyncio.Future[None]] = set()
        self._discovery: asyncio.Lock | None = None  # held while a cluster is discovered
        self._gates: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._batch_turn = 0.0  # (monotonic) when Redis said the batch's next turn comes
        _LIMITERS.add(self)

    def __repr__(self) -> str:
        # getattr: also a limiter whose __init__ raised (a traceback rendered with locals)
        url, get = getattr(self, "_url", None), getattr
        return (
            f"RedisRateLimiter({url.masked if url else '?'!r}, rate={get(self, 'rate', '?')}, "
            f"name={get(self, 'name', '?')!r}, batch_share={get(self, 'batch_share', '?')}, "
            f"cluster={get(self, 'cluster', '?')})"
        )

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a spawned process): the settings and state, never a connection."""
        state = self.__dict__.copy()
        state.update(
            _redis=None, _script=None, _pause=None, _loop=None, _closing=set(), _discovery=None
        )
        del state["_gates"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._gates = weakref.WeakKeyDictionary()
        self._pid = os.getpid()
        _LIMITERS.add(self)

    def _forget(self) -> None:
        """After ``os.fork()``, in the child: drop the parent's client without touching it."""
        if self._redis is not None:
            _INHERITED.append(self._redis)
            _INHERITED.append((self._script, self._pause))
        _INHERITED.append(self._closing)  # the parent's tasks, never run here
        self._closing = set()
        self._redis = self._script = self._pause = self._discovery = None
        self._loop = None
        self._gates = weakref.WeakKeyDictionary()  # the parent's (its tasks may hold them)
        self._pid = os.getpid()

    def _connection(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._pid != os.getpid():  # forked by something that skipped the at-fork hook
            self._forget()
        if self._redis is None or self._loop is not loop:  # one client per event loop
            self._redis = _make_client(self._url, self.cluster, self.redis_timeout)
            self._loop = loop
            self._script = self._redis.register_script(SCRIPT)
            self._pause = self._redis.register_script(PAUSE_SCRIPT)
            self._discovery = asyncio.Lock() if self.cluster else None
        return self._redis

    async def _call(self, pause: bool, keys: list[str], args: list[Any]) -> Any:
        self._connection()
        script = self._pause if pause else self._script
        # Bounded by the client's socket timeouts (redis_timeout). A cluster client may
        # also rediscover the cluster (several round trips): bounded as a whole; a client
        # that failed is closed and never used again, whatever state it was left in.
        if self.cluster:
            return await asyncio.wait_for(
                self._cluster_call(script, keys, args), 4 * self.redis_timeout + 0.5
            )
        return await script(keys=keys, args=args)

    async def _cluster_call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        redis, discovery = self._redis, self._discovery
        if discovery is not None:
            # redis-py's RedisCluster discovers the cluster on its first command, and
            # first commands made together race in it (seen: AttributeError on a node's
            # connection, one call in about 40 fresh clients): one discovery, then all.
            async with discovery:
                if self._discovery is discovery:
                    await redis.initialize()
                    self._discovery = None
        return await script(keys=keys, args=args)

    async def _failed(self, e: BaseException) -> None:
        self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        old, self._redis = self._redis, None
        if old is not None:  # close its connections now, not when garbage-collected
            await _close_quietly(old)
        if not self._warned:
            self._warned = True
            logger.warning(
                "rate limiter %r: Redis at %s failed (%s); pacing in this process at "
                "%.3g requests/s until it is back",
                self.name,
                self._url.masked,
                self._url.redact(f"{type(e).__name__}: {e}")[:200],
                self.fallback.rate,
            )

    def _repaired(self, keys: int, worst_ms: float) -> None:
        self.repairs += 1
        now = time.monotonic()
        if now - self._repair_logged < REPAIR_LOG_EVERY:
            return
        self._repair_logged = now
        which = [k for bit, k in enumerate(("account", "batch", "pause", "429")) if keys >> bit & 1]
        logger.warning(
            "rate limiter %r: Redis held %s state %.0f s ahead, further than these settings "
            "explain (a clock that went back on a failover, a stale or foreign key); "
            "repaired, not obeyed",
            self.name,
            "/".join(which),
            worst_ms / 1000.0,
        )

    def _args(self, batch: bool) -> list[Any]:
        """SCRIPT's ARGV for a live call or a batch item of this limiter."""
        interval = 1000.0 / self.rate
        return ["1" if batch else "0", interval, interval / self.batch_share,
                self.recovery * 1000.0, LIVE_LEAD_MS, MAX_PAUSE * 1000.0,
                PACING_TOLERANCE, LIVE_RESERVE, LIVE_BURST]  # fmt: skip

    async def _ask(self, batch: bool) -> float | None:
        """Seconds to wait from Redis (0: slot taken), or None when Redis failed."""
        if time.monotonic() < self._down_until:
            return None
        cancelled = False
        try:
            answer = await self._call(False, self._keys, self._args(batch))
            wait, keys, worst = float(answer[0]), int(answer[1]), float(answer[2])
            if len(answer) > 3:  # a batch slot taken: the next batch turn, from now
                self._batch_turn = time.monotonic() + float(answer[3]) / 1000.0
        except asyncio.CancelledError:
            cancelled = True
        except Exception as e:  # unreachable, slow, or refusing: pace in-process instead
            failure = e
        else:
            if self._warned:
                self._warned = False
                logger.warning("rate limiter %r: Redis is back; pacing is shared again", self.name)
            if keys:
                self._repaired(keys, worst)
            return wait / 1000.0
        if cancelled:  # a fresh one: no frame of redis-py's (and its locals) in its traceback
            _drop(self)
            raise asyncio.CancelledError
        await self._failed(failure)
        return None

    async def acquire(self, *, batch: bool, timeout: float) -> None:
        """Wait for a slot (see :class:`RateLimiter`): every sleep at most a second."""
        if not batch:
            deadline = time.monotonic() + clamp_timeout(timeout)
            wait = await self._ask(False)
            if wait is None:
                await self.fallback.acquire(
                    batch=False, timeout=max(0.0, deadline - time.monotonic())
                )
            elif wait > 0:  # the slot is booked: wait for it, within the call's timeout
                await sleep_until(min(time.monotonic() + wait, deadline), spin=LIVE_SPIN)
            return
        # One batch item of this process (and event loop) at a time asks Redis, the
        # others queue here in order: a grant costs one round trip per process instead
        # of one per waiting item, and a live call's command is not queued behind them.
        gate = self._gates.get(loop := asyncio.get_running_loop())
        if gate is None:
            gate = self._gates[loop] = asyncio.Lock()
        async with gate:
            while True:
                # Redis said when the batch's next turn comes: ask then (or after a
                # slice), not before.
                if (early := self._batch_turn - time.monotonic()) > 0:
                    await asyncio.sleep(min(early, MAX_SLEEP))
                wait = await self._ask(True)
                if wait is None:
                    await self.fallback.acquire(batch=True, timeout=0.0)
                    return
                if wait <= 0:
                    return
                # Not this item's turn (a pause, or another process took it): ask again
                # then, or after a slice. A wait is never obeyed longer than a slice.
                await asyncio.sleep(min(wait, MAX_SLEEP))

    async def rate_limited(self, retry_after: float | None) -> None:
        """Pause batch traffic in every process (see :class:`RateLimiter`)."""
        pause = clamp_pause(retry_after, self.pause)
        await self.fallback.rate_limited(retry_after)
        if time.monotonic() < self._down_until:
            return
        cancelled = False
        try:
            await self._call(
                True,
                [self._keys[2], self._keys[3]],
                [pause * 1000.0, MAX_PAUSE * 1000.0, self.recovery * 1000.0],
            )
        except asyncio.CancelledError:
            cancelled = True
        except Exception as e:
            failure = e
        else:
            return
        if cancelled:
            _drop(self)
            raise asyncio.CancelledError
        await self._failed(failure)

    async def aclose(self) -> None:
        """Close the Redis connection (a new one is made on next use)."""
        if self._pid != os.getpid():
            self._forget()
        redis, self._redis = self._redis, None
        if redis is not None:
            await _close_quietly(redis)
        if self._closing:  # clients dropped after a cancelled call, still closing
            await asyncio.gather(*self._closing, return_exceptions=True)


#: Query options redis-py reads as seconds, and the least each may be ("> 0" or ">= 0").
_SECONDS_OPTIONS: Final = {
    "socket_timeout": False,
    "socket_connect_timeout": False,
    "timeout": False,
    "health_check_interval": True,
}
#: The checks of the settings only a RedisRateLimiter has (see _validate).
_CLUSTER: Final = flag("cluster")
_NAME: Final = text(
    "name",
    max_len=MAX_NAME,
    ascii=False,
    forbid="{}",
    must=f"must be 1 to {MAX_NAME} printable characters without {{ or }}",
    show=True,
)
_PROCESSES: Final = whole("processes", 1, MAX_PROCESSES)
_REDIS_TIMEOUT: Final = number("redis_timeout", 0.001, MAX_REDIS_TIMEOUT, noun="number of seconds")
_FALLBACK_RATE: Final = rate("fallback_rate")
#: Characters of a host name or address (IPv6 without its brackets, a %zone), besides
#: letters and digits.
_HOST_CHARS: Final = frozenset(".-_:%")


def _url_problem(url: RedisURL) -> str | None:
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


def _client_problem(url: RedisURL, cluster: bool) -> str | None:
    """Why redis-py could not use ``url`` (checked now, not on the first request), or None."""
    problem = _url_problem(url)
    if problem is not None:
        return problem
    try:
        import redis.asyncio  # noqa: F401, PLC0415 - an optional extra
    except ImportError:
        return "url: RedisRateLimiter needs redis-py: pip install 'stripe-sessions[redis]'"
    try:
        client = _make_client(url, cluster, REDIS_TIMEOUT)
        if not cluster:  # the pool makes connections lazily: make one (no I/O) to check
            pool = client.connection_pool
            pool.connection_class(**pool.connection_kwargs)
    except Exception as e:  # the message only: its traceback holds the URL in redis-py's frames
        problem = f"url: redis-py cannot use this URL: {type(e).__name__}: {url.redact(str(e))}"
    return problem


def _make_client(url: RedisURL, cluster: bool, timeout: float) -> Any:
    if cluster:
        from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415 - an optional extra

        return RedisCluster.from_url(
            url.reveal(), socket_timeout=timeout, socket_connect_timeout=timeout
        )
    from redis.asyncio import Redis  # noqa: PLC0415 - an optional extra

    return Redis.from_url(url.reveal(), socket_timeout=timeout, socket_connect_timeout=timeout)


def _drop(limiter: RedisRateLimiter) -> None:
    """After a cancelled call: the client may be mid-command, so it is not used again."""
    old, limiter._redis = limiter._redis, None
    if old is not None:
        task = asyncio.ensure_future(_close_quietly(old))
        limiter._closing.add(task)  # referenced until done; aclose() waits for it
        task.add_done_callback(limiter._closing.discard)


async def _close_quietly(redis: Any) -> None:
    try:
        if hasattr(redis, "connection_pool"):  # a Redis: its pool too (made by from_url)
            await redis.aclose(close_connection_pool=True)
        else:  # a RedisCluster closes its nodes' connections
            await redis.aclose()
    except Exception as e:  # a dead server: nothing more to do than drop the sockets
        logger.debug("closing a Redis client failed: %s", type(e).__name__)
