"""Usage accounting off the hot path: aggregate in memory, write in batches.

``record`` adds one response's tokens to an in-memory aggregate keyed by (channel, model, UTC day): a
dict update, no I/O. A background task flushes every ``flush_interval`` seconds; a flush writes every
aggregate in ONE transaction: an upsert per batch of rows into ``channel_usage`` (``requests``, ``prompt_tokens``
and ``completion_tokens`` incremented in the database, so several gateway processes add up correctly) and
``chat_channels.used_tokens += prompt + completion`` per channel.

Failure handling: if the write fails, the batch is merged back into the pending aggregates, logged, and
written by the next flush; nothing is dropped silently. The one exception is usage of a channel deleted
in the meantime: it has no row to belong to, so it is logged (channel, model, day, counts) and dropped.
Delivery is at-least-once: a COMMIT whose acknowledgement is lost (the connection dies during it) is
counted as failed and written again. ``aclose`` stops the loop without interrupting a flush in progress and
flushes what is left; if that final flush fails, every aggregate still pending is logged at ERROR level
(so an operator can reconcile) and stays in ``pending``.

The gateway's quota counters live in Redis (``gateway.limits``); ``used_tokens`` here is the durable,
slightly trailing copy that seeds them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import TracebackType
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db.models import ChatChannel

log = logging.getLogger(__name__)

UsageKey = tuple[int, str, date]  # (channel id, model name, UTC day)
_COLUMNS = ("channel_id", "model_name", "day", "requests", "prompt_tokens", "completion_tokens")
_COUNTERS = ("requests", "prompt_tokens", "completion_tokens")


@dataclass(slots=True)
class UsageAggregate:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def add(self, other: UsageAggregate) -> None:
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _chunks(rows: list[tuple[Any, ...]], size: int) -> Iterable[list[tuple[Any, ...]]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


def upsert_sql(dialect: str, n_rows: int) -> str:
    """``INSERT … ON CONFLICT/DUPLICATE KEY UPDATE`` adding the counters of ``n_rows`` rows (6 params each)."""
    if dialect == "mysql":
        cols = ", ".join(f"`{c}`" for c in _COLUMNS)
        values = ", ".join(["(" + ", ".join(["%s"] * len(_COLUMNS)) + ")"] * n_rows)
        update = ", ".join(f"`{c}` = `{c}` + VALUES(`{c}`)" for c in _COUNTERS)
        return f"INSERT INTO `channel_usage` ({cols}) VALUES {values} ON DUPLICATE KEY UPDATE {update}"  # noqa: S608
    cols = ", ".join(f'"{c}"' for c in _COLUMNS)
    if dialect == "sqlite":
        values = ", ".join(["(" + ", ".join(["?"] * len(_COLUMNS)) + ")"] * n_rows)
    elif dialect == "postgres":
        width = len(_COLUMNS)
        values = ", ".join("(" + ", ".join(f"${r * width + i + 1}" for i in range(width)) + ")"
                           for r in range(n_rows))
    else:
        raise NotImplementedError(f"usage upsert for dialect {dialect!r}")
    update = ", ".join(f'"{c}" = "channel_usage"."{c}" + excluded."{c}"' for c in _COUNTERS)
    # only constants and placeholders are interpolated: the values travel as parameters
    return (f'INSERT INTO "channel_usage" ({cols}) VALUES {values} '  # noqa: S608
            f'ON CONFLICT ("channel_id", "model_name", "day") DO UPDATE SET {update}')


class UsageRecorder:
    """Aggregates usage in memory and writes it in one transaction per flush (see the module docstring).

    Use ``start()`` (or ``async with``) in the gateway's lifespan and ``aclose()`` at shutdown, after the
    gateway stopped serving: usage recorded after ``aclose`` waits for an explicit ``flush()``.
    """

    def __init__(self, flush_interval: float, *, connection_name: str | None = None, batch_rows: int = 500,
                 clock: Callable[[], datetime] = _utc_now) -> None:
        if flush_interval <= 0:
            raise ValueError("flush_interval must be > 0 seconds")
        self._interval = flush_interval
        self._connection_name = connection_name
        self._batch_rows = max(1, batch_rows)
        self._clock = clock
        self._pending: dict[UsageKey, UsageAggregate] = {}
        self._lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # --- hot path ------------------------------------------------------------------------
    def record(self, channel_id: int, model: str, prompt_tokens: int, completion_tokens: int) -> None:
        """Add one request's usage (O(1), no I/O)."""
        if prompt_tokens < 0 or completion_tokens < 0:
            raise ValueError("token counts must be >= 0")
        if self._closed:
            log.warning("usage recorded after aclose(); it is written only by an explicit flush()")
        key = (int(channel_id), model, self._clock().astimezone(UTC).date())
        agg = self._pending.get(key)
        if agg is None:
            agg = self._pending[key] = UsageAggregate()
        agg.requests += 1
        agg.prompt_tokens += int(prompt_tokens)
        agg.completion_tokens += int(completion_tokens)

    @property
    def pending(self) -> dict[UsageKey, UsageAggregate]:
        """A copy of the aggregates not yet written."""
        return {k: UsageAggregate(v.requests, v.prompt_tokens, v.completion_tokens) for k, v in self._pending.items()}

    # --- flushing ----------------------------------------------------------------------------
    async def flush(self) -> int:
        """Write the pending aggregates in one transaction; returns how many were written.

        On failure the aggregates are kept for the next flush, the failure is logged, and it is raised.
        """
        async with self._lock:
            if not self._pending:
                return 0
            batch, self._pending = self._pending, {}
            try:
                return await self._write(batch)
            except BaseException:
                self._merge_back(batch)
                log.error("usage flush of %d aggregates failed; kept for the next flush", len(batch), exc_info=True)
                raise

    def _merge_back(self, batch: dict[UsageKey, UsageAggregate]) -> None:
        # records that arrived during the failed write are in the new dict: add the batch to them
        for key, agg in batch.items():
            current = self._pending.get(key)
            if current is None:
                self._pending[key] = agg
            else:
                current.add(agg)

    async def _write(self, batch: dict[UsageKey, UsageAggregate]) -> int:
        """The database write of one flush: everything in one transaction."""
        async with in_transaction(self._connection_name) as conn:
            wanted = sorted({key[0] for key in batch})
            existing = set(await ChatChannel.filter(id__in=wanted).using_db(conn).values_list("id", flat=True))
            rows: list[tuple[Any, ...]] = []
            totals: dict[int, int] = {}
            dialect = conn.capabilities.dialect
            for key in sorted(batch):  # one lock order for every process: no deadlock between gateways
                channel_id, model, day = key
                agg = batch[key]
                if channel_id not in existing:
                    log.warning("usage of deleted channel %s dropped: model=%s day=%s requests=%d prompt=%d "
                                "completion=%d", channel_id, model, day, agg.requests, agg.prompt_tokens,
                                agg.completion_tokens)
                    continue
                rows.append((channel_id, model, day if dialect == "postgres" else day.isoformat(),
                             agg.requests, agg.prompt_tokens, agg.completion_tokens))
                totals[channel_id] = totals.get(channel_id, 0) + agg.tokens
            await self._upsert(conn, dialect, rows)
            for channel_id in sorted(totals):
                if totals[channel_id]:
                    await ChatChannel.filter(id=channel_id).using_db(conn).update(
                        used_tokens=F("used_tokens") + totals[channel_id])
            return len(rows)

    async def _upsert(self, conn: BaseDBAsyncClient, dialect: str, rows: list[tuple[Any, ...]]) -> None:
        for chunk in _chunks(rows, self._batch_rows):
            params = [value for row in chunk for value in row]
            await conn.execute_query(upsert_sql(dialect, len(chunk)), params)

    # --- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the periodic flush (idempotent)."""
        if self._task is None or self._task.done():
            self._stop.clear()
            self._closed = False
            self._task = asyncio.create_task(self._run(), name="usage-recorder-flush")

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            if self._stop.is_set():
                return
            with contextlib.suppress(Exception):  # logged by flush; the aggregates wait for the next one
                await self.flush()

    async def aclose(self) -> None:
        """Stop the periodic flush (letting a flush in progress finish) and write what is left."""
        self._closed = True
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            for (channel_id, model, day), agg in sorted(self._pending.items()):
                log.error("usage NOT written at shutdown: channel=%s model=%s day=%s requests=%d prompt=%d "
                          "completion=%d", channel_id, model, day, agg.requests, agg.prompt_tokens,
                          agg.completion_tokens)

    async def __aenter__(self) -> UsageRecorder:
        self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()
