"""Gateway hot path against a real redis-server: RPM/TPM/quota scripts and the key cache with pub/sub eviction."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from aigc_admin.gateway.keys import (
    ChannelSnapshot,
    KeyCache,
    hash_key,
    invalidation_channel,
    key_prefix,
    looks_like_key,
    new_key,
    publish_invalidation,
)
from aigc_admin.gateway.limits import Limiter, QuotaNotSeeded
from tests.support.redis_server import RedisServer


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_server.url)
    yield c
    await c.aclose()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def limiter(client: aioredis.Redis, prefix: str) -> Limiter:
    return Limiter(client, prefix=prefix)


async def fresh_window(client: aioredis.Redis) -> None:
    """Wait out the last seconds of a minute, so that a test's admissions all fall in one fixed window."""
    seconds, _ = await client.time()
    if seconds % 60 >= 55:
        await asyncio.sleep(60 - seconds % 60 + 0.1)


async def window_field(client: aioredis.Redis, key: str, field: str) -> int:
    raw = await client.hget(key, field)
    assert raw is not None
    return int(raw)


def snapshot(channel_id: int = 1, **kw: object) -> ChannelSnapshot:
    values: dict[str, object] = {"id": channel_id, "tenant_id": 1, "enabled": True, "expires_at": None,
                                 "allowed_models": frozenset({"m"}), "quota": None, "rpm": None, "tpm": None}
    values.update(kw)
    return ChannelSnapshot(**values)  # type: ignore[arg-type]


# --- keys ----------------------------------------------------------------------------------------
def test_keys_shape_hash_and_prefix() -> None:
    keys = {new_key() for _ in range(200)}
    assert len(keys) == 200
    for key in keys:
        assert looks_like_key(key) and len(key) == 51 and key.startswith("sk-")
    key = next(iter(keys))
    assert key_prefix(key) == key[:7] and key_prefix(key).startswith("sk-")
    digest = hash_key(key, "pepper")
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert digest == hash_key(key, "pepper") != hash_key(key, "other pepper")
    assert not looks_like_key("sk-short") and not looks_like_key("sk-" + "!" * 48) and not looks_like_key("x" * 51)
    with pytest.raises(ValueError, match="pepper"):
        hash_key(key, "")


def test_snapshot_usable_and_allow_list() -> None:
    now = datetime.now(UTC)
    assert snapshot().usable(now)
    assert not snapshot(enabled=False).usable(now)
    assert not snapshot(expires_at=now - timedelta(seconds=1)).usable(now)
    assert snapshot(expires_at=now + timedelta(hours=1)).usable(now)
    assert snapshot().allows("m") and not snapshot().allows("other")
    assert not snapshot(allowed_models=frozenset()).allows("m")


# --- limits --------------------------------------------------------------------------------------
async def test_rpm_allows_n_then_refuses_with_retry_after(limiter: Limiter, client: aioredis.Redis) -> None:
    await fresh_window(client)
    decisions = [await limiter.admit(1, rpm=5, tpm=None, quota=None, estimated_tokens=10) for _ in range(5)]
    assert all(d.allowed and d.reason is None and d.reserved == 10 for d in decisions)
    refused = await limiter.admit(1, rpm=5, tpm=None, quota=None, estimated_tokens=10)
    assert not refused.allowed and refused.reason == "rpm"
    assert 1 <= refused.retry_after <= 60
    assert refused.reserved == 0
    # a refusal counts for nothing, and other channels have their own window
    assert await window_field(client, limiter.window_key(1), "r") == 5
    assert (await limiter.admit(2, rpm=5, tpm=None, quota=None, estimated_tokens=10)).allowed
    # rpm=0 refuses everything
    assert (await limiter.admit(3, rpm=0, tpm=None, quota=None, estimated_tokens=0)).reason == "rpm"


