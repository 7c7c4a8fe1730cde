"""The system dictionary (sys_dict)."""

from __future__ import annotations

import builtins

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.dicts.service import DictEntry, DictType


def _dict(row: m.SysDict) -> DictEntry:
    return DictEntry(id=row.id, parent_id=row.parent_id, code=row.code, dict_value=row.dict_value,
                     dict_label=row.dict_label, dict_type=DictType(row.dict_type), sort=row.sort, remark=row.remark)


class DictRepo:
    async def get(self, entry_id: int) -> DictEntry | None:
        row = await m.SysDict.get_or_none(id=entry_id)
        return _dict(row) if row else None

    async def create(self, **values: object) -> DictEntry:
        return _dict(await m.SysDict.create(**values))  # type: ignore[arg-type]

    async def update(self, entry_id: int, **changes: object) -> DictEntry:
        await m.SysDict.filter(id=entry_id).update(**changes)
        return _dict(await m.SysDict.get(id=entry_id))

    async def delete(self, entry_ids: builtins.list[int]) -> None:
        await m.SysDict.filter(id__in=entry_ids).delete()

    async def list(self, *, code: str | None, label: str | None, parent_id: int | None,
                   offset: int, limit: int) -> tuple[builtins.list[DictEntry], int]:
        qs = m.SysDict.all()
        if code:
            qs = qs.filter(code__icontains=code)
        if label:
            qs = qs.filter(dict_label__icontains=label)
        if parent_id is not None:
            qs = qs.filter(parent_id=parent_id)
        rows, total = await page(qs, offset=offset, limit=limit, order=("sort", "id"))
        return [_dict(r) for r in rows], total

    async def all_for_codes(self, codes: builtins.list[str]) -> builtins.list[DictEntry]:
        level = [_dict(r) for r in await m.SysDict.filter(parent_id=0, code__in=codes)]
        found = list(level)
        while level:
            level = [_dict(r) for r in await m.SysDict.filter(parent_id__in=[e.id for e in level])]
            found += level
        return found
