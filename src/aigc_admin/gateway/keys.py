"""Channel keys: generation, peppered hashing, and the per-process cache that authenticates them.

A channel key is ``sk-`` followed by 48 characters of ``[A-Za-z0-9]`` (about 286 bits of entropy). The
database keeps only ``hash_key(key, pepper)`` (HMAC-SHA256 with a server secret, so a stolen table cannot
be checked offline without the pepper) and ``key_prefix(key)`` (``sk-AbCd``), which the UI shows.

Hot path. The gateway authenticates a request with ``KeyCache.get(hash_key(bearer, pepper))``. On a hit
(the steady state) this is a dict lookup: **no database read and no Redis round trip**. The loader, which
reads the database, runs only on a miss: the first request for a key in a process, after the TTL (a
safety net, 60 s by default), or after an invalidation. Concurrent misses for one key share one loader
call (single flight), and unknown keys are cached as ``None`` for a few seconds so that repeating a
wrong key costs nothing. Garbage that is not even shaped like a key should be refused with
``looks_like_key`` before hashing, so it never reaches the loader either.

Freshness. Whoever updates, rotates, disables or deletes a channel calls ``publish_invalidation``
(after the DB commit) with the old key hash; every process runs ``KeyCache.run_invalidation_listener``
and evicts the entry as soon as the message arrives (a Redis pub/sub hop, milliseconds). When the
listener loses Redis it keeps retrying, and on every (re)subscription it drops the whole cache, since
messages published while it was away are lost; during such an outage an entry can be stale for at
most the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import string
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from aigc_admin.domain.channels.service import ChannelSnapshot

log = logging.getLogger(__name__)

KEY_SCHEME = "sk-"
KEY_BODY_LENGTH = 48
KEY_ALPHABET = string.ascii_letters + string.digits
KEY_LENGTH = len(KEY_SCHEME) + KEY_BODY_LENGTH
PREFIX_LENGTH = 7
INVALIDATE_ALL = "*"  # message body that drops every entry (key hashes are hex, so it never collides)
_ALPHABET_SET = frozenset(KEY_ALPHABET)


def new_key() -> str:
    """A fresh channel key: ``sk-`` + 48 characters from ``secrets`` over ``[A-Za-z0-9]``."""
    return KEY_SCHEME + "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_BODY_LENGTH))


def looks_like_key(key: str) -> bool:
    """Whether ``key`` has the shape of a channel key (checked before hashing, to refuse garbage cheaply)."""
    return (len(key) == KEY_LENGTH and key.startswith(KEY_SCHEME)
            and all(c in _ALPHABET_SET for c in key[len(KEY_SCHEME):]))


def hash_key(key: str, pepper: str) -> str:
    """HMAC-SHA256 of the key under the server's pepper, as 64 hex characters (what the DB stores)."""
    if not pepper:
        raise ValueError("hash_key needs a non-empty pepper (the server secret)")
    return hmac.new(pepper.encode(), key.encode(), hashlib.sha256).hexdigest()


def key_prefix(key: str) -> str:
    """The visible part of a key, e.g. ``sk-AbCd`` (first 7 characters)."""
    return key[:PREFIX_LENGTH]


SnapshotLoader = Callable[[str], Awaitable[ChannelSnapshot | None]]


class _Flight:
    """One in-progress loader call; ``stale`` is set when an invalidation overtakes it."""

    __slots__ = ("stale", "task")

    def __init__(self) -> None:
        self.stale = False
        self.task: asyncio.Task[ChannelSnapshot | None] | None = None


def _consume(task: asyncio.Task[Any]) -> None:
    # the waiters get the exception; this only keeps asyncio from warning when all of them went away
    if not task.cancelled():
        task.exception()


