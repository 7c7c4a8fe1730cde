"""System dictionary: labelled values grouped by code, nested by parent id (the original's sys_dict)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from aigc_admin.domain.errors import Invalid, NotFound


class DictType(StrEnum):
    STRING = "string"
    INT = "int"
    BOOL = "bool"


@dataclass
class DictEntry:
    id: int
    parent_id: int
    code: str
    dict_value: str
    dict_label: str
    dict_type: DictType
    sort: int
    remark: str
    children: builtins.list[DictEntry] = field(default_factory=list)


class DictRepository(Protocol):
    async def get(self, entry_id: int) -> DictEntry | None: ...
    async def create(self, **values: object) -> DictEntry: ...
    async def update(self, entry_id: int, **changes: object) -> DictEntry: ...
    async def delete(self, entry_ids: builtins.list[int]) -> None: ...
    async def list(self, *, code: str | None, label: str | None, parent_id: int | None,
                   offset: int, limit: int) -> tuple[builtins.list[DictEntry], int]: ...
    async def all_for_codes(self, codes: builtins.list[str]) -> builtins.list[DictEntry]:
        """Roots with these codes and all their descendants (one query per level at most)."""
        ...


def check_value(dict_type: DictType, value: str) -> None:
    if dict_type == DictType.INT:
        try:
            int(value)
        except ValueError:
            raise Invalid("dictValue", f"{value!r} is not an int") from None
    if dict_type == DictType.BOOL and value.lower() not in ("true", "false", "1", "0"):
        raise Invalid("dictValue", f"{value!r} is not a bool")


def build_tree(entries: builtins.list[DictEntry], codes: builtins.list[str]) -> builtins.list[DictEntry]:
    """Nest ``entries`` by parent id; return the roots (parent 0) whose code is in ``codes``, sorted."""
    by_parent: dict[int, builtins.list[DictEntry]] = {}
    for e in entries:
        e.children = []
        by_parent.setdefault(e.parent_id, []).append(e)
    for e in entries:
        e.children = sorted(by_parent.get(e.id, []), key=lambda c: (c.sort, c.id))
    roots = [e for e in by_parent.get(0, []) if e.code in codes]
    return sorted(roots, key=lambda r: (codes.index(r.code), r.sort, r.id))


class DictService:
    def __init__(self, *, repo: DictRepository) -> None:
        self.repo = repo

    async def get(self, entry_id: int) -> DictEntry:
        entry = await self.repo.get(entry_id)
        if entry is None:
            raise NotFound("dictionary entry", entry_id)
        return entry

    async def list(self, *, code: str | None = None, label: str | None = None, parent_id: int | None = None,
                   offset: int = 0, limit: int = 20) -> tuple[builtins.list[DictEntry], int]:
        return await self.repo.list(code=code, label=label, parent_id=parent_id, offset=offset, limit=limit)

    async def create(self, *, parent_id: int, code: str, dict_value: str, dict_label: str,
                     dict_type: DictType, sort: int = 0, remark: str = "") -> DictEntry:
        if not code.strip() or len(code) > 32:
            raise Invalid("code", "code must have 1 to 32 characters")
        if parent_id:
            parent = await self.repo.get(parent_id)
            if parent is None:
                raise NotFound("parent dictionary entry", parent_id, "parentId")
        check_value(dict_type, dict_value)
        return await self.repo.create(parent_id=parent_id, code=code, dict_value=dict_value,
                                      dict_label=dict_label, dict_type=dict_type, sort=sort, remark=remark)

    async def update(self, entry_id: int, **changes: object) -> DictEntry:
        entry = await self.get(entry_id)
        changes = {k: v for k, v in changes.items() if v is not None}
        dict_type = DictType(str(changes.get("dict_type", entry.dict_type)))
        check_value(dict_type, str(changes.get("dict_value", entry.dict_value)))
        return await self.repo.update(entry_id, **changes) if changes else entry

    async def delete(self, entry_id: int) -> None:
        await self.get(entry_id)
        # children go with their parent, as in the original
        ids, frontier = [entry_id], [entry_id]
        while frontier:
            kids, _ = await self.repo.list(code=None, label=None, parent_id=frontier.pop(), offset=0, limit=10_000)
            ids += [k.id for k in kids]
            frontier += [k.id for k in kids]
        await self.repo.delete(ids)

    async def tree(self, codes: builtins.list[str]) -> builtins.list[DictEntry]:
        return build_tree(await self.repo.all_for_codes(codes), codes)
