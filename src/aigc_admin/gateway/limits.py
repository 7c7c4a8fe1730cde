"""Per-channel RPM, TPM and quota, enforced atomically in Redis (batched script runs; leases).

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

Admission (``admit``), atomically in a script run, so concurrent requests from any number of processes are
serialised by Redis: refuse with ``rpm`` if this request would exceed the RPM, with ``tpm`` if its
``estimated_tokens`` would push the window past the TPM, with ``quota`` if ``used + estimated_tokens >
quota``; otherwise count the request, add the estimate to the window's tokens and to ``used``. A refused
request changes nothing (refusals do not count against the limits).

Settlement (``settle``) after the response adds ``actual - reserved`` to the window's tokens and to
``used`` (a refund when negative; neither goes below 0).

Batching (the hot path's round trips). Calls made in the same event-loop iteration are sent together:
one script run per channel applies that channel's settlements, then its admissions, in call order, with
exactly the result of making them one by one. So at concurrency 64 a tick's admissions cost one round
trip, not 64. The gateway settles with ``settle_soon``, which does not wait: its settlement rides along
with the next admission, or is sent on its own after ``settle_delay`` (5 ms) when no admission comes. A
refund therefore reaches Redis up to 5 ms late, which only ever makes admission stricter; ``aclose``
sends what is pending.

Leases (``leases=True``, the gateway). An admitted request may take a lease along: requests and tokens
counted in Redis now (in the window and in ``used``), handed out by this process later without a round
trip. A lease asks for twice as many requests as the previous one served (1 to 64, tokens for that many
requests like the current one) and gets at most half of what is left under each limit, so near a limit
leases shrink to nothing and every admission is decided in Redis again. A lease is used only in its own
window (it ends 50 ms before Redis's window does), only under the limits it was granted with (a channel
update stops it), and only for a request it can cover whole; otherwise it is given back in the same
script run, before that request's admission, so what a process holds never refuses its own request.
Unused leases go back after ``lease_idle`` seconds (0.5) without use and at ``aclose``. Costs: while one
process holds a lease another process's request can be refused although the channel is not exhausted
(at most half of the headroom, for at most ``lease_idle`` after its last use), and a process killed with
SIGKILL leaves its unused lease counted: its requests until the window ends, its tokens in ``used``
until the counter is re-seeded.

"Never overspent", exactly: the sum of the reservations admitted never exceeds ``quota - used`` at the
moment of each admission, under any concurrency. ``used`` can exceed ``quota`` only by what settlements
add beyond their reservations, i.e. by at most the sum of ``actual - reserved`` over requests that were
in flight together. The gateway makes that zero by reserving ``prompt_tokens + max_tokens`` and sending
``max_tokens`` upstream, so that ``actual <= reserved``; once ``used >= quota`` every admission is refused.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import redis.asyncio as aioredis
from redis.exceptions import RedisError

if TYPE_CHECKING:
    from aigc_admin.gateway.keys import ChannelSnapshot

Reason = Literal["rpm", "tpm", "quota"]
QuotaSeeder = Callable[[int], Awaitable[int]]
UNLIMITED = -1
log = logging.getLogger(__name__)

# One run applies a channel's pending settlements, then its pending admissions, in order, exactly as the same
# calls made one by one would (each sees the state the previous one left). ARGV: period, number of
# settlements, then (token delta, window, request delta) per settlement, then (rpm, tpm, quota, estimate,
# lease requests, lease tokens) per admission. An admitted request may also take a lease: up to the asked
# requests and tokens, at most half of what is left under each limit, counted like admissions.
# Returns the window and the milliseconds left in it, then the used tokens after each settlement (-1: no
# counter), then (status, reason, retry, leased requests, leased tokens) per admission (status 1 admitted,
# 0 refused, -1 a quota but no counter).
_BATCH = """
local period = tonumber(ARGV[1])
local n_settle = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1])
local window = math.floor(now / period)
local retry = period - (now % period)
local left_ms = retry * 1000 - math.floor(tonumber(clock[2]) / 1000)
local cur = redis.call('HMGET', KEYS[1], 'w', 'r', 't')
local w = tonumber(cur[1])
local r, t = 0, 0
if w == window then
  r = tonumber(cur[2]) or 0
  t = tonumber(cur[3]) or 0
