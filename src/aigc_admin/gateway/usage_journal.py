"""The usage journal: usage put in Redis before its answer goes out, moved to the database exactly once.

Why: an API process aggregates usage in memory and writes it in batches (``usage.py``); killed with SIGKILL it
would take up to a flush interval of answered requests' usage with it. With the journal, the requests settled in
one event-loop tick are added to the process's own Redis hash (``…:open:<writer>``; one script run per tick) and
the gateway sends an answer only once its usage is there.

Generations. Moving the journal to the database (``move``) is done by one process at a time (a lock with a TTL:
when the process holding it dies, another takes over):

1. seal: in one script run, every writer's open hash of generation ``g`` is renamed ``…:sealed:<id>`` with
   ``id = <epoch>-<g>-<writer>`` and the id added to the set of sealed batches; the generation becomes ``g + 1``;
2. each sealed batch is written in ONE database transaction together with a ``usage_batches`` row of its id; a
   batch whose id is there already was written before (by a mover that died before step 3, or by its writer,
   below), and is not written again;
3. the sealed hash and its id are deleted.

Each append returns the epoch and generation it landed in, so the writer knows exactly which batch id holds it.
The writer keeps a copy of each of its parts in memory until it sees that id in ``usage_batches``. If Redis loses
its data (a restart without persistence: the ``epoch`` key is gone and a new one is drawn), each writer writes its
own parts of the old epoch itself, under the same ids: whoever writes an id first, the mover or the writer, it is
counted once. So usage is lost only when Redis loses its data *and* the process that journaled it dies before
its next flush. A batch that cannot be written (the database is down) stays sealed in Redis and in its writer's
memory until a later move writes it.

Field names: ``<channel id>|<UTC day>|<r, p or c>|<model>`` (requests, prompt and completion tokens; the model
last, as it may hold ``|``). Every key carries the ``{journal}`` hash tag (one cluster slot for the scripts).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from typing import Any

import redis.asyncio as aioredis

from aigc_admin.domain.channels.service import UsageCounts, UsageKey
from aigc_admin.gateway.redis_pipe import RedisPipe, script_sha

log = logging.getLogger("aigc_admin.gateway.usage")

BatchWriter = Callable[[dict[UsageKey, UsageCounts], str], Awaitable[int]]
Generation = tuple[str, int]  # (epoch, generation): the batch a part of a writer's usage is in

# KEYS: the writer's open hash, writers set, epoch, generation; ARGV: writer, a new epoch (used when there is
# none), then field, increment pairs. Returns {epoch, generation}: where these increments landed.
_APPEND = """
local e = redis.call('GET', KEYS[3])
if not e then redis.call('SET', KEYS[3], ARGV[2]); e = ARGV[2] end
for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('SADD', KEYS[2], ARGV[1])
return {e, redis.call('GET', KEYS[4]) or '0'}
"""
_APPEND_SHA = script_sha(_APPEND)
# KEYS: writers set, epoch, generation, sealed set; ARGV: open-hash prefix, sealed-hash prefix, a new epoch.
# Seals every writer's open hash of this generation; returns how many.
_SEAL = """
local e = redis.call('GET', KEYS[2])
if not e then redis.call('SET', KEYS[2], ARGV[3]); e = ARGV[3] end
local g = tonumber(redis.call('GET', KEYS[3]) or '0')
local n = 0
for _, w in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local open = ARGV[1] .. w
  if redis.call('EXISTS', open) == 1 then
    local id = e .. '-' .. g .. '-' .. w
    redis.call('RENAME', open, ARGV[2] .. id)
    redis.call('SADD', KEYS[4], id)
    n = n + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[3], g + 1)
