"""Accounts and their tenant memberships."""

from __future__ import annotations

import builtins

from tortoise.expressions import Q

from aigc_admin.adapters.db import models as m
from aigc_admin.adapters.db.paging import page
from aigc_admin.domain.accounts.entities import Account, AccountSource
from aigc_admin.domain.roles import TenantRole


def _account(row: m.Account) -> Account:
    return Account(id=row.id, username=row.username, email=row.email, nickname=row.nickname,
                   source=AccountSource(row.source), is_platform_admin=row.is_platform_admin,
                   enabled=row.enabled, created_at=row.created_at, last_login_at=row.last_login_at)


class AccountRepo:
    async def get(self, account_id: int) -> Account | None:
        row = await m.Account.get_or_none(id=account_id)
        return _account(row) if row else None

    async def get_many(self, ids: builtins.list[int]) -> dict[int, Account]:
        return {r.id: _account(r) for r in await m.Account.filter(id__in=ids)}

    async def get_by_username(self, username: str) -> Account | None:
        row = await m.Account.get_or_none(username=username)
        return _account(row) if row else None

    async def password_hash(self, account_id: int) -> str:
        row = await m.Account.get(id=account_id).only("id", "password_hash")
        return row.password_hash

    async def create(self, *, username: str, email: str, nickname: str, password_hash: str,
                     source: AccountSource, is_platform_admin: bool) -> Account:
        row = await m.Account.create(username=username, email=email, nickname=nickname,
                                     password_hash=password_hash, source=source.value,
                                     is_platform_admin=is_platform_admin)
        return _account(row)

    async def update(self, account_id: int, **changes: object) -> Account:
        await m.Account.filter(id=account_id).update(**changes)
        return _account(await m.Account.get(id=account_id))

    async def delete(self, account_id: int) -> None:
        await m.Account.filter(id=account_id).delete()

    async def list(self, *, offset: int, limit: int, search: str | None) -> tuple[builtins.list[Account], int]:
        qs = m.Account.all()
        if search:
            qs = qs.filter(Q(username__icontains=search) | Q(email__icontains=search) | Q(nickname__icontains=search))
        rows, total = await page(qs, offset=offset, limit=limit, order=("id",))
        return [_account(r) for r in rows], total

    async def memberships(self, account_id: int) -> dict[int, TenantRole]:
        rows = await m.TenantMembership.filter(account_id=account_id).values_list("tenant_id", "role")
        return {int(t): TenantRole(r) for t, r in rows}

    async def set_membership(self, tenant_id: int, account_id: int, role: TenantRole) -> None:
        await m.TenantMembership.update_or_create(
            defaults={"role": role.value}, tenant_id=tenant_id, account_id=account_id)

    async def remove_membership(self, tenant_id: int, account_id: int) -> bool:
        return bool(await m.TenantMembership.filter(tenant_id=tenant_id, account_id=account_id).delete())

    async def enabled_admins(self) -> int:
        return await m.Account.filter(is_platform_admin=True, enabled=True).count()

    async def tenant_ids_by_code(self, codes: builtins.list[str]) -> dict[str, int]:
        if not codes:
            return {}
        return {c: int(i) for c, i in await m.Tenant.filter(code__in=codes).values_list("code", "id")}