async def test_tpm_counts_reserved_tokens_and_settle_refunds(limiter: Limiter, client: aioredis.Redis) -> None:
    await fresh_window(client)
    a = await limiter.admit(1, rpm=None, tpm=100, quota=None, estimated_tokens=40)
    b = await limiter.admit(1, rpm=None, tpm=100, quota=None, estimated_tokens=40)
    assert a.allowed and b.allowed
    refused = await limiter.admit(1, rpm=None, tpm=100, quota=None, estimated_tokens=40)
    assert not refused.allowed and refused.reason == "tpm" and 1 <= refused.retry_after <= 60
    # the first request used only 10 of its 40: 30 come back to the window
    await limiter.settle(1, reserved=40, actual_tokens=10, window=a.window)
    assert await window_field(client, limiter.window_key(1), "t") == 50
    assert (await limiter.admit(1, rpm=None, tpm=100, quota=None, estimated_tokens=40)).allowed  # 90
    assert (await limiter.admit(1, rpm=None, tpm=100, quota=None, estimated_tokens=20)).reason == "tpm"
    # a refund of a reservation made in an earlier window does not touch this window
    await limiter.settle(1, reserved=40, actual_tokens=0, window=(a.window or 0) - 1)
    assert await window_field(client, limiter.window_key(1), "t") == 90
    # ... but an excess is charged to the current window
    await limiter.settle(1, reserved=40, actual_tokens=45, window=(a.window or 0) - 1)
    assert await window_field(client, limiter.window_key(1), "t") == 95


async def test_quota_never_overspent_under_concurrency(redis_server: RedisServer, prefix: str) -> None:
    # two clients and two limiters: two gateway processes admitting against one channel at once
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    try:
        limiters = [Limiter(c, prefix=prefix) for c in clients]
        assert await limiters[0].set_quota_used(7, 0)
        decisions = await asyncio.gather(*(
            limiters[i % 2].admit(7, rpm=None, tpm=None, quota=500, estimated_tokens=10) for i in range(200)))
        allowed = [d for d in decisions if d.allowed]
        assert len(allowed) == 50
        assert {d.reason for d in decisions if not d.allowed} == {"quota"}
        assert all(d.retry_after == 0 for d in decisions if not d.allowed)
        assert await limiters[1].quota_used(7) == 500
        # half of them used only 4 tokens: 25 * 6 = 150 come back, enough for exactly 15 more
        await asyncio.gather(*(limiters[i % 2].settle(7, reserved=10, actual_tokens=4) for i in range(25)))
        assert await limiters[0].quota_used(7) == 350
        more = await asyncio.gather(*(
            limiters[i % 2].admit(7, rpm=None, tpm=None, quota=500, estimated_tokens=10) for i in range(100)))
        assert sum(d.allowed for d in more) == 15
        assert await limiters[0].quota_used(7) == 500
    finally:
        for conn in clients:
            await conn.aclose()


async def test_settle_refund_and_overrun(limiter: Limiter) -> None:
    await limiter.set_quota_used(1, 0)
    first = await limiter.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=60)
    assert first.allowed
    assert (await limiter.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=60)).reason == "quota"
    assert await limiter.settle(1, reserved=60, actual_tokens=20, window=first.window) == 20
    second = await limiter.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=60)
    assert second.allowed and await limiter.quota_used(1) == 80
    # an answer longer than its reservation is recorded as it is: used may pass the quota, then all is refused
    assert await limiter.settle(1, reserved=60, actual_tokens=90, window=second.window) == 110
    assert (await limiter.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=0)).reason == "quota"
    # equal actual and reserved: nothing to do, no round trip
    assert await limiter.settle(1, reserved=5, actual_tokens=5) is None
    # a refund never takes the counter below zero
    await limiter.set_quota_used(1, 3)
    assert await limiter.settle(1, reserved=50, actual_tokens=0) == 0


async def script_runs(client: aioredis.Redis) -> int:
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


async def test_calls_of_one_loop_tick_share_one_script_run(limiter: Limiter, client: aioredis.Redis) -> None:
    await fresh_window(client)
    await limiter.set_quota_used(9, 0)
    await limiter.admit(9, rpm=None, tpm=None, quota=1000, estimated_tokens=0)  # loads the script
    before = await script_runs(client)
    decisions = await asyncio.gather(*(
        limiter.admit(9, rpm=40, tpm=None, quota=1000, estimated_tokens=10) for _ in range(50)))
    assert await script_runs(client) - before == 1
    # decided in call order, each seeing the ones before it: exactly the first 40 (rpm) got through
    assert [d.allowed for d in decisions] == [True] * 39 + [False] * 11  # the warm-up was request 1 of 40
    assert {d.reason for d in decisions[39:]} == {"rpm"}
    assert await limiter.quota_used(9) == 390


