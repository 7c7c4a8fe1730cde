"""The channel service's key ports: minting/hashing keys and evicting them from every gateway's cache."""

from __future__ import annotations

import redis.asyncio as aioredis

from aigc_admin.gateway.keys import hash_key, invalidation_channel, key_prefix, new_key, publish_invalidation


class ChannelKeys:
    def __init__(self, pepper: str) -> None:
        self._pepper = pepper

    def new(self) -> str:
        return new_key()

    def hash(self, key: str) -> str:
        return hash_key(key, self._pepper)

    def prefix(self, key: str) -> str:
        return key_prefix(key)


class KeyCacheEvictor:
    """Publishes an invalidation: every process's KeyCache drops the entry at once."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self._redis = redis
        self._channel = invalidation_channel(prefix)

    async def invalidate(self, key_hash: str) -> None:
        await publish_invalidation(self._redis, self._channel, key_hash)
