"""The usage journal: usage put in Redis before its answer goes out, moved to the database exactly once.

Why: an API process aggregates usage in memory and writes it in batches (``usage.py``); killed with SIGKILL it
would take up to a flush interval of answered requests' usage with it. With the journal, the requests settled in
one event-loop tick are added to one Redis hash shared by every process (``…:usage:{journal}:open``; a MULTI of
HINCRBYs, one round trip per tick) and the gateway sends an answer only once its usage is there.

Moving the journal to the database (``move``), by one process at a time (a lock with a TTL: when the process
holding it dies, another takes over):

1. seal: the open hash is renamed ``…:sealed:<batch id>`` and the id added to the set of sealed batches, in one
   script run (appends after that start a new open hash);
2. each sealed batch is written in ONE database transaction together with a ``usage_batches`` row of its id; a
   batch whose id is already there was written by a mover that died before step 3, and is not written again;
3. the sealed hash and its id are deleted.

So every journaled request is counted once, whichever process dies when. A batch that cannot be written (the
database is down) stays sealed in Redis and is written by a later move: the bound is Redis's memory. What the
journal cannot survive is Redis losing its data (a restart without persistence): then the usage of the last
``gateway.usage.flush`` seconds not yet moved is gone; Redis with ``appendonly yes`` loses none.

Field names: ``<channel id>|<UTC day>|<r, p or c>|<model>`` (requests, prompt and completion tokens; the model
last, as it may hold ``|``).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from datetime import date

import redis.asyncio as aioredis

from aigc_admin.domain.channels.service import UsageCounts, UsageKey

log = logging.getLogger("aigc_admin.gateway.usage")

BatchWriter = Callable[[dict[UsageKey, UsageCounts], str], Awaitable[int]]

# KEYS: open, sealed hash, sealed set; ARGV: batch id. Returns 1 when something was sealed.
_SEAL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('SADD', KEYS[3], ARGV[1])
return 1
"""
# KEYS: lock; ARGV: token. Deletes the lock only if it is still ours.
_UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


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
    """The Redis side of the journal: ``append`` (the hot path, once per tick) and ``move`` (periodically)."""

    def __init__(self, redis: aioredis.Redis, *, prefix: str, lock_seconds: float = 30.0,
                 max_batches: int = 50) -> None:
        base = f"{prefix}:usage:{{journal}}"  # one hash tag: the script's keys share a cluster slot
        self._redis = redis
        self._open, self._sealed_set, self._lock = f"{base}:open", f"{base}:sealed", f"{base}:mover"
        self._sealed_prefix = f"{base}:sealed:"
        self._lock_ms = int(lock_seconds * 1000)
        self._max_batches = max_batches
        self._seal = redis.register_script(_SEAL)
        self._unlock = redis.register_script(_UNLOCK)

    async def append(self, batch: dict[UsageKey, UsageCounts]) -> None:
        """Add a batch to the open hash, all of it or nothing (MULTI/EXEC)."""
        increments = encode(batch)
        if not increments:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for name, value in increments.items():
                pipe.hincrby(self._open, name, value)
            await pipe.execute()

    async def move(self, write: BatchWriter) -> int:
        """Seal the open hash and write every sealed batch (see the module docstring); returns the rows written.
        Another process moving at the same time: returns 0 at once. A failed write is raised; the batches
        not written stay sealed for the next move."""
        token = uuid.uuid4().hex
        if not await self._redis.set(self._lock, token, nx=True, px=self._lock_ms):
            return 0
        try:
            batch_id = uuid.uuid4().hex
            await self._seal(keys=[self._open, self._sealed_prefix + batch_id, self._sealed_set], args=[batch_id])
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

    async def backlog(self) -> int:
        """Sealed batches waiting for the database (an operator's signal that it has been down)."""
        return int(await self._redis.scard(self._sealed_set))
