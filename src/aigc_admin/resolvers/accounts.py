"""Accounts: sign-in, the signed-in account, and account management (platform admins)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page, page_args, parse_id, typed_errors
from aigc_admin.schema import accounts as a
from aigc_admin.schema.common import OkPayload, Page, Pagination


@strawberry.type
class AccountQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED, description="The signed-in account.")
    async def me(self, info: Info) -> a.Me:
        c = ctx(info)
        assert c.principal is not None
        account = await c.services.accounts.get(c.principal.account_id)
        return a.Me(account=a.Account.from_domain(account), memberships=[
            a.Membership(tenant_id=strawberry.ID(str(tid)), role=role)
            for tid, role in sorted(c.principal.memberships.items())])

    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def accounts(self, info: Info, pagination: Pagination | None = None,
                       search: str | None = None) -> Page[a.Account]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.accounts.list(offset=offset, limit=limit, search=search)
        return page([a.Account.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def account(self, info: Info, id: strawberry.ID) -> a.Account | None:
        try:
            found = await ctx(info).loaders.account.load(parse_id(id))
        except DomainError:
            return None
        return a.Account.from_domain(found) if found else None


@strawberry.type
class AccountMutations:
    @strawberry.mutation(permission_classes=perm.PUBLIC,
                         description="Exchange a username and password for a token (local or LDAP account).")
    @typed_errors
    async def login(self, info: Info, input: a.LoginInput) -> a.LoginPayload:
        result = await ctx(info).services.accounts.login(input.username, input.password)
        return a.LoginPayload(token=result.token, account=a.Account.from_domain(result.account))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN, description="Create a local account.")
    @typed_errors
    async def create_account(self, info: Info, input: a.CreateAccountInput) -> a.AccountPayload:
        created = await ctx(info).services.accounts.create_local(
            username=input.username, password=input.password, email=input.email, nickname=input.nickname,
            is_platform_admin=input.is_platform_admin)
        return a.AccountPayload(account=a.Account.from_domain(created))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def update_account(self, info: Info, input: a.UpdateAccountInput) -> a.AccountPayload:
        c = ctx(info)
        updated = await c.services.accounts.update(
            parse_id(input.id), email=input.email, nickname=input.nickname, enabled=input.enabled,
            is_platform_admin=input.is_platform_admin, password=input.password,
            actor=c.principal.account_id if c.principal else None)
        return a.AccountPayload(account=a.Account.from_domain(updated))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def delete_account(self, info: Info, id: strawberry.ID) -> OkPayload:
        c = ctx(info)
        await c.services.accounts.delete(parse_id(id), actor=c.principal.account_id if c.principal else None)
        return OkPayload(ok=True)
