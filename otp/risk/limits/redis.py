"""Limits on Redis (`OTP_LIMITS_BACKEND=redis`): for request rates the store would feel.

Each key's hits are a sorted set (`<prefix>rl:<key>`): score = the hit's time in
milliseconds, member = `m:=<member>` for an idempotent hit, else `u:<random id>`. Costs
other than 1 sit in a hash beside it (`<prefix>rc:<key>`, member -> cost), so a member
is found by its name alone, whatever it cost. Both keys expire one (longest) window
after their last hit. Counters are plain `<prefix>ct:<key>` integers, and so are budget
totals (their member markers `<prefix>bm:<key>:<member>`).

Every operation is one Lua script (EVALSHA, loaded again after a Redis restart), so a
call is atomic: it prunes, counts, decides and records every key or none, and N+1
simultaneous hits on a limit of N admit exactly N whichever host sent them.

Time is the Redis server's clock (`TIME` inside the script): every app host then agrees
on one clock, and a skewed host cannot stretch or shrink a window.

The keys of one call must live on one node: a single Redis (with replicas or Sentinel),
not Redis Cluster.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis

from otp.risk.limits import Budget, Decision, Hit
from otp.risk.limits.window import check_cost, key_windows

__all__ = ["RedisLimiter"]

# Shared by the hit and peek scripts. KEYS: per distinct key i, its sorted set at 2i-1 and
# its costs hash at 2i. ARGV: cost, member ('' for none, else '=' and the member), a
# unique id, then per limit:
# key index, limit, window (ms).
_COMMON = """
if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 5: TIME, then writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local cost = tonumber(ARGV[1])
local member = ARGV[2]
local uid = ARGV[3]
local nkeys = #KEYS / 2
local limits = {}
local longest = {}
for j = 4, #ARGV, 3 do
  local k, lim, w = tonumber(ARGV[j]), tonumber(ARGV[j + 1]), tonumber(ARGV[j + 2])
  limits[#limits + 1] = {k, lim, w}
  if (longest[k] or 0) < w then longest[k] = w end
end

local function cost_of(k, id)
  local c = redis.call('HGET', KEYS[2 * k], id)
  if c then return tonumber(c) end
  return 1
end

-- units recorded under key k within the last w ms
local function used(k, w)
  local since = '(' .. (now - w)
  if redis.call('EXISTS', KEYS[2 * k]) == 0 then
    return redis.call('ZCOUNT', KEYS[2 * k - 1], since, '+inf')
  end
  local total = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2 * k - 1], since, '+inf')) do
    total = total + cost_of(k, id)
  end
  return total
end

-- ms until the window has room for `cost`, with u units in use (a peek counts in u a hit
-- at `now` it did not record: that one leaves last, after w)
local function reset_ms(k, w, lim, u)
  local need = u + cost - lim
  if need <= 0 then return 0 end
  if cost > lim then return w end
  local flat = redis.call('ZRANGEBYSCORE', KEYS[2 * k - 1], '(' .. (now - w), '+inf', 'WITHSCORES')
  local freed = 0
  for i = 1, #flat, 2 do
    freed = freed + cost_of(k, flat[i])
    if freed >= need then return tonumber(flat[i + 1]) + w - now end
  end
  return w
end

