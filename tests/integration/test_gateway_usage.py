"""UsageRecorder against SQLite and a throwaway MariaDB database: batched upserts, shutdown flush, retries."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from aigc_admin.adapters.db import close_db, init_db, migrate
from aigc_admin.adapters.db.channels import ChannelRepo, UsageStore
from aigc_admin.adapters.db.models import ChannelUsage, ChatChannel, LLMModel, Tenant
from aigc_admin.domain.channels.service import UsageCounts
from aigc_admin.gateway.keys import hash_key, new_key
from aigc_admin.gateway.usage import UsageRecorder
from aigc_admin.gateway.usage_journal import UsageJournal, decode, encode
from aigc_admin.settings import load_settings
from tests.support.redis_server import RedisServer

MODELS = ("model-a", "model-b")


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
async def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """One Tortoise init for the module (per backend); no other DB fixture may overlap it."""
    settings = load_settings({"server.storage.path": str(tmp_path_factory.mktemp("usage"))}, environ={})
    url = str(request.getfixturevalue("mysql_database")) if request.param == "mysql" else None
    await migrate(settings, db_url=url)
    await init_db(settings, db_url=url)
    try:
        yield str(request.param)
    finally:
        await close_db()


async def make_channels(n: int) -> list[ChatChannel]:
    tag = uuid.uuid4().hex[:10]
    tenant = await Tenant.create(name=f"t-{tag}", code=f"t-{tag}", public_tenant_id=f"p-{tag}")
    return [await ChatChannel.create(name=f"c-{tag}-{i}", api_key_hash=uuid.uuid4().hex, tenant=tenant)
            for i in range(n)]


async def stored(channel_ids: list[int]) -> dict[tuple[int, str, date], tuple[int, int, int]]:
    rows = await ChannelUsage.filter(channel_id__in=channel_ids)
    return {(r.channel_id, r.model_name, r.day): (r.requests, r.prompt_tokens, r.completion_tokens)  # type: ignore[attr-defined]
            for r in rows}


async def used_tokens(channel_ids: list[int]) -> dict[int, int]:
    rows = await ChatChannel.filter(id__in=channel_ids).values_list("id", "used_tokens")
    return {int(i): int(u) for i, u in rows}  # type: ignore[misc]


class Expected:
    """The same records, summed in the test: what the tables must say."""

    def __init__(self) -> None:
        self.rows: dict[tuple[int, str, date], list[int]] = {}
        self.used: Counter[int] = Counter()

    def record(self, recorder: UsageRecorder, channel_id: int, model: str, prompt: int, completion: int,
               day: date | None = None) -> None:
        recorder.record(channel_id, model, prompt, completion)
        key = (channel_id, model, day or datetime.now(UTC).date())
        row = self.rows.setdefault(key, [0, 0, 0])
        row[0] += 1
        row[1] += prompt
        row[2] += completion
        self.used[channel_id] += prompt + completion

    def table(self) -> dict[tuple[int, str, date], tuple[int, int, int]]:
        return {k: (v[0], v[1], v[2]) for k, v in self.rows.items()}


async def test_thousand_records_sum_exactly(db: str) -> None:
    channels = [c.id for c in await make_channels(3)]
    recorder = UsageRecorder(3600, UsageStore())
    expected = Expected()
    for i in range(1000):
        expected.record(recorder, channels[i % 3], MODELS[(i // 3) % 2], i % 97 + 1, i % 13)
    assert len(recorder.pending) == 6
    assert await recorder.flush() == 6
    assert recorder.pending == {}
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)
    assert sum(r[0] for r in (await stored(channels)).values()) == 1000
    # a second batch adds to the same rows (the upsert's update path)
    for i in range(30):
        expected.record(recorder, channels[i % 3], MODELS[i % 2], 5, 7)
    assert await recorder.flush() == 6
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)
    assert await recorder.flush() == 0  # nothing pending: no transaction at all


async def test_background_flush_and_aclose_flushes_the_remainder(db: str) -> None:
    channels = [c.id for c in await make_channels(2)]
    expected = Expected()
    recorder = UsageRecorder(0.05, UsageStore())
    recorder.start()
    expected.record(recorder, channels[0], "model-a", 10, 20)
    for _ in range(200):
        if await stored(channels):
            break
        await asyncio.sleep(0.02)
    assert await stored(channels) == expected.table()
    await recorder.aclose()

    # a long interval: only aclose writes these
    async with UsageRecorder(3600, UsageStore()) as late:
        for i in range(7):
            expected.record(late, channels[1], "model-b", i, 1)
    assert late.pending == {}
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)


async def test_failed_flush_keeps_the_aggregates_for_the_next(db: str, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    channels = [c.id for c in await make_channels(3)]
    store = UsageStore()
    recorder = UsageRecorder(3600, store)
    expected = Expected()
    for i in range(100):
        expected.record(recorder, channels[i % 3], MODELS[i % 2], 3, 4)

    # the write fails before touching the DB
    write = recorder._write
    failures = iter([True])

    async def failing_write(batch: Any) -> int:
        if next(failures, False):
            raise ConnectionError("database unreachable")
        return await write(batch)

    monkeypatch.setattr(recorder, "_write", failing_write)
    with caplog.at_level(logging.ERROR, logger="aigc_admin.gateway.usage"), pytest.raises(ConnectionError):
        await recorder.flush()
    assert "kept for the next flush" in caplog.text
    assert await stored(channels) == {}
    assert sum(a.requests for a in recorder.pending.values()) == 100
    for i in range(10):  # usage keeps arriving meanwhile
        expected.record(recorder, channels[i % 3], MODELS[i % 2], 1, 1)
    assert await recorder.flush() == 6
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)

    # the write fails half-way (usage rows written, used_tokens not yet): the one transaction rolls back
    upsert = store._upsert
    half = iter([True])

    async def upsert_then_fail(conn: Any, dialect: str, rows: Any) -> None:
        await upsert(conn, dialect, rows)
        if next(half, False):
            raise RuntimeError("connection lost mid-transaction")

    monkeypatch.setattr(store, "_upsert", upsert_then_fail)
    for i in range(9):
        expected.record(recorder, channels[i % 3], "model-a", 2, 2)
    with pytest.raises(RuntimeError):
        await recorder.flush()
    before = expected.table()
    for key in {(c, "model-a", datetime.now(UTC).date()) for c in channels}:
        row = before[key]
        before[key] = (row[0] - 3, row[1] - 6, row[2] - 6)
    assert await stored(channels) == before  # nothing of the failed flush is visible
    assert await recorder.flush() == 3
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)


async def test_aclose_logs_what_it_could_not_write(db: str, monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    channels = [c.id for c in await make_channels(1)]
    recorder = UsageRecorder(3600, UsageStore())
    recorder.record(channels[0], "model-a", 1, 2)

    async def down(batch: Any) -> int:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(recorder, "_write", down)
    with caplog.at_level(logging.ERROR, logger="aigc_admin.gateway.usage"):
        await recorder.aclose()
    assert f"usage NOT written at shutdown: channel={channels[0]} model=model-a" in caplog.text
    assert sum(a.requests for a in recorder.pending.values()) == 1  # still there for an explicit flush
    monkeypatch.undo()
    assert await recorder.flush() == 1
    assert await used_tokens(channels) == {channels[0]: 3}


async def test_usage_of_a_deleted_channel_is_logged_and_dropped(db: str, caplog: pytest.LogCaptureFixture) -> None:
    kept, gone = await make_channels(2)
    recorder = UsageRecorder(3600, UsageStore())
    recorder.record(kept.id, "model-a", 1, 1)
    recorder.record(gone.id, "model-a", 5, 5)
    await gone.delete()
    with caplog.at_level(logging.WARNING, logger="aigc_admin.gateway.usage"):
        assert await recorder.flush() == 1
    assert f"usage of deleted channel {gone.id} dropped" in caplog.text
    assert recorder.pending == {}
    assert await stored([kept.id, gone.id]) == {(kept.id, "model-a", datetime.now(UTC).date()): (1, 1, 1)}


async def test_aggregates_are_per_utc_day(db: str) -> None:
    channels = [c.id for c in await make_channels(1)]
    now = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    clock = [now]
    recorder = UsageRecorder(3600, UsageStore(), clock=lambda: clock[0])
    recorder.record(channels[0], "model-a", 1, 1)
    clock[0] = now + timedelta(seconds=2)
    recorder.record(channels[0], "model-a", 2, 2)
    assert await recorder.flush() == 2
    assert await stored(channels) == {(channels[0], "model-a", date(2026, 3, 1)): (1, 1, 1),
                                      (channels[0], "model-a", date(2026, 3, 2)): (1, 2, 2)}


async def test_load_channel_snapshot_reads_the_channel_and_its_models(db: str) -> None:
    tag = uuid.uuid4().hex[:8]
    tenant = await Tenant.create(name=f"t-{tag}", code=f"t-{tag}", public_tenant_id=f"p-{tag}")
    models = [await LLMModel.create(model_name=f"{name}-{tag}") for name in MODELS]
    key = new_key()
    expires = datetime(2030, 1, 1, tzinfo=UTC)
    channel = await ChatChannel.create(name=f"c-{tag}", api_key_hash=hash_key(key, "pepper"), tenant=tenant,
                                       quota=1000, rpm_limit=5, tpm_limit=None, expires_at=expires)
    await channel.models.add(*models)
    snap = await ChannelRepo().snapshot(hash_key(key, "pepper"))
    assert snap is not None
    assert (snap.id, snap.tenant_id, snap.enabled, snap.quota, snap.rpm, snap.tpm) == (
        channel.id, tenant.id, True, 1000, 5, None)
    assert snap.expires_at == expires
    assert snap.allowed_models == frozenset(m.model_name for m in models)
    assert await ChannelRepo().snapshot(hash_key(new_key(), "pepper")) is None


# --- the Redis journal (gateway/usage_journal.py) ---------------------------------------------------------------
@pytest.fixture
async def journal_redis(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        yield client
    finally:
        await client.aclose()


def journal(client: aioredis.Redis, prefix: str) -> UsageJournal:
    where = client.connection_pool.connection_kwargs
    return UsageJournal(client, f"redis://{where['host']}:{where['port']}/0", prefix=prefix, lock_seconds=5,
                        timeout=1.0)


async def test_journal_usage_of_several_processes_is_written_once(db: str, journal_redis: aioredis.Redis) -> None:
    """Two recorders (two processes) journal into one hash; the usage of one that dies without ever flushing
    (SIGKILL) is written by the other's move, exactly once."""
    channels = [c.id for c in await make_channels(2)]
    prefix = unique_prefix()
    expected = Expected()
    killed = UsageRecorder(3600, UsageStore(), journal=journal(journal_redis, prefix))
    survivor = UsageRecorder(3600, UsageStore(), journal=journal(journal_redis, prefix))
    for i in range(300):
        expected.record(killed if i % 2 else survivor, channels[i % 2], MODELS[i % 2], 5, i % 7)
    await killed.durable()  # what the gateway waits for before it answers
    await survivor.durable()
    assert killed.pending == {} and survivor.pending == {}  # all of it in Redis, none only in memory
    del killed  # dies: nothing of it is flushed
    assert await survivor.flush() == 2
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)
    assert await survivor.flush() == 0  # moved: the journal is empty
    assert await stored(channels) == expected.table()
    left = {k.decode() for k in await journal_redis.keys(f"{prefix}:usage:*")}
    assert left == {f"{prefix}:usage:{{journal}}:epoch", f"{prefix}:usage:{{journal}}:generation"}
    assert await survivor.flush() == 0 and survivor._parts == {}  # its own parts are known to be written


