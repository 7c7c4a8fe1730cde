"""The system dictionary (the original's sys_dict): entries, trees, and their management (platform admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from aigc_admin.domain.dicts.service import DictType
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, optional_id, page, page_args, parse_id, typed_errors
from aigc_admin.schema import dicts as d
from aigc_admin.schema.common import OkPayload, Page, Pagination


@strawberry.type
class DictQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED, description="System dictionary entries.")
    async def dicts(self, info: Info, filter: d.DictFilter | None = None,
                    pagination: Pagination | None = None) -> Page[d.DictEntry]:
        f = filter or d.DictFilter()
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.dicts.list(
            code=f.code, label=f.label, parent_id=optional_id(f.parent_id, "parentId"),
            offset=offset, limit=limit)
        return page([d.DictEntry.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Dictionary trees whose root code is one of codes (the original's tree).")
    async def tree(self, info: Info, codes: list[str]) -> list[d.DictEntry]:
        return [d.DictEntry.from_domain(e) for e in await ctx(info).services.dicts.tree(codes[:100])]


@strawberry.type
class DictMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def create_dict(self, info: Info, input: d.CreateDictInput) -> d.DictPayload:
        entry = await ctx(info).services.dicts.create(
            parent_id=parse_id(input.parent_id, "parentId"), code=input.code, dict_value=input.dict_value,
            dict_label=input.dict_label, dict_type=DictType(input.dict_type), sort=input.sort, remark=input.remark)
        return d.DictPayload(entry=d.DictEntry.from_domain(entry))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def update_dict(self, info: Info, input: d.UpdateDictInput) -> d.DictPayload:
        entry = await ctx(info).services.dicts.update(
            parse_id(input.id), code=input.code, dict_value=input.dict_value, dict_label=input.dict_label,
            dict_type=DictType(input.dict_type) if input.dict_type else None, sort=input.sort, remark=input.remark)
        return d.DictPayload(entry=d.DictEntry.from_domain(entry))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Delete an entry and its children.")
    @typed_errors
    async def delete_dict(self, info: Info, id: strawberry.ID) -> OkPayload:
        await ctx(info).services.dicts.delete(parse_id(id))
        return OkPayload(ok=True)
