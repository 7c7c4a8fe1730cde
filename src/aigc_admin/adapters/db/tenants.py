"""Tenants and their members."""

from __future__ import annotations

import builtins

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.tenants.service import Member, Tenant


def _tenant(row: m.Tenant) -> Tenant:
    return Tenant(id=row.id, name=row.name, code=row.code, public_tenant_id=row.public_tenant_id,
                  remark=row.remark, created_at=row.created_at, deleting=row.deleting)


class TenantRepo:
    async def get(self, tenant_id: int) -> Tenant | None:
        row = await m.Tenant.get_or_none(id=tenant_id)
        return _tenant(row) if row else None

    async def exists(self, tenant_id: int) -> bool:
        """A tenant one may act in: it exists and is not being deleted."""
        return await m.Tenant.filter(id=tenant_id, deleting=False).exists()

    async def start_deleting(self, tenant_id: int) -> None:
        async with in_transaction():
            await m.Tenant.filter(id=tenant_id).update(deleting=True)
            await m.TenantMembership.filter(tenant_id=tenant_id).delete()

    async def get_many(self, ids: builtins.list[int]) -> dict[int, Tenant]:
        return {r.id: _tenant(r) for r in await m.Tenant.filter(id__in=ids)}

    async def get_by_code(self, code: str) -> Tenant | None:
        row = await m.Tenant.get_or_none(code=code)
        return _tenant(row) if row else None

    async def create(self, *, name: str, code: str, public_tenant_id: str, remark: str) -> Tenant:
        return _tenant(await m.Tenant.create(name=name, code=code, public_tenant_id=public_tenant_id, remark=remark))

    async def update(self, tenant_id: int, **changes: object) -> Tenant:
        await m.Tenant.filter(id=tenant_id).update(**changes)
        return _tenant(await m.Tenant.get(id=tenant_id))

    async def delete(self, tenant_id: int) -> None:
        async with in_transaction():
            await m.TenantMembership.filter(tenant_id=tenant_id).delete()
            await m.Tenant.filter(id=tenant_id).delete()

    async def list(self, *, offset: int, limit: int, search: str | None,
                   only_ids: builtins.list[int] | None) -> tuple[builtins.list[Tenant], int]:
        qs = m.Tenant.all()
        if only_ids is not None:
            qs = qs.filter(id__in=only_ids)
        if search:
            qs = qs.filter(Q(name__icontains=search) | Q(code__icontains=search))
        rows, total = await page(qs, offset=offset, limit=limit, order=("id",))
        return [_tenant(r) for r in rows], total

    async def members(self, tenant_id: int) -> builtins.list[Member]:
        return (await self.members_of([tenant_id])).get(tenant_id, [])

    async def members_of(self, tenant_ids: builtins.list[int]) -> dict[int, builtins.list[Member]]:
        """Members of several tenants in one query (the dataloader's batch)."""
        rows = await (m.TenantMembership.filter(tenant_id__in=tenant_ids).order_by("id")
                      .values_list("tenant_id", "account_id", "account__username", "role"))
        out: dict[int, builtins.list[Member]] = {}
        for tenant_id, account_id, username, role in rows:
            out.setdefault(int(tenant_id), []).append(Member(int(account_id), str(username), str(role)))
        return out