async def test_journal_batch_written_by_a_mover_that_died_is_not_written_again(
        db: str, journal_redis: aioredis.Redis) -> None:
    """The mover commits a batch and dies before deleting it from Redis: the next move finds the batch id in
    ``usage_batches`` and deletes the batch without counting it twice."""
    channels = [c.id for c in await make_channels(1)]
    prefix = unique_prefix()
    store = UsageStore()
    expected = Expected()
    recorder = UsageRecorder(3600, store, journal=journal(journal_redis, prefix))
    for _ in range(10):
        expected.record(recorder, channels[0], "model-a", 3, 4)
    await recorder.durable()

    async def write_then_die(batch: dict[Any, Any], batch_id: str) -> int:
        await store.write(batch, batch_id)
        raise ConnectionResetError("the mover died after COMMIT")

    with pytest.raises(ConnectionResetError):
        await journal(journal_redis, prefix).move(write_then_die)
    assert await journal(journal_redis, prefix).backlog() == 1  # still sealed in Redis
    assert await stored(channels) == expected.table()
    await journal_redis.delete(f"{prefix}:usage:{{journal}}:mover")  # the dead mover's lock expires
    assert await recorder.flush() == 0  # the sealed batch is recognised and dropped
    assert await journal(journal_redis, prefix).backlog() == 0
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)


