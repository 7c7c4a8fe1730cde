"""Datasets and their samples."""

from __future__ import annotations

import builtins
import json
from collections.abc import AsyncIterator
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.chat_format import DatasetFormat, Message
from aigc_admin.domain.datasets.service import (
    Dataset,
    DatasetErrorCode,
    NewSample,
    Sample,
    SampleContent,
)
from aigc_admin.domain.errors import DomainError

INSERT_BATCH_ROWS = 500
INSERT_BATCH_BYTES = 4 * 1024 * 1024  # keeps one INSERT well under MariaDB's max_allowed_packet (16 MiB)


def _dataset(row: m.Dataset) -> Dataset:
    return Dataset(id=row.id, uuid=row.uuid, tenant_id=row.tenant_id, name=row.name, remark=row.remark,
                   sample_count=row.sample_count, creator_email=row.creator_email, type=row.type,
                   format=DatasetFormat(row.format), created_at=row.created_at, updated_at=row.updated_at)


def _messages(text: str) -> tuple[Message, ...]:
    try:
        items = json.loads(text) if text else []
    except ValueError:
        return ()
    if not isinstance(items, list):
        return ()
    return tuple(Message(str(i.get("role", "")), str(i.get("content", ""))) for i in items if isinstance(i, dict))


def _sample(row: m.DatasetSample) -> Sample:
    return Sample(id=row.id, uuid=row.uuid, dataset_id=row.dataset_id,  # type: ignore[attr-defined]
                  title=row.title, system=row.system, instruction=row.instruction, input=row.input,
                  output=row.output, conversations=_messages(row.conversations), label=row.label, remark=row.remark,
                  creator_email=row.creator_email, turns=row.turns, created_at=row.created_at,
                  updated_at=row.updated_at)


def _content_columns(c: SampleContent) -> dict[str, Any]:
    return {"system": c.system, "instruction": c.instruction, "input": c.input, "output": c.output,
            "conversations": json.dumps([{"role": x.role, "content": x.content} for x in c.conversations],
                                        ensure_ascii=False),
            "turns": c.turns}


def _row(dataset_id: int, s: NewSample) -> m.DatasetSample:
    return m.DatasetSample(dataset_id=dataset_id, uuid=s.uuid, title=s.title, label=s.label, remark=s.remark,
                           creator_email=s.creator_email, **_content_columns(s.content))


class DatasetRepo:
    async def get(self, dataset_id: int) -> Dataset | None:
        row = await m.Dataset.get_or_none(id=dataset_id)
        return _dataset(row) if row else None

    async def name_taken(self, tenant_id: int, name: str, *, except_id: int | None = None) -> bool:
        qs = m.Dataset.filter(tenant_id=tenant_id, name=name)
        if except_id is not None:
            qs = qs.exclude(id=except_id)
        return await qs.exists()

    async def create(self, *, tenant_id: int, uuid: str, name: str, remark: str, type: str,
                     format: DatasetFormat, creator_email: str) -> Dataset:
        try:
            row = await m.Dataset.create(tenant_id=tenant_id, uuid=uuid, name=name, remark=remark, type=type,
                                         format=format.value, creator_email=creator_email)
        except IntegrityError:  # a concurrent create with the same name
            raise DomainError(DatasetErrorCode.DUPLICATE, f"a dataset named {name!r} exists", "name") from None
        return _dataset(row)

    async def update(self, dataset_id: int, changes: dict[str, object]) -> Dataset:
        values = {k: (v.value if isinstance(v, DatasetFormat) else v) for k, v in changes.items()}
        try:
            await m.Dataset.filter(id=dataset_id).update(**values)
        except IntegrityError:
            raise DomainError(DatasetErrorCode.DUPLICATE, f"a dataset named {values.get('name')!r} exists",
                              "name") from None
        return _dataset(await m.Dataset.get(id=dataset_id))

    async def delete(self, dataset_id: int) -> None:
        async with in_transaction():
            await m.DatasetSample.filter(dataset_id=dataset_id).delete()
            await m.Dataset.filter(id=dataset_id).delete()

    async def list(self, *, tenant_id: int, offset: int, limit: int,
                   search: str | None) -> tuple[builtins.list[Dataset], int]:
        qs = m.Dataset.filter(tenant_id=tenant_id)
        if search:
            qs = qs.filter(Q(name__icontains=search) | Q(remark__icontains=search))
        rows, total = await page(qs, offset=offset, limit=limit, order=("-id",))
        return [_dataset(r) for r in rows], total

    async def get_sample(self, sample_id: int) -> Sample | None:
        row = await m.DatasetSample.get_or_none(id=sample_id)
        return _sample(row) if row else None

    async def list_samples(self, dataset_id: int, *, offset: int,
                           limit: int) -> tuple[builtins.list[Sample], int]:
        qs = m.DatasetSample.filter(dataset_id=dataset_id)
        rows, total = await page(qs, offset=offset, limit=limit, order=("id",))
        return [_sample(r) for r in rows], total

    async def iter_samples(self, dataset_id: int, *, batch: int) -> AsyncIterator[builtins.list[Sample]]:
        """Samples in id order, ``batch`` at a time (keyset paging: no OFFSET scans, no long transaction)."""
        after = 0
        while True:
            rows = await m.DatasetSample.filter(dataset_id=dataset_id, id__gt=after).order_by("id").limit(batch)
            if not rows:
                return
            yield [_sample(r) for r in rows]
            after = rows[-1].id

    async def _recount(self, dataset_id: int, connection: Any) -> int:
        count = await m.DatasetSample.filter(dataset_id=dataset_id).using_db(connection).count()
        await m.Dataset.filter(id=dataset_id).using_db(connection).update(sample_count=count)
        return count

    async def add_sample(self, dataset_id: int, sample: NewSample) -> Sample:
        async with in_transaction() as conn:
            row = _row(dataset_id, sample)
            await row.save(using_db=conn)
            await self._recount(dataset_id, conn)
        return _sample(row)

    async def add_samples(self, dataset_id: int, samples: builtins.list[NewSample]) -> int:
        async with in_transaction() as conn:
            batch: builtins.list[m.DatasetSample] = []
            size = 0
            for s in samples:
                row = _row(dataset_id, s)
                batch.append(row)
                size += sum(len(str(getattr(row, k))) for k in ("system", "instruction", "input", "output",
                                                                 "conversations"))
                if len(batch) >= INSERT_BATCH_ROWS or size >= INSERT_BATCH_BYTES:
                    await m.DatasetSample.bulk_create(batch, using_db=conn)
                    batch, size = [], 0
            if batch:
                await m.DatasetSample.bulk_create(batch, using_db=conn)
            return await self._recount(dataset_id, conn)

    async def update_sample(self, sample_id: int, changes: dict[str, object],
                            content: SampleContent | None) -> Sample:
        values: dict[str, Any] = dict(changes)
        if content is not None:
            values.update(_content_columns(content))
        if values:
            await m.DatasetSample.filter(id=sample_id).update(**values)
        return _sample(await m.DatasetSample.get(id=sample_id))

    async def delete_sample(self, sample_id: int) -> None:
        async with in_transaction() as conn:
            row = await m.DatasetSample.filter(id=sample_id).using_db(conn).first()
            if row is None:
                return
            await row.delete(using_db=conn)
            await self._recount(row.dataset_id, conn)  # type: ignore[attr-defined]
