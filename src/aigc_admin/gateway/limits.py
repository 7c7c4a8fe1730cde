"""Per-channel RPM, TPM and quota, enforced atomically in Redis (one script call per check).

Keys (``{prefix}:gw:{ch:<id>}:…``; the ``{ch:<id>}`` hash tag keeps a channel's keys in one cluster slot):

- ``…:win`` a hash ``{w: window number, r: requests, t: tokens}`` for the current fixed window of
  ``window_seconds`` (60) measured on the Redis server's clock (``TIME``), so every gateway process
  agrees on the window whatever its own clock says (a script that reads ``TIME`` and then writes needs
  Redis >= 5). A *fixed* window: a client can get up to 2×RPM through in the two seconds around a minute
  boundary; in exchange it costs one small hash per channel.
  When the stored window is not the current one it counts as empty and is overwritten on admission.
- ``…:used`` the channel's used tokens: settled actual tokens plus the estimates reserved by requests
  still in flight. It is authoritative while it exists (the DB's ``used_tokens`` trails it, being updated
  from usage batches). It is created only by seeding (``set_quota_used``), never implicitly: after a
  Redis data loss ``admit`` notices the missing counter and seeds it from the ``seeder`` (the DB) once.

Admission (``admit``), all in one script run, so concurrent requests from any number of processes are
serialised by Redis: refuse with ``rpm`` if this request would exceed the RPM, with ``tpm`` if its
``estimated_tokens`` would push the window past the TPM, with ``quota`` if ``used + estimated_tokens >
quota``; otherwise count the request, add the estimate to the window's tokens and to ``used``. A refused
request changes nothing (refusals do not count against the limits).

Settlement (``settle``) after the response adds ``actual - reserved`` to the window's tokens and to
``used`` (a refund when negative; neither goes below 0).

"Never overspent", exactly: the sum of the reservations admitted never exceeds ``quota - used`` at the
moment of each admission, under any concurrency. ``used`` can exceed ``quota`` only by what settlements
add beyond their reservations, i.e. by at most the sum of ``actual - reserved`` over requests that were
in flight together. The gateway makes that zero by reserving ``prompt_tokens + max_tokens`` and sending
``max_tokens`` upstream, so that ``actual <= reserved``; once ``used >= quota`` every admission is refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import redis.asyncio as aioredis

if TYPE_CHECKING:
    from aigc_admin.gateway.keys import ChannelSnapshot

Reason = Literal["rpm", "tpm", "quota"]
QuotaSeeder = Callable[[int], Awaitable[int]]
UNLIMITED = -1

_ADMIT = """
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local est = tonumber(ARGV[4])
local period = tonumber(ARGV[5])
local now = tonumber(redis.call('TIME')[1])
local window = math.floor(now / period)
local retry = period - (now % period)
local cur = redis.call('HMGET', KEYS[1], 'w', 'r', 't')
local r, t = 0, 0
if tonumber(cur[1]) == window then
  r = tonumber(cur[2]) or 0
  t = tonumber(cur[3]) or 0
end
if rpm >= 0 and r + 1 > rpm then return {0, 'rpm', retry, window} end
if tpm >= 0 and t + est > tpm then return {0, 'tpm', retry, window} end
local used = redis.call('GET', KEYS[2])
if quota >= 0 then
  if not used then return {-1, 'unseeded', 0, window} end
  if tonumber(used) + est > quota then return {0, 'quota', 0, window} end
end
redis.call('HSET', KEYS[1], 'w', window, 'r', r + 1, 't', t + est)
redis.call('EXPIRE', KEYS[1], period * 2)
if used then redis.call('INCRBY', KEYS[2], est) end
return {1, '', 0, window}
"""

_SETTLE = """
local delta = tonumber(ARGV[1])
local at = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local now = tonumber(redis.call('TIME')[1])
local window = math.floor(now / period)
if at < 0 then at = window end
local cur = tonumber(redis.call('HGET', KEYS[1], 'w'))
if at == window then
  if cur == window then
    local t = redis.call('HINCRBY', KEYS[1], 't', delta)
    if t < 0 then redis.call('HSET', KEYS[1], 't', 0) end
  end
elseif delta > 0 then
  -- the reservation's window is over: the excess was consumed now, so it counts against this window
  if cur == window then
    redis.call('HINCRBY', KEYS[1], 't', delta)
  else
    redis.call('HSET', KEYS[1], 'w', window, 'r', 0, 't', delta)
    redis.call('EXPIRE', KEYS[1], period * 2)
  end
end
if redis.call('EXISTS', KEYS[2]) == 0 then return -1 end
local used = redis.call('INCRBY', KEYS[2], delta)
if used < 0 then
  redis.call('SET', KEYS[2], 0)
  used = 0
