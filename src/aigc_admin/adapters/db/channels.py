"""Channels, the models each may call, their usage rows; what the gateway reads and writes of them."""

from __future__ import annotations

import builtins
import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.channels.service import Channel, ChannelSnapshot, UsageCounts, UsageKey, UsageRow

log = logging.getLogger("aigc_admin.gateway.usage")


def _channel(row: m.ChatChannel, model_ids: builtins.list[int]) -> Channel:
    return Channel(id=row.id, tenant_id=row.tenant_id, name=row.name, alias=row.alias, remark=row.remark,
                   email=row.email, key_prefix=row.api_key_prefix, quota=row.quota, used_tokens=row.used_tokens,
                   expires_at=row.expires_at, rpm_limit=row.rpm_limit, tpm_limit=row.tpm_limit, enabled=row.enabled,
                   model_ids=tuple(sorted(model_ids)), created_at=row.created_at, last_operator=row.last_operator)


class ChannelRepo:
    async def _model_ids(self, channel_ids: builtins.list[int]) -> dict[int, builtins.list[int]]:
        out: dict[int, builtins.list[int]] = {}
        if channel_ids:
            pairs = await m.LLMModel.filter(channels__id__in=channel_ids).values_list("channels__id", "id")
            for channel_id, model_id in pairs:
                out.setdefault(int(channel_id), []).append(int(model_id))
        return out

    async def _many(self, rows: builtins.list[m.ChatChannel]) -> builtins.list[Channel]:
        ids = await self._model_ids([r.id for r in rows])
        return [_channel(r, ids.get(r.id, [])) for r in rows]

    async def get(self, channel_id: int) -> Channel | None:
        row = await m.ChatChannel.get_or_none(id=channel_id)
        return (await self._many([row]))[0] if row else None

    async def find_by_key_hash(self, key_hash: str) -> Channel | None:
        row = await m.ChatChannel.get_or_none(api_key_hash=key_hash)
        return (await self._many([row]))[0] if row else None

    async def create(self, *, tenant_id: int, name: str, key_hash: str, key_prefix: str, operator: str,
                     values: dict[str, object], model_ids: builtins.list[int]) -> Channel:
        async with in_transaction():
            fields: dict[str, Any] = {"tenant_id": tenant_id, "name": name, "api_key_hash": key_hash,
                                      "api_key_prefix": key_prefix, "last_operator": operator, **values}
            row = await m.ChatChannel.create(**fields)
            if model_ids:
                await row.models.add(*await m.LLMModel.filter(id__in=model_ids))
        return await self.get(row.id)  # type: ignore[return-value]

    async def update(self, channel_id: int, values: dict[str, object],
                     model_ids: builtins.list[int] | None) -> Channel:
        async with in_transaction():
            if values:
                await m.ChatChannel.filter(id=channel_id).update(**values)
            if model_ids is not None:
                row = await m.ChatChannel.get(id=channel_id)
                await row.models.clear()
                if model_ids:
                    await row.models.add(*await m.LLMModel.filter(id__in=model_ids))
        return await self.get(channel_id)  # type: ignore[return-value]

    async def delete(self, channel_id: int) -> None:
        await m.ChatChannel.filter(id=channel_id).delete()

    async def list(self, *, tenant_id: int, offset: int, limit: int) -> tuple[builtins.list[Channel], int]:
        qs = m.ChatChannel.filter(tenant_id=tenant_id)
        rows, total = await page(qs, offset=offset, limit=limit, order=("id",))
        return await self._many(rows), total

    async def snapshot(self, key_hash: str) -> ChannelSnapshot | None:
        """The gateway's view of the channel with this key hash (two queries; run only on a cache miss)."""
        channel = await m.ChatChannel.filter(api_key_hash=key_hash).first()
        if channel is None:
            return None
        names = await channel.models.all().values_list("model_name", flat=True)
        return ChannelSnapshot(
            id=channel.id, tenant_id=channel.tenant_id, enabled=channel.enabled,  # type: ignore[attr-defined]
            expires_at=channel.expires_at, allowed_models=frozenset(str(n) for n in names), quota=channel.quota,
            rpm=channel.rpm_limit, tpm=channel.tpm_limit)

    async def key_hash(self, channel_id: int) -> str:
        row = await m.ChatChannel.get(id=channel_id).only("id", "api_key_hash")
        return row.api_key_hash

    async def used_tokens(self, channel_id: int) -> int:
        """Seeds the gateway's quota counter once per channel (Redis is authoritative afterwards)."""
        row = await m.ChatChannel.get_or_none(id=channel_id).only("id", "used_tokens")
        return row.used_tokens if row else 0

    async def models_of_tenant(self, tenant_id: int, model_ids: builtins.list[int]) -> set[int]:
        if not model_ids:
            return set()
        found = await m.LLMModel.filter(id__in=model_ids, tenants__id=tenant_id).values_list("id", flat=True)
        return {int(str(i)) for i in found}

    async def usage(self, *, tenant_id: int, channel_id: int | None, model: str | None, start: date | None,
                    end: date | None) -> builtins.list[UsageRow]:
        qs = m.ChannelUsage.filter(channel__tenant_id=tenant_id)
        if channel_id is not None:
            qs = qs.filter(channel_id=channel_id)
        if model:
            qs = qs.filter(model_name=model)
        if start:
            qs = qs.filter(day__gte=start)
        if end:
            qs = qs.filter(day__lte=end)
        rows = await qs.order_by("day", "channel_id", "model_name")
        return [UsageRow(r.channel_id, r.model_name, r.day, r.requests, r.prompt_tokens,  # type: ignore[attr-defined]
                         r.completion_tokens) for r in rows]