class KeyCache:
    """In-process LRU from key hash to ``ChannelSnapshot`` (or ``None`` for an unknown key).

    ``ttl`` bounds how long a positive entry lives even without an invalidation; ``negative_ttl`` how
    long an unknown key stays known-unknown. ``loader`` is called on a miss, once per key however many
    requests miss at the same time; if it raises, every waiter gets the exception and nothing is cached.
    """

    def __init__(self, loader: SnapshotLoader, *, max_entries: int = 10_000, ttl: float = 60.0,
                 negative_ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._loader = loader
        self._max = max_entries
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, ChannelSnapshot | None]] = OrderedDict()
        self._inflight: dict[str, _Flight] = {}
        self._listening = asyncio.Event()
        self.hits = 0
        self.loads = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key_hash: object) -> bool:
        if not isinstance(key_hash, str):
            return False
        entry = self._entries.get(key_hash)
        return entry is not None and entry[0] > self._clock()

    @property
    def listening(self) -> asyncio.Event:
        """Set while the invalidation listener is subscribed (cleared while it reconnects)."""
        return self._listening

    async def get(self, key_hash: str) -> ChannelSnapshot | None:
        """The snapshot for ``key_hash``; ``None`` when no channel has that key."""
        entry = self._entries.get(key_hash)
        if entry is not None:
            if entry[0] > self._clock():
                self._entries.move_to_end(key_hash)
                self.hits += 1
                return entry[1]
            del self._entries[key_hash]
        flight = self._inflight.get(key_hash)
        if flight is None:
            flight = _Flight()
            flight.task = asyncio.create_task(self._load(key_hash, flight), name="key-cache-load")
            flight.task.add_done_callback(_consume)
            self._inflight[key_hash] = flight
        assert flight.task is not None
        # shield: a cancelled request (client went away) must not cancel the load others wait for
        return await asyncio.shield(flight.task)

    async def _load(self, key_hash: str, flight: _Flight) -> ChannelSnapshot | None:
        self.loads += 1
        try:
            value = await self._loader(key_hash)
        finally:
            if self._inflight.get(key_hash) is flight:
                del self._inflight[key_hash]
        if not flight.stale:
            self._store(key_hash, value)
        return value

    def _store(self, key_hash: str, value: ChannelSnapshot | None) -> None:
        ttl = self._ttl if value is not None else self._negative_ttl
        if ttl <= 0:
            return
        self._entries[key_hash] = (self._clock() + ttl, value)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def invalidate(self, key_hash: str | None = None) -> None:
        """Evict one key hash, or everything when ``None``; a load in flight for it is not cached."""
        if key_hash is None:
            self._entries.clear()
            for flight in self._inflight.values():
                flight.stale = True
            self._inflight.clear()
            return
        self._entries.pop(key_hash, None)
        overtaken = self._inflight.pop(key_hash, None)
        if overtaken is not None:
            overtaken.stale = True

    async def run_invalidation_listener(self, redis_client: aioredis.Redis, channel_name: str, *,
                                        reconnect_delay: float = 0.5) -> None:
        """Evict entries named on ``channel_name`` until cancelled (run it as a task, one per process).

        On every (re)subscription the whole cache is dropped: messages sent while unsubscribed are lost.
        """
        while True:
            pubsub = redis_client.pubsub()
            try:
                await pubsub.subscribe(channel_name)
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=False, timeout=1.0)
                    if msg is None:
                        continue
                    kind = _text(msg.get("type"))
                    if kind == "subscribe":
                        self.invalidate(None)
                        self._listening.set()
                    elif kind == "message":
                        body = _text(msg.get("data"))
                        self.invalidate(None if body == INVALIDATE_ALL else body)
            except (RedisConnectionError, RedisTimeoutError, OSError) as e:
                log.warning("key cache invalidation listener lost Redis (%s); reconnecting", e)
            finally:
                self._listening.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(reconnect_delay)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def invalidation_channel(prefix: str) -> str:
    """The pub/sub channel that carries key invalidations for one deployment (Redis prefix)."""
    return f"{prefix}:gateway:keys:invalidate"


async def publish_invalidation(redis: aioredis.Redis, channel: str, key_hash: str | None) -> int:
    """Tell every process to evict ``key_hash`` (``None``: everything); returns how many listeners heard it.

    Call it after the change is committed to the database, with the hash the cache knows (the old one
    on a rotation), or a process might reload the old row before the commit and keep it for a TTL.
    """
    return int(await redis.publish(channel, INVALIDATE_ALL if key_hash is None else key_hash))
