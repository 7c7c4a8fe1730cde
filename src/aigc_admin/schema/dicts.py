"""The system dictionary."""

from __future__ import annotations

import strawberry

from aigc_admin.domain.dicts.service import DictEntry as _DictEntry
from aigc_admin.domain.dicts.service import DictType as _DictType
from aigc_admin.schema.common import Error

DictType = strawberry.enum(_DictType, description="Type of a dictionary value.")


@strawberry.type
class DictEntry:
    id: strawberry.ID
    parent_id: strawberry.ID
    code: str
    dict_value: str
    dict_label: str
    dict_type: DictType  # type: ignore[valid-type]
    sort: int
    remark: str
    children: list[DictEntry]

    @classmethod
    def from_domain(cls, d: _DictEntry) -> DictEntry:
        return cls(id=strawberry.ID(str(d.id)), parent_id=strawberry.ID(str(d.parent_id)), code=d.code,
                   dict_value=d.dict_value, dict_label=d.dict_label, dict_type=d.dict_type, sort=d.sort,
                   remark=d.remark, children=[cls.from_domain(c) for c in d.children])


@strawberry.input
class DictFilter:
    code: str | None = None
    label: str | None = None
    parent_id: strawberry.ID | None = None


@strawberry.input
class CreateDictInput:
    code: str
    dict_value: str
    dict_label: str
    parent_id: strawberry.ID = strawberry.ID("0")
    dict_type: DictType = _DictType.STRING  # type: ignore[valid-type]
    sort: int = 0
    remark: str = ""


@strawberry.input
class UpdateDictInput:
    id: strawberry.ID
    code: str | None = None
    dict_value: str | None = None
    dict_label: str | None = None
    dict_type: DictType | None = None  # type: ignore[valid-type]
    sort: int | None = None
    remark: str | None = None


@strawberry.type
class DictPayload:
    entry: DictEntry | None = None
    errors: list[Error] = strawberry.field(default_factory=list)