async def test_journal_waits_in_redis_while_the_database_is_down(db: str, journal_redis: aioredis.Redis,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    channels = [c.id for c in await make_channels(1)]
    prefix = unique_prefix()
    store = UsageStore()
    recorder = UsageRecorder(3600, store, journal=journal(journal_redis, prefix))
    expected = Expected()
    write = store._write

    async def down(batch: Any, batch_id: Any) -> int:
        raise ConnectionError("database unreachable")

    monkeypatch.setattr(store, "_write", down)
    for round_ in range(3):  # three flushes fail: three sealed batches wait
        expected.record(recorder, channels[0], "model-a", round_, 1)
        with pytest.raises(ConnectionError):
            await recorder.flush()
    assert await journal(journal_redis, prefix).backlog() == 3
    monkeypatch.setattr(store, "_write", write)
    assert await recorder.flush() == 3
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)


async def test_journal_with_redis_down_keeps_usage_in_memory(db: str, caplog: pytest.LogCaptureFixture) -> None:
    """Redis unreachable: ``durable`` returns (answers are not held up), the usage stays in memory and the
    flush writes it to the database directly."""
    channels = [c.id for c in await make_channels(1)]
    dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5)
    recorder = UsageRecorder(3600, UsageStore(), journal=journal(dead, unique_prefix()))
    expected = Expected()
    with caplog.at_level(logging.WARNING, logger="aigc_admin.gateway.usage"):
        for _ in range(4):
            expected.record(recorder, channels[0], "model-b", 2, 2)
        await recorder.durable()
        assert "usage is kept in memory" in caplog.text
    assert sum(a.requests for a in recorder.pending.values()) == 4
    with pytest.raises(redis.exceptions.ConnectionError):  # the move could not reach Redis; memory was written
        await recorder.flush()
    assert await stored(channels) == expected.table()
    await dead.aclose()