end
local used = redis.call('GET', KEYS[2])
if used then used = tonumber(used) end
local win_dirty, used_dirty = false, false
local out = {window, left_ms}
local i = 3
for _ = 1, n_settle do
  local delta = tonumber(ARGV[i])
  local at = tonumber(ARGV[i + 1])
  local requests = tonumber(ARGV[i + 2])
  i = i + 3
  if at < 0 then at = window end
  if at == window then
    if w == window then
      t = math.max(t + delta, 0)
      r = math.max(r + requests, 0)
      win_dirty = true
    end
  elseif delta > 0 then
    -- the reservation's window is over: the excess was consumed now, so it counts against this window
    if w ~= window then w, r, t = window, 0, 0 end
    t = t + delta
    win_dirty = true
  end
  if used then
    used = math.max(used + delta, 0)
    used_dirty = true
    out[#out + 1] = used
  else
    out[#out + 1] = -1
  end
end
while i <= #ARGV do
  local rpm, tpm, quota, est = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])
  local lr, lt = tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5])
  i = i + 6
  if rpm >= 0 and r + 1 > rpm then
    out[#out + 1] = 0; out[#out + 1] = 'rpm'; out[#out + 1] = retry; out[#out + 1] = 0; out[#out + 1] = 0
  elseif tpm >= 0 and t + est > tpm then
    out[#out + 1] = 0; out[#out + 1] = 'tpm'; out[#out + 1] = retry; out[#out + 1] = 0; out[#out + 1] = 0
  elseif quota >= 0 and not used then
    out[#out + 1] = -1; out[#out + 1] = 'unseeded'; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  elseif quota >= 0 and used + est > quota then
    out[#out + 1] = 0; out[#out + 1] = 'quota'; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  else
    w, r, t = window, r + 1, t + est
    -- the lease: never more than half of what is left, so that other processes keep their share
    if rpm >= 0 then lr = math.min(lr, math.floor((rpm - r) / 2)) end
    if tpm >= 0 then lt = math.min(lt, math.floor((tpm - t) / 2)) end
    if quota >= 0 then lt = math.min(lt, math.floor((quota - used - est) / 2)) end
    if lr < 1 or lt < 0 then lr, lt = 0, 0 end
    r, t = r + lr, t + lt
    win_dirty = true
    if used then
      used = used + est + lt
      used_dirty = true
    end
    out[#out + 1] = 1; out[#out + 1] = ''; out[#out + 1] = 0; out[#out + 1] = lr; out[#out + 1] = lt
  end
end
if win_dirty and w == window then
  redis.call('HSET', KEYS[1], 'w', window, 'r', r, 't', t)
  redis.call('EXPIRE', KEYS[1], period * 2)
end
if used_dirty then redis.call('SET', KEYS[2], string.format('%d', used)) end
return out
"""


class QuotaNotSeeded(LookupError):
    """The channel has a quota but Redis holds no used-tokens counter for it, and no seeder was given."""


class SeedingDeferred(RedisError):
    """Redis lost its data a moment ago: quota counters are not seeded from the database until the API processes
    have written the usage they held (``seed_grace``); limited requests are answered as when Redis is down."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"quota counters are seeded again in {retry_after} s")
        self.retry_after = retry_after


# KEYS: the "born" key; ARGV: seconds to back-date it by when it is set here. Returns the seconds since Redis was
# first seen without it (as a string: a Lua number would be truncated to an integer).
_AGE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('SET', KEYS[1], tostring(now - tonumber(ARGV[1])), 'NX')
return tostring(now - tonumber(redis.call('GET', KEYS[1])))
"""


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


Limits6 = tuple[int, int, int, int, int, int]  # rpm, tpm, quota, estimate, lease requests, lease tokens
MAX_LEASE_REQUESTS = 64


@dataclass(slots=True)
class _Batch:
    """A channel's calls waiting for the next script run."""

    settles: list[tuple[int, int, int, asyncio.Future[int | None] | None]] = field(default_factory=list)
    admits: list[tuple[Limits6, asyncio.Future[Decision]]] = field(default_factory=list)


@dataclass(slots=True)
class _Lease:
    """Requests and tokens this process took in advance in one window (already counted in Redis)."""

    window: int
    ends: float  # loop time at which the window ends (a little early, for safety)
    limits: tuple[int, int, int]  # (rpm, tpm, quota) it was granted under: other limits → not used
    requests: int = 0
    tokens: int = 0
    used: int = 0  # admissions served from it
    last: float = 0.0  # loop time of the last one


class Limiter:
    """RPM/TPM/quota for channels, shared by every gateway process through one Redis.

    ``seeder(channel_id) -> used tokens`` (a DB read of ``used_tokens``) is called when a channel with a
    quota has no counter yet; without one ``admit`` raises ``QuotaNotSeeded`` in that case.
    ``leases=True`` (the gateway) lets admissions take leases (see the module docstring).
    """

    def __init__(self, redis: aioredis.Redis, *, prefix: str, seeder: QuotaSeeder | None = None,
                 window_seconds: int = 60, settle_delay: float = 0.005, leases: bool = False,
                 lease_idle: float = 0.5, seed_grace: float = 0.0) -> None:
        if window_seconds < 1:
            raise ValueError("window_seconds must be at least 1")
        self._r = redis
        self._prefix = prefix
        self._seeder = seeder
        self._period = window_seconds
        self._settle_delay = settle_delay
        self._script = redis.register_script(_BATCH)
        self._age = redis.register_script(_AGE)
        self._seed_grace = seed_grace  # see SeedingDeferred and ``started``
        self._born_key = f"{prefix}:gw:born"
        self._pending: dict[int, _Batch] = {}
        self._soon: asyncio.Handle | None = None  # a send in this loop iteration (an admission waits)
        self._later: asyncio.TimerHandle | None = None  # a send of settlements only
        self._running: set[asyncio.Task[None]] = set()
        self._use_leases = leases
        self._lease_idle = lease_idle
        self._leases: dict[int, _Lease] = {}
        self._asks: dict[int, int] = {}  # requests to ask for in the next lease, per channel
        self._sweeper: asyncio.TimerHandle | None = None

    def window_key(self, channel_id: int) -> str:
        return f"{self._prefix}:gw:{{ch:{channel_id}}}:win"

    def used_key(self, channel_id: int) -> str:
        return f"{self._prefix}:gw:{{ch:{channel_id}}}:used"

    # --- batching ---------------------------------------------------------------------------------------
    def _batch(self, channel_id: int) -> _Batch:
        batch = self._pending.get(channel_id)
        if batch is None:
            batch = self._pending[channel_id] = _Batch()
        return batch

    def _send_soon(self) -> None:
        if self._soon is None:
            self._soon = asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._soon = None
        if self._later is not None:
            self._later.cancel()
            self._later = None
        pending, self._pending = self._pending, {}
        for channel_id, batch in pending.items():
            task = asyncio.get_running_loop().create_task(self._run(channel_id, batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, channel_id: int, batch: _Batch, *, seeded: bool = False) -> None:
        args: list[int] = [self._period, len(batch.settles)]
        for delta, window, requests, _ in batch.settles:
            args += (delta, window, requests)
        last = len(batch.admits) - 1
        for j, (limits, _) in enumerate(batch.admits):
            args += limits if j == last else (*limits[:4], 0, 0)  # one lease per run: the last one asks
        try:
            out = await self._script(keys=[self.window_key(channel_id), self.used_key(channel_id)], args=args)
        except BaseException as e:
            for _, _, _, settled in batch.settles:
                if settled is None:
                    log.error("could not settle channel %s (%s: %s)", channel_id, type(e).__name__, e)
                else:
                    _fail(settled, e)
            for _, admitted in batch.admits:
                _fail(admitted, e)
            if not isinstance(e, Exception):
                raise
            return
        window, left_ms = int(out[0]), int(out[1])
        for (_, _, _, settled), used in zip(batch.settles, out[2:], strict=False):
            if settled is not None and not settled.done():
                settled.set_result(None if int(used) < 0 else int(used))
        unseeded = _Batch()
        offset = 2 + len(batch.settles)
        for j, (limits, waiter) in enumerate(batch.admits):
            status, reason, retry, leased_requests, leased_tokens = out[offset + 5 * j: offset + 5 * j + 5]
            if int(status) == -1:
                unseeded.admits.append((limits, waiter))
                continue
            if int(leased_requests) > 0:
                self._grant(channel_id, window, left_ms, limits, int(leased_requests), int(leased_tokens))
            if not waiter.done():
                waiter.set_result(Decision(True, None, 0, limits[3], window) if int(status) == 1
                                  else Decision(False, _text(reason), int(retry), 0, window))  # type: ignore[arg-type]
        if unseeded.admits:
            # a quota but no counter: seed it from the DB once, then decide those admissions again
            try:
                if self._seeder is None:
                    raise QuotaNotSeeded(f"no used-tokens counter for channel {channel_id}")
                if seeded:
                    raise QuotaNotSeeded(f"used-tokens counter for channel {channel_id} vanished after seeding")
                if self._seed_grace > 0:
                    age = float(_text(await self._age(keys=[self._born_key], args=[0])))
                    if age < self._seed_grace:
                        raise SeedingDeferred(max(1, math.ceil(self._seed_grace - age)))
                await self.set_quota_used(channel_id, await self._seeder(channel_id), only_if_missing=True)
            except Exception as e:
                for _, waiter in unseeded.admits:
                    _fail(waiter, e)
                return
            await self._run(channel_id, unseeded, seeded=True)

    def _enqueue_admit(self, channel_id: int, limits: Limits6) -> asyncio.Future[Decision]:
        waiter: asyncio.Future[Decision] = asyncio.get_running_loop().create_future()
        self._batch(channel_id).admits.append((limits, waiter))
        self._send_soon()
        return waiter

    # --- leases -----------------------------------------------------------------------------------------
    def _from_lease(self, channel_id: int, limits: tuple[int, int, int], tokens: int) -> Decision | None:
        lease = self._leases.get(channel_id)
        if lease is None:
            return None
        now = asyncio.get_running_loop().time()
        if lease.requests < 1 or lease.tokens < tokens or now >= lease.ends or lease.limits != limits:
            return None
        lease.requests -= 1
        lease.tokens -= tokens
        lease.used += 1
        lease.last = now
        return Decision(True, None, 0, tokens, lease.window)

    def _ask(self, channel_id: int, tokens: int) -> tuple[int, int]:
        """What to lease with this admission: twice what the last lease served (1 to start), as many tokens
        as that many requests like this one would reserve."""
        if not self._use_leases:
            return 0, 0
        requests = min(MAX_LEASE_REQUESTS, max(1, 2 * self._asks.get(channel_id, 0)))
        return requests, requests * tokens

    def _grant(self, channel_id: int, window: int, left_ms: int, limits: Limits6, requests: int, tokens: int) -> None:
        loop = asyncio.get_running_loop()
        self._give_back(channel_id)
        # the window's end by Redis's clock, 50 ms early so that the lease never outlives it
        self._leases[channel_id] = _Lease(window, loop.time() + left_ms / 1000 - 0.05, limits[:3], requests,  # type: ignore[arg-type]
                                          tokens, last=loop.time())
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._lease_idle, self._sweep)

    def _give_back(self, channel_id: int) -> None:
        """End the channel's lease, returning what it did not use (its requests count only in its own
        window), and remember how much it served to size the next one."""
        lease = self._leases.pop(channel_id, None)
        if lease is None:
            return
        self._asks[channel_id] = lease.used
        if lease.requests or lease.tokens:
            self._batch(channel_id).settles.append((-lease.tokens, lease.window, -lease.requests, None))
            self._schedule_settle()

    def _sweep(self) -> None:
        """Give back leases that sat idle for ``lease_idle`` or whose window ended."""
        self._sweeper = None
        now = asyncio.get_running_loop().time()
        for channel_id, lease in list(self._leases.items()):
            if now - lease.last >= self._lease_idle or now >= lease.ends:
                self._give_back(channel_id)
        if self._leases:
            self._sweeper = asyncio.get_running_loop().call_later(self._lease_idle, self._sweep)

    # --- the calls --------------------------------------------------------------------------------------
    async def admit(self, channel_id: int, rpm: int | None, tpm: int | None, quota: int | None,
                    estimated_tokens: int) -> Decision:
        """Admit one request that may use ``estimated_tokens``, reserving them (batched, see the module)."""
        if estimated_tokens < 0:
            raise ValueError("estimated_tokens must be >= 0")
        caps = (_limit(rpm, "rpm"), _limit(tpm, "tpm"), _limit(quota, "quota"))
        if self._use_leases:
            if decision := self._from_lease(channel_id, caps, int(estimated_tokens)):
                return decision
            # the lease cannot serve this one: give it back first (settlements run before admissions), so
            # that what this process holds never makes its own request fail
            self._give_back(channel_id)
        return await self._enqueue_admit(channel_id, (*caps, int(estimated_tokens),
                                                      *self._ask(channel_id, int(estimated_tokens))))

    async def admit_channel(self, channel: ChannelSnapshot, estimated_tokens: int) -> Decision:
        """``admit`` with the limits of a cached channel snapshot."""
        return await self.admit(channel.id, channel.rpm, channel.tpm, channel.quota, estimated_tokens)

    def _settlement(self, reserved: int, actual_tokens: int, window: int | None) -> tuple[int, int]:
        if reserved < 0 or actual_tokens < 0:
            raise ValueError("reserved and actual_tokens must be >= 0")
        return int(actual_tokens) - int(reserved), -1 if window is None else int(window)

    async def settle(self, channel_id: int, reserved: int, actual_tokens: int, *,
                     window: int | None = None) -> int | None:
        """Correct the reservation by ``actual_tokens - reserved``; returns the used tokens after (None: no
        counter). Pass the decision's ``window`` so that a refund after a window change is not applied to
        the new window (an excess is: it was consumed now). No round trip when actual equals reserved."""
        delta, at = self._settlement(reserved, actual_tokens, window)
        if delta == 0:
            return None
        waiter: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._batch(channel_id).settles.append((delta, at, 0, waiter))
        self._send_soon()
        return await waiter

    def settle_soon(self, channel_id: int, reserved: int, actual_tokens: int, *, window: int | None = None) -> None:
        """``settle`` without waiting: sent with the next admission, or within ``settle_delay``."""
        delta, at = self._settlement(reserved, actual_tokens, window)
        if delta == 0:
            return
        self._batch(channel_id).settles.append((delta, at, 0, None))
        self._schedule_settle()

    def _schedule_settle(self) -> None:
        if self._soon is None and self._later is None:
            self._later = asyncio.get_running_loop().call_later(self._settle_delay, self._send)

    async def aclose(self) -> None:
        """Give back the leases, send what is pending and wait for every run in flight (at shutdown: no
        settlement is lost)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for channel_id in list(self._leases):
            self._give_back(channel_id)
        if self._pending:
            self._send()
        while self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

    async def started(self) -> None:
        """Called when an API process starts: a Redis it finds without the "born" key is new to the platform (no
        usage was held elsewhere), so counters are seeded at once. A Redis that loses its data while the
        processes run gets the key at its first seeding: counters wait ``seed_grace`` (the others' usage in
        memory reaching the database), which keeps a quota from being overspent by the database's lag."""
        await self._age(keys=[self._born_key], args=[self._seed_grace])

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


def _fail(waiter: asyncio.Future[Any], error: BaseException) -> None:
    if waiter.done():
        return
    if isinstance(error, asyncio.CancelledError):
        waiter.cancel()
    else:
        waiter.set_exception(error)