_COLUMNS = ("channel_id", "model_name", "day", "requests", "prompt_tokens", "completion_tokens")
_COUNTERS = ("requests", "prompt_tokens", "completion_tokens")


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


class UsageStore:
    """The gateway's usage writes: the (channel, model, day) counters of ``channel_usage`` and the channels'
    ``used_tokens``, all of one flush in ONE transaction (counters incremented in the database, so several
    gateway processes add up)."""

    def __init__(self, *, connection_name: str | None = None, batch_rows: int = 500) -> None:
        self._connection_name = connection_name
        self._batch_rows = max(1, batch_rows)
        self._pruned = 0.0

    async def write(self, batch: dict[UsageKey, UsageCounts], batch_id: str | None = None) -> int:
        """Returns how many counter rows were written; usage of a channel deleted meanwhile is logged, dropped.
        With ``batch_id`` (a journal batch), the id is stored in the same transaction, and a batch stored
        before is not written again (returns 0)."""
        try:
            return await self._write(batch, batch_id)
        except IntegrityError:
            if batch_id is not None and await m.UsageBatch.exists(id=batch_id):
                log.info("usage batch %s was written before; not again", batch_id)
                return 0
            raise
        finally:
            if batch_id is not None and time.monotonic() - self._pruned > 3600:
                self._pruned = time.monotonic()
                with contextlib.suppress(Exception):  # best effort: the ids only matter for a few seconds
                    await m.UsageBatch.filter(created_at__lt=datetime.now(UTC) - timedelta(days=1)).delete()

    async def written(self, batch_ids: builtins.list[str]) -> set[str]:
        """Which of these journal batches are in the database."""
        if not batch_ids:
            return set()
        return {str(i) for i in await m.UsageBatch.filter(id__in=batch_ids).values_list("id", flat=True)}

    async def _write(self, batch: dict[UsageKey, UsageCounts], batch_id: str | None) -> int:
        async with in_transaction(self._connection_name) as conn:
            if batch_id is not None:  # first: a second writer of the same batch stops here
                await m.UsageBatch.create(id=batch_id, using_db=conn)
            wanted = sorted({key[0] for key in batch})
            existing = set(await m.ChatChannel.filter(id__in=wanted).using_db(conn).values_list("id", flat=True))
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
                    await m.ChatChannel.filter(id=channel_id).using_db(conn).update(
                        used_tokens=F("used_tokens") + totals[channel_id])
            return len(rows)

    async def _upsert(self, conn: BaseDBAsyncClient, dialect: str, rows: list[tuple[Any, ...]]) -> None:
        for chunk in _chunks(rows, self._batch_rows):
            params = [value for row in chunk for value in row]
            await conn.execute_query(upsert_sql(dialect, len(chunk)), params)