async def test_journal_lost_by_redis_is_written_by_its_writers_once(db: str, journal_redis: aioredis.Redis) -> None:
    """Redis loses its data (the journal's keys, here deleted) after usage was journaled: each writer writes its own
    parts from memory under their batch ids. A part a mover had written already is not written again."""
    channels = [c.id for c in await make_channels(2)]
    prefix = unique_prefix()
    expected = Expected()
    store = UsageStore()
    one = UsageRecorder(3600, store, journal=journal(journal_redis, prefix))
    two = UsageRecorder(3600, store, journal=journal(journal_redis, prefix))
    for i in range(40):
        expected.record(one if i % 2 else two, channels[i % 2], "model-a", 2, 3)
    await one.durable()
    await two.durable()
    assert await one.flush() == 2  # moved: one's and two's parts of generation 0 are in the database
    for i in range(10):  # generation 1, journaled but never moved
        expected.record(one if i % 2 else two, channels[0], "model-b", 1, 1)
    await one.durable()
    await two.durable()
    await journal_redis.delete(*await journal_redis.keys(f"{prefix}:usage:*"))  # Redis lost its data
    assert await one.flush() == 1  # its part of generation 1 (generation 0's is known to be written)
    assert await two.flush() == 1  # the same for two; its generation-0 part is not written again
    assert one._parts == {} and two._parts == {}
    assert await stored(channels) == expected.table()
    assert await used_tokens(channels) == dict(expected.used)
    expected.record(one, channels[1], "model-b", 5, 5)  # a new epoch: the journal goes on
    await one.durable()
    assert await one.flush() == 1
    assert await stored(channels) == expected.table()


def test_journal_fields_round_trip() -> None:
    day = date(2026, 12, 3)
    batch = {(7, "org/model|v2", day): UsageCounts(3, 10, 0), (8, "m", day): UsageCounts(1, 0, 5)}
    assert decode(encode(batch)) == batch
    assert decode({b"1|2026-12-03|x|m": b"1", b"garbage": b"2"}) == {(1, "m", day): UsageCounts()}