async def test_settle_soon_rides_with_the_next_admission_or_goes_on_its_own(client: aioredis.Redis,
                                                                           prefix: str) -> None:
    await fresh_window(client)
    limiter = Limiter(client, prefix=prefix, settle_delay=0.3)
    await limiter.set_quota_used(3, 0)
    first = await limiter.admit(3, rpm=None, tpm=None, quota=1000, estimated_tokens=100)
    before = await script_runs(client)
    limiter.settle_soon(3, reserved=100, actual_tokens=30, window=first.window)
    assert await limiter.quota_used(3) == 100  # not sent yet
    second = await limiter.admit(3, rpm=None, tpm=None, quota=1000, estimated_tokens=10)
    assert await script_runs(client) - before == 1  # the refund travelled with the admission
    assert await limiter.quota_used(3) == 40
    assert await window_field(client, limiter.window_key(3), "t") == 40
    limiter.settle_soon(3, reserved=10, actual_tokens=0, window=second.window)
    for _ in range(30):  # no admission comes: sent on its own after settle_delay
        await asyncio.sleep(0.05)
        if await limiter.quota_used(3) == 30:
            break
    assert await limiter.quota_used(3) == 30
    limiter.settle_soon(3, reserved=30, actual_tokens=0)
    await limiter.aclose()  # at shutdown what is pending is sent at once
    assert await limiter.quota_used(3) == 0


async def test_a_dead_redis_fails_every_waiter_of_the_batch(redis_server: RedisServer, prefix: str) -> None:
    dead = aioredis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)
    limiter = Limiter(dead, prefix=prefix)
    results = await asyncio.gather(*(limiter.admit(1, rpm=None, tpm=None, quota=None, estimated_tokens=1)
                                     for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, ConnectionError | OSError) or "connect" in str(r).lower() for r in results)
    limiter.settle_soon(1, reserved=5, actual_tokens=1)
    await limiter.aclose()  # logged, not raised: a settlement lost with Redis cannot be waited for
    await dead.aclose()


async def test_quota_counter_is_seeded_once_from_the_seeder(client: aioredis.Redis, prefix: str) -> None:
    unseeded = Limiter(client, prefix=prefix)
    with pytest.raises(QuotaNotSeeded):
        await unseeded.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=10)
    # unlimited: admitted, and the counter is not created behind the seeder's back
    assert (await unseeded.admit(2, rpm=None, tpm=None, quota=None, estimated_tokens=10)).allowed
    assert await unseeded.quota_used(2) is None
    # a refused admission changed nothing, not even the rpm window
    assert await client.exists(unseeded.window_key(1)) == 0

    calls: list[int] = []

    async def seeder(channel_id: int) -> int:
        calls.append(channel_id)
        return 95  # what the DB says was used

    seeded = Limiter(client, prefix=prefix, seeder=seeder)
    assert (await seeded.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=10)).reason == "quota"
    assert (await seeded.admit(1, rpm=None, tpm=None, quota=100, estimated_tokens=5)).allowed
    assert calls == [1]
    assert await seeded.quota_used(1) == 100
    # seeding at start-up never overwrites a running counter; an explicit reset does
    assert not await seeded.set_quota_used(1, 0, only_if_missing=True)
    assert await seeded.quota_used(1) == 100
    assert await seeded.set_quota_used(1, 0)
    assert await seeded.quota_used(1) == 0
    await seeded.forget(1)
    assert await seeded.quota_used(1) is None


async def test_admit_channel_uses_the_snapshot_limits(limiter: Limiter, client: aioredis.Redis) -> None:
    await fresh_window(client)
    channel = snapshot(9, rpm=1, quota=None)
    assert (await limiter.admit_channel(channel, 10)).allowed
    assert (await limiter.admit_channel(channel, 10)).reason == "rpm"


