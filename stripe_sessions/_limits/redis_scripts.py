"""The Lua scripts that keep a RedisRateLimiter's budgets in Redis, their keys and arguments.

Written as one small Lua script run through redis-py rather than with a rate-limiting
library: pyrate-limiter and limits both offer fixed or sliding windows and token
buckets that answer "allowed or not" for one key, while this needs two budgets with a
priority between them, a shared pause, and the wait until the next slot (one round trip
per request) - see :data:`SCRIPT` for the algorithm.
"""

from __future__ import annotations

from typing import Any, Final

from .gcra import LIVE_BURST, LIVE_RESERVE, PACING_TOLERANCE
from .pause import MAX_PAUSE

__all__ = [
    "KEY_NAMES",
    "LIVE_LEAD_MS",
    "PAUSE_SCRIPT",
    "SCRIPT",
    "budget_args",
    "budget_keys",
    "pause_args",
]

#: How far ahead live calls may book the account budget (ms): a live call waits at most
#: its timeout, so booking further ahead only grows a queue nobody waits in. With the
#: live burst and one more slot, also the bound past which an account slot is
#: implausible (see SCRIPT).
LIVE_LEAD_MS: Final = 60_000.0
#: What each of a budget's keys holds, in SCRIPT's KEYS order (and the repaired bits').
KEY_NAMES: Final = ("account", "batch", "pause", "429")


def budget_keys(name: str) -> list[str]:
    """The keys of budget ``name``: one hash tag, so that all live in one cluster slot."""
    return [f"stripe_sessions:rate:{{{name}}}:{key}" for key in KEY_NAMES]


def budget_args(batch: bool, rate: float, batch_share: float, recovery: float) -> list[Any]:
    """SCRIPT's ARGV for a live call or a batch item of a budget with these settings."""
    interval = 1000.0 / rate
    return ["1" if batch else "0", interval, interval / batch_share,
            recovery * 1000.0, LIVE_LEAD_MS, MAX_PAUSE * 1000.0,
            PACING_TOLERANCE, LIVE_RESERVE, LIVE_BURST]  # fmt: skip


def pause_args(pause: float, recovery: float) -> list[Any]:
    """PAUSE_SCRIPT's ARGV: pause batch traffic ``pause`` seconds (at most MAX_PAUSE)."""
    return [pause * 1000.0, MAX_PAUSE * 1000.0, recovery * 1000.0]


#: The shared state, in milliseconds of Redis's own clock (``TIME``, the same for every
#: process): KEYS = account next slot, batch next slot, batch pause end, last 429 (all in
#: one hash tag, ``{name}``, so the script runs on one slot of a Redis Cluster).
#: ARGV = 1 for a batch item, account interval, batch interval, recovery, live lead,
#: longest pause (all ms), the pacing tolerance and the live reserve (fractions of a
#: slot), the live burst (slots).
#: GCRA: each budget is the time of its next free slot, and a slot granted at ``now``
#: books the next one from the previous booked slot, but from no earlier than ``now``
#: less the tolerance (``gcra.book``): a request up to a quarter of a slot late (a
#: round trip, a late wake-up) keeps the schedule, a later one books from its own time.
#: A live call books the account's next slot, or starts now if that is at most the live
#: burst (``gcra.LIVE_BURST``, one slot) ahead, the next slot moving on one interval
#: either way (never booked more than the live lead ahead), and returns how long to wait
#: for its start. A batch item takes a slot only when its own budget's
#: turn has come (after any pause), and the account has one free now, by the live
#: reserve (``gcra.LIVE_RESERVE``) at least, so that a live call coming next is
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