return n
"""
# KEYS: lock; ARGV: token. Deletes the lock only if it is still ours.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _generation(reply: list[bytes]) -> Generation:
    return _text(reply[0]), int(_text(reply[1]))


def _map(source: asyncio.Future[Any], convert: Callable[[Any], Any]) -> asyncio.Future[Any]:
    """A future of ``convert(source's result)`` (or its exception), without a task."""
    out = source.get_loop().create_future()

    def done(f: asyncio.Future[Any]) -> None:
        if out.done():
            return
        if f.cancelled():
            out.cancel()
        elif (error := f.exception()) is not None:
            out.set_exception(error)
        else:
            try:
                out.set_result(convert(f.result()))
            except Exception as e:
                out.set_exception(e)

    source.add_done_callback(done)
    return out


def new_epoch() -> str:
    return uuid.uuid4().hex[:10]


def encode(batch: dict[UsageKey, UsageCounts]) -> dict[str, int]:
    """The HINCRBY increments of a batch (zero counters left out)."""
    out: dict[str, int] = {}
    for (channel_id, model, day), counts in batch.items():
        head = f"{int(channel_id)}|{day.isoformat()}|"
        for letter, value in (("r", counts.requests), ("p", counts.prompt_tokens), ("c", counts.completion_tokens)):
            if value:
                out[f"{head}{letter}|{model}"] = value
    return out


def decode(fields: Mapping[bytes | str, bytes | str]) -> dict[UsageKey, UsageCounts]:
    """A sealed hash back into aggregates; a field that does not parse is logged and left out."""
    out: dict[UsageKey, UsageCounts] = {}
    for raw_name, raw_value in fields.items():
        name = _text(raw_name)
        try:
            channel, day, letter, model = name.split("|", 3)
            key = (int(channel), model, date.fromisoformat(day))
            value = int(_text(raw_value))
        except ValueError:
            log.error("usage journal field %r = %r does not parse; left out", name, raw_value)
            continue
        counts = out.get(key)
        if counts is None:
            counts = out[key] = UsageCounts()
        if letter == "r":
            counts.requests += value
        elif letter == "p":
            counts.prompt_tokens += value
        elif letter == "c":
            counts.completion_tokens += value
        else:
            log.error("usage journal field %r has an unknown counter; left out", name)
    return out


class UsageJournal:
    """One process's handle on the journal (``writer``: its id): ``append`` (the hot path, once per tick) and
    ``move`` (periodically, by whichever process gets the lock)."""

    def __init__(self, redis: aioredis.Redis, url: str, *, prefix: str, writer: str | None = None,
                 lock_seconds: float = 30.0, max_batches: int = 200, timeout: float = 2.0) -> None:
        base = f"{prefix}:usage:{{journal}}"
        self.writer = writer or uuid.uuid4().hex[:12]
        self._redis = redis
        self._open_prefix, self._sealed_prefix = f"{base}:open:", f"{base}:sealed:"
        self._writers, self._epoch, self._generation = f"{base}:writers", f"{base}:epoch", f"{base}:generation"
        self._sealed_set, self._lock = f"{base}:sealed", f"{base}:mover"
        self._lock_ms = int(lock_seconds * 1000)
        self._max_batches = max_batches
        self._pipe = RedisPipe(url, [_APPEND], timeout=timeout)  # the hot path's appends (see redis_pipe.py)
        self._seal = redis.register_script(_SEAL)
        self._unlock = redis.register_script(_UNLOCK)

    def batch_id(self, generation: Generation) -> str:
        """The id of the batch holding this writer's part of ``generation``."""
        return f"{generation[0]}-{generation[1]}-{self.writer}"

    def append(self, batch: dict[UsageKey, UsageCounts]) -> asyncio.Future[Generation | None]:
        """Add a batch to this writer's open hash, all of it or nothing; the future gives the generation it landed
        in (None for an empty batch). No coroutine: the hot path only writes and gets a callback."""
        increments = encode(batch)
        if not increments:
            done: asyncio.Future[Generation | None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        args: list[str | int] = [self.writer, new_epoch()]
        for name, value in increments.items():
            args += [name, value]
        reply = self._pipe.call(_APPEND_SHA, [self._open_prefix + self.writer, self._writers, self._epoch,
                                              self._generation], args)
        return _map(reply, _generation)

    async def epoch(self) -> str | None:
        """The journal's epoch now (None: Redis has no journal, e.g. it just lost its data)."""
        value = await self._redis.get(self._epoch)
        return None if value is None else _text(value)

    async def move(self, write: BatchWriter) -> int:
        """Seal the open hashes and write every sealed batch (see the module docstring); returns the rows written.
        Another process moving at the same time: returns 0 at once. A failed write is raised; the batches not
        written stay sealed for the next move."""
        token = uuid.uuid4().hex
        if not await self._redis.set(self._lock, token, nx=True, px=self._lock_ms):
            return 0
        try:
            await self._seal(keys=[self._writers, self._epoch, self._generation, self._sealed_set],
                             args=[self._open_prefix, self._sealed_prefix, new_epoch()])
            written = 0
            ids = sorted(_text(i) for i in await self._redis.smembers(self._sealed_set))
            for sealed in ids[:self._max_batches]:
                key = self._sealed_prefix + sealed
                batch = decode(await self._redis.hgetall(key))
                if batch:
                    written += await write(batch, sealed)
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.delete(key)
                    pipe.srem(self._sealed_set, sealed)
                    await pipe.execute()
            return written
        finally:
            await self._unlock(keys=[self._lock], args=[token])

    def close(self) -> None:
        """Close the hot path's connection (the redis-py client is its owner's)."""
        self._pipe.close()

    async def backlog(self) -> int:
        """Sealed batches waiting for the database (an operator's signal that it has been down)."""
        return int(await self._redis.scard(self._sealed_set))