# --- key cache -----------------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingLoader:
    def __init__(self, value: ChannelSnapshot | None, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls: list[str] = []

    async def __call__(self, key_hash: str) -> ChannelSnapshot | None:
        self.calls.append(key_hash)
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value


async def test_concurrent_misses_call_the_loader_once() -> None:
    loader = CountingLoader(snapshot(), delay=0.05)
    cache = KeyCache(loader)
    results = await asyncio.gather(*(cache.get("h1") for _ in range(100)))
    assert loader.calls == ["h1"]
    assert all(r is loader.value for r in results)
    assert await cache.get("h1") is loader.value
    assert loader.calls == ["h1"] and cache.hits == 1


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    loader = CountingLoader(snapshot(), delay=0.05)
    cache = KeyCache(loader)
    first = asyncio.create_task(cache.get("h"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(cache.get("h"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second is loader.value
    assert "h" in cache and loader.calls == ["h"]


async def test_negative_caching_and_ttl() -> None:
    clock = FakeClock()
    loader = CountingLoader(None)
    cache = KeyCache(loader, ttl=60, negative_ttl=5, clock=clock)
    assert await cache.get("unknown") is None
    assert await cache.get("unknown") is None
    assert len(loader.calls) == 1
    clock.now += 5.1
    assert await cache.get("unknown") is None
    assert len(loader.calls) == 2

    loader.value = snapshot()
    known = KeyCache(loader, ttl=60, negative_ttl=5, clock=clock)
    await known.get("k")
    clock.now += 59
    await known.get("k")
    assert loader.calls.count("k") == 1
    clock.now += 1.5
    await known.get("k")
    assert loader.calls.count("k") == 2


async def test_loader_errors_reach_every_waiter_and_are_not_cached() -> None:
    calls = 0

    async def flaky(key_hash: str) -> ChannelSnapshot | None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        if calls == 1:
            raise ConnectionError("db down")
        return snapshot()

    cache = KeyCache(flaky)
    results = await asyncio.gather(*(cache.get("h") for _ in range(10)), return_exceptions=True)
    assert calls == 1 and all(isinstance(r, ConnectionError) for r in results)
    assert await cache.get("h") == snapshot()
    assert calls == 2


async def test_lru_evicts_the_least_recently_used() -> None:
    loader = CountingLoader(snapshot())
    cache = KeyCache(loader, max_entries=2)
    await cache.get("a")
    await cache.get("b")
    await cache.get("a")  # a is now the most recent
    await cache.get("c")  # evicts b
    assert "a" in cache and "c" in cache and "b" not in cache and len(cache) == 2


async def test_invalidation_overtaking_a_load_keeps_its_result_out() -> None:
    loader = CountingLoader(snapshot(), delay=0.05)
    cache = KeyCache(loader)
    pending = asyncio.create_task(cache.get("h"))
    await asyncio.sleep(0.01)
    cache.invalidate("h")  # the channel changed while the old row was being read
    assert await pending == snapshot()
    assert "h" not in cache
    await cache.get("h")
    assert len(loader.calls) == 2


async def wait_until(predicate: object, timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not predicate():  # type: ignore[operator]
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


async def test_pubsub_invalidation_evicts_in_every_process(redis_server: RedisServer, prefix: str) -> None:
    channel = invalidation_channel(prefix)
    clients = [aioredis.Redis.from_url(redis_server.url, client_name=f"{prefix}-{i}") for i in range(3)]
    loaders = [CountingLoader(snapshot(rpm=10)), CountingLoader(snapshot(rpm=10))]
    caches = [KeyCache(loaders[0]), KeyCache(loaders[1])]  # two processes
    tasks = [asyncio.create_task(c.run_invalidation_listener(clients[i], channel)) for i, c in enumerate(caches)]
    try:
        await asyncio.wait_for(asyncio.gather(*(c.listening.wait() for c in caches)), 5)
        for c in caches:
            await c.get("h")
            await c.get("other")
            assert "h" in c
        # the admin process (its own connection) rotates the key: every cache evicts it within milliseconds
        for loader in loaders:
            loader.value = snapshot(rpm=20)
        assert await publish_invalidation(clients[2], channel, "h") == 2
        elapsed = await wait_until(lambda: all("h" not in c for c in caches), timeout=1.0)
        assert elapsed < 1.0
        assert all("other" in c for c in caches)
        assert [(await c.get("h")).rpm for c in caches] == [20, 20]  # type: ignore[union-attr]

        # None evicts everything
        await publish_invalidation(clients[2], channel, None)
        await wait_until(lambda: all(len(c) == 0 for c in caches), timeout=1.0)

        # the listener survives a dropped connection, and drops the cache on resubscribing (messages were lost)
        await caches[0].get("h")
        listing = await clients[2].client_list()
        victims = [c["id"] for c in listing if c.get("name") == f"{prefix}-0" and int(c.get("sub", 0)) > 0]
        assert victims
        for victim in victims:
            await clients[2].client_kill_filter(_id=victim)
        await wait_until(lambda: "h" not in caches[0], timeout=5.0)
        await asyncio.wait_for(caches[0].listening.wait(), 5)
        await caches[0].get("h")
        await wait_until(lambda: "h" in caches[0])
        await publish_invalidation(clients[2], channel, "h")
        await wait_until(lambda: "h" not in caches[0], timeout=1.0)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in clients:
            await conn.aclose()


async def test_leases_serve_admissions_locally_and_are_given_back(client: aioredis.Redis, prefix: str) -> None:
    await fresh_window(client)
    limiter = Limiter(client, prefix=prefix, leases=True, lease_idle=0.2)
    await limiter.set_quota_used(5, 0)
    await limiter.admit(5, rpm=1000, tpm=None, quota=100_000, estimated_tokens=0)  # loads the script
    before = await script_runs(client)
    decisions = [await limiter.admit(5, rpm=1000, tpm=None, quota=100_000, estimated_tokens=10)
                 for _ in range(200)]
    assert all(d.allowed and d.reserved == 10 for d in decisions)
    runs = await script_runs(client) - before
    assert runs < 20  # leases of 1, 2, 4 … 64 requests: most admissions never reached Redis
    # Redis counted the leases: at least what was admitted, and never more than the limits allow
    assert await window_field(client, limiter.window_key(5), "r") >= 201
    assert await limiter.quota_used(5) >= 2000
    for _ in range(40):  # idle: the rest of the lease goes back
        await asyncio.sleep(0.05)
        if await limiter.quota_used(5) == 2000:
            break
    assert await limiter.quota_used(5) == 2000
    assert await window_field(client, limiter.window_key(5), "r") == 201
    # other limits (the channel was updated): the lease is not used, and goes back before the admission
    await limiter.admit(5, rpm=1000, tpm=None, quota=100_000, estimated_tokens=10)
    before = await script_runs(client)
    assert (await limiter.admit(5, rpm=500, tpm=None, quota=100_000, estimated_tokens=10)).allowed
    assert await script_runs(client) - before == 1
    await limiter.aclose()
    assert await limiter.quota_used(5) == 2020
    assert await window_field(client, limiter.window_key(5), "r") == 203


async def test_leases_never_overspend_a_quota_shared_by_two_processes(redis_server: RedisServer,
                                                                     prefix: str) -> None:
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    try:
        limiters = [Limiter(c, prefix=prefix, leases=True, lease_idle=0.2) for c in clients]
        await limiters[0].set_quota_used(8, 0)
        allowed = 0
        for i in range(200):  # the two processes take turns
            allowed += (await limiters[i % 2].admit(8, rpm=None, tpm=None, quota=500, estimated_tokens=10)).allowed
        assert allowed <= 50  # a lease is a reservation: the quota is never overspent
        assert allowed >= 40  # ...and what one process holds does not starve the other for long
        for limiter in limiters:
            await limiter.aclose()
        assert await limiters[0].quota_used(8) == 10 * allowed  # every unused leased token came back
    finally:
        for conn in clients:
            await conn.aclose()