-- decide (and with record, write); per limit: allowed, remaining, reset (ms)
local function run(record)
  local known = {}
  if record then
    for k = 1, nkeys do
      local cutoff = now - longest[k]
      local old = redis.call('ZRANGEBYSCORE', KEYS[2 * k - 1], '-inf', cutoff)
      if #old > 0 then
        if redis.call('EXISTS', KEYS[2 * k]) == 1 then
          for _, id in ipairs(old) do redis.call('HDEL', KEYS[2 * k], id) end
        end
        redis.call('ZREMRANGEBYSCORE', KEYS[2 * k - 1], '-inf', cutoff)
      end
      if member ~= '' and redis.call('ZSCORE', KEYS[2 * k - 1], 'm:' .. member) then
        known[k] = true
      end
    end
  end
  local use, room, ok = {}, {}, true
  for j, l in ipairs(limits) do
    use[j] = used(l[1], l[3])
    room[j] = known[l[1]] or use[j] + cost <= l[2]
    if not room[j] then ok = false end
  end
  if ok and record then
    local id = 'u:' .. uid
    if member ~= '' then id = 'm:' .. member end
    for k = 1, nkeys do
      if not known[k] then
        redis.call('ZADD', KEYS[2 * k - 1], now, id)
        if cost ~= 1 then redis.call('HSET', KEYS[2 * k], id, cost) end
        redis.call('PEXPIRE', KEYS[2 * k - 1], longest[k])
        redis.call('PEXPIRE', KEYS[2 * k], longest[k])
      end
    end
  end
  local out = {}
  for j, l in ipairs(limits) do
    local k, lim, w = l[1], l[2], l[3]
    local u = use[j]
    if ok and not known[k] then u = u + cost end
    local remaining = lim - u
    if remaining < 0 then remaining = 0 end
    local allowed = 0
    if room[j] then allowed = 1 end
    out[#out + 1] = allowed
    out[#out + 1] = remaining
    out[#out + 1] = reset_ms(k, w, lim, u)
  end
  return out
end
"""

_HIT = _COMMON + "return run(true)\n"
_PEEK = _COMMON + "return run(false)\n"

# KEYS[1]: the counter; ARGV[1]: its new lifetime in ms ('' to keep the current one).
_INCR = """
local value = redis.call('INCR', KEYS[1])
if ARGV[1] ~= '' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return value
"""

# Budgets. KEYS: per budget i, its total at 2i-1 and its member marker at 2i. ARGV: cost,
# whether a member is given ('1'/'0'), force ('1'/'0'), then per budget: cap, expiry
# (ms since the epoch). Returns per budget: allowed, total after the call.
_CHARGE = """
local cost = tonumber(ARGV[1])
local marked, force = ARGV[2] == '1', ARGV[3] == '1'
local n = #KEYS / 2
local known, total, room, ok = {}, {}, {}, true
for i = 1, n do
  known[i] = marked and redis.call('EXISTS', KEYS[2 * i]) == 1
  total[i] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  room[i] = force or known[i] or total[i] + cost <= tonumber(ARGV[2 + 2 * i])
  if not room[i] then ok = false end
end
local done = {}
if ok then
  for i = 1, n do
    if not known[i] and not done[KEYS[2 * i - 1]] then
      done[KEYS[2 * i - 1]] = true
      total[i] = redis.call('INCRBY', KEYS[2 * i - 1], cost)
      redis.call('PEXPIREAT', KEYS[2 * i - 1], ARGV[3 + 2 * i])
      if marked then redis.call('SET', KEYS[2 * i], cost, 'PXAT', ARGV[3 + 2 * i]) end
    end
  end
end
local out = {}
for i = 1, n do
  out[#out + 1] = room[i] and 1 or 0
  out[#out + 1] = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
end
return out
"""


class RedisLimiter:
    """Exact sliding-window limits and counters in Redis, keys under `prefix`."""

    def __init__(self, url: str, *, prefix: str = "otp:") -> None:
        self._redis = aioredis.Redis.from_url(url)
        self._prefix = prefix
        self._hit = self._redis.register_script(_HIT)
        self._peek = self._redis.register_script(_PEEK)
        self._incr = self._redis.register_script(_INCR)
        self._charge = self._redis.register_script(_CHARGE)

    async def hit_all(
        self, hits: Sequence[Hit], *, cost: int = 1, member: str | None = None
    ) -> list[Decision]:
        check_cost(cost)
        if not hits:
            return []
        keys, args = self._call(hits, cost, member)
        return _decisions(hits, await self._hit(keys=keys, args=args))

    async def peek(self, hits: Sequence[Hit], *, cost: int = 1) -> list[Decision]:
        check_cost(cost)
        if not hits:
            return []
        keys, args = self._call(hits, cost, None)
        return _decisions(hits, await self._peek(keys=keys, args=args))

    async def charge(
        self,
        budgets: Sequence[Budget],
        *,
        cost: int,
        member: str | None = None,
        force: bool = False,
    ) -> list[Decision]:
        check_cost(cost)
        if not budgets:
            return []
        keys: list[str] = []
        args: list[str | int] = [cost, "0" if member is None else "1", "1" if force else "0"]
        for budget in budgets:
            total = self._counter(budget.key)  # `get` reads a budget's total
            marker = f"{self._prefix}bm:{budget.key}:{member or ''}"
            keys += [total, marker]
            args += [budget.limit.limit, int(budget.expires_at * 1000)]
        flat = await self._charge(keys=keys, args=args)
        now = time.time()
        return [
            Decision(
                limit=budget.limit,
                allowed=bool(flat[2 * i]),
                remaining=max(0, budget.limit.limit - int(flat[2 * i + 1])),
                reset_s=0 if flat[2 * i] else max(1, math.ceil(budget.expires_at - now)),
            )
            for i, budget in enumerate(budgets)
        ]

    async def incr(self, key: str, *, ttl_s: int | None = None) -> int:
        ttl = "" if ttl_s is None else str(ttl_s * 1000)
        return int(await self._incr(keys=[self._counter(key)], args=[ttl]))

    async def get(self, key: str) -> int:
        value = await self._redis.get(self._counter(key))
        return int(value) if value is not None else 0

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._counter(key))

    async def close(self) -> None:
        await self._redis.aclose()

    def _counter(self, key: str) -> str:
        return f"{self._prefix}ct:{key}"

    def _call(
        self, hits: Sequence[Hit], cost: int, member: str | None
    ) -> tuple[list[str], list[str | int]]:
        index = {key: i for i, key in enumerate(key_windows(hits), start=1)}
        keys: list[str] = []
        for key in index:
            keys += [f"{self._prefix}rl:{key}", f"{self._prefix}rc:{key}"]
        marked = "" if member is None else "=" + member
        args: list[str | int] = [cost, marked, uuid.uuid4().hex]
        for hit in hits:
            args += [index[hit.key], hit.limit.limit, hit.limit.window_s * 1000]
        return keys, args


def _decisions(hits: Sequence[Hit], flat: list[int]) -> list[Decision]:
    return [
        Decision(
            limit=hit.limit,
            allowed=bool(flat[3 * i]),
            remaining=int(flat[3 * i + 1]),
            reset_s=math.ceil(int(flat[3 * i + 2]) / 1000),
        )
        for i, hit in enumerate(hits)
    ]