end
return used
"""


class QuotaNotSeeded(LookupError):
    """The channel has a quota but Redis holds no used-tokens counter for it, and no seeder was given."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: Reason | None = None
    retry_after: int = 0  # seconds until the window resets (rpm/tpm: 1..60); 0 for quota (waiting won't help)
    reserved: int = 0  # tokens reserved on admission: pass to settle
    window: int | None = None  # the window the reservation was counted in: pass to settle


def _limit(value: int | None, name: str) -> int:
    if value is None:
        return UNLIMITED
    if value < 0:
        raise ValueError(f"{name} must be >= 0 or None (unlimited), not {value}")
    return int(value)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Limiter:
    """RPM/TPM/quota for channels, shared by every gateway process through one Redis.

    ``seeder(channel_id) -> used tokens`` (a DB read of ``used_tokens``) is called when a channel with a
    quota has no counter yet; without one ``admit`` raises ``QuotaNotSeeded`` in that case.
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str, seeder: QuotaSeeder | None = None,
                 window_seconds: int = 60) -> None:
        if window_seconds < 1:
            raise ValueError("window_seconds must be at least 1")
        self._r = redis
        self._prefix = prefix
        self._seeder = seeder
        self._period = window_seconds
        self._admit = redis.register_script(_ADMIT)
        self._settle = redis.register_script(_SETTLE)

    def window_key(self, channel_id: int) -> str:
        return f"{self._prefix}:gw:{{ch:{channel_id}}}:win"

    def used_key(self, channel_id: int) -> str:
        return f"{self._prefix}:gw:{{ch:{channel_id}}}:used"

    async def admit(self, channel_id: int, rpm: int | None, tpm: int | None, quota: int | None,
                    estimated_tokens: int) -> Decision:
        """Admit one request that may use ``estimated_tokens``, reserving them; one script call."""
        if estimated_tokens < 0:
            raise ValueError("estimated_tokens must be >= 0")
        args = [_limit(rpm, "rpm"), _limit(tpm, "tpm"), _limit(quota, "quota"), int(estimated_tokens),
                self._period]
        keys = [self.window_key(channel_id), self.used_key(channel_id)]
        status, reason, retry, window = await self._admit(keys=keys, args=args)
        if int(status) == -1:  # a quota but no counter: seed it from the DB once, then decide
            if self._seeder is None:
                raise QuotaNotSeeded(f"no used-tokens counter for channel {channel_id}")
            await self.set_quota_used(channel_id, await self._seeder(channel_id), only_if_missing=True)
            status, reason, retry, window = await self._admit(keys=keys, args=args)
            if int(status) == -1:
                raise QuotaNotSeeded(f"used-tokens counter for channel {channel_id} vanished after seeding")
        if int(status) == 1:
            return Decision(True, None, 0, int(estimated_tokens), int(window))
        why: Any = _text(reason)
        return Decision(False, why, int(retry), 0, int(window))

    async def admit_channel(self, channel: ChannelSnapshot, estimated_tokens: int) -> Decision:
        """``admit`` with the limits of a cached channel snapshot."""
        return await self.admit(channel.id, channel.rpm, channel.tpm, channel.quota, estimated_tokens)

    async def settle(self, channel_id: int, reserved: int, actual_tokens: int, *,
                     window: int | None = None) -> int | None:
        """Correct the reservation by ``actual_tokens - reserved``; returns the used tokens after (None: no
        counter). Pass the decision's ``window`` so that a refund after a window change is not applied to
        the new window (an excess is: it was consumed now). No round trip when actual equals reserved."""
        if reserved < 0 or actual_tokens < 0:
            raise ValueError("reserved and actual_tokens must be >= 0")
        delta = int(actual_tokens) - int(reserved)
        if delta == 0:
            return None
        keys = [self.window_key(channel_id), self.used_key(channel_id)]
        used = int(await self._settle(keys=keys, args=[delta, -1 if window is None else int(window), self._period]))
        return None if used < 0 else used

    async def quota_used(self, channel_id: int) -> int | None:
        """Used tokens (settled + reserved), or None when the counter is not seeded; one round trip."""
        raw = await self._r.get(self.used_key(channel_id))
        return None if raw is None else int(raw)

    async def set_quota_used(self, channel_id: int, n: int, *, only_if_missing: bool = False) -> bool:
        """Set the counter (one round trip). Seed at start-up with ``only_if_missing=True``: a running
        counter is ahead of the DB (reservations and unflushed usage) and must not be overwritten; the plain
        form is for an explicit reset. Returns whether it was written."""
        if n < 0:
            raise ValueError("used tokens must be >= 0")
        return bool(await self._r.set(self.used_key(channel_id), int(n), nx=only_if_missing))

    async def forget(self, channel_id: int) -> None:
        """Drop a channel's counters (the channel was deleted)."""
        await self._r.delete(self.window_key(channel_id), self.used_key(channel_id))
