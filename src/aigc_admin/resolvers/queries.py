from __future__ import annotations

import strawberry
from strawberry.types import Info

from aigc_admin.domain.audit.service import AuditFilter
from aigc_admin.domain.errors import DomainError
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.channels import ChannelQueries
from aigc_admin.resolvers.common import ctx, page_args, parse_id
from aigc_admin.resolvers.datasets import DatasetQueries
from aigc_admin.resolvers.deployments import DeploymentQueries
from aigc_admin.resolvers.files import FileQueries
from aigc_admin.resolvers.finetunes import FineTuneQueries
from aigc_admin.resolvers.models import ModelQueries
from aigc_admin.schema import types as t


def _page(items: list, total: int, offset: int, limit: int) -> t.Page:
    return t.Page(items=items, total_count=total, offset=offset, limit=limit)


@strawberry.type
class Query(ModelQueries, DeploymentQueries, ChannelQueries, DatasetQueries, FileQueries,
            FineTuneQueries):
    @strawberry.field(permission_classes=perm.AUTHENTICATED, description="The signed-in account.")
    async def me(self, info: Info) -> t.Me:
        c = ctx(info)
        assert c.principal is not None
        account = await c.services.accounts.get(c.principal.account_id)
        return t.Me(account=t.Account.from_domain(account), memberships=[
            t.Membership(tenant_id=strawberry.ID(str(tid)), role=role)
            for tid, role in sorted(c.principal.memberships.items())])

    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Tenants: all for platform admins, otherwise the caller's own.")
    async def tenants(self, info: Info, pagination: t.Pagination | None = None,
                      search: str | None = None) -> t.Page[t.Tenant]:
        c = ctx(info)
        assert c.principal is not None
        offset, limit = page_args(pagination)
        only = None if c.principal.is_platform_admin else list(c.principal.memberships)
        rows, total = await c.services.tenants.list(offset=offset, limit=limit, search=search, only_ids=only)
        return _page([t.Tenant.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED, description="A tenant the caller belongs to.")
    async def tenant(self, info: Info, id: strawberry.ID) -> t.Tenant | None:
        c = ctx(info)
        assert c.principal is not None
        try:
            tenant_id = parse_id(id)
        except DomainError:
            return None
        if not c.principal.may_act_in(tenant_id):
            return None  # another tenant's data is indistinguishable from missing data
        found = await c.loaders.tenant.load(tenant_id)
        return t.Tenant.from_domain(found) if found else None

    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def accounts(self, info: Info, pagination: t.Pagination | None = None,
                       search: str | None = None) -> t.Page[t.Account]:
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.accounts.list(offset=offset, limit=limit, search=search)
        return _page([t.Account.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.PLATFORM_ADMIN)
    async def account(self, info: Info, id: strawberry.ID) -> t.Account | None:
        try:
            found = await ctx(info).loaders.account.load(parse_id(id))
        except DomainError:
            return None
        return t.Account.from_domain(found) if found else None

    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Audit log, newest first. Platform admins see every row; tenant maintainers "
                                  "see the rows of the tenant named by X-Tenant-Id.")
    async def audit_logs(self, info: Info, filter: t.AuditLogFilter | None = None,
                         pagination: t.Pagination | None = None) -> t.Page[t.AuditLog]:
        c = ctx(info)
        assert c.principal is not None
        f = filter or t.AuditLogFilter()
        visible: list[int] | None = None
        if not c.principal.is_platform_admin:
            from aigc_admin.domain.roles import TenantRole

            if c.tenant_id is None or not c.principal.may_act_in(c.tenant_id, TenantRole.MAINTAINER):
                from graphql import GraphQLError

                raise GraphQLError("Send X-Tenant-Id of a tenant in which you are a maintainer",
                                   extensions={"code": perm.FORBIDDEN})
            visible = [c.tenant_id]
        offset, limit = page_args(pagination)
        flt = AuditFilter(operator=f.operator, tenant_id=int(f.tenant_id) if f.tenant_id else None,
                          operation=f.operation, trace_id=f.trace_id, success=f.success,
                          min_duration_ms=f.min_duration_ms, start=f.start, end=f.end, visible_tenants=visible)
        rows, total = await c.services.audit.list(flt, offset=offset, limit=limit)
        return _page([t.AuditLog.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED, description="System dictionary entries.")
    async def dicts(self, info: Info, filter: t.DictFilter | None = None,
                    pagination: t.Pagination | None = None) -> t.Page[t.DictEntry]:
        f = filter or t.DictFilter()
        offset, limit = page_args(pagination)
        rows, total = await ctx(info).services.dicts.list(
            code=f.code, label=f.label, parent_id=int(f.parent_id) if f.parent_id is not None else None,
            offset=offset, limit=limit)
        return _page([t.DictEntry.from_domain(r) for r in rows], total, offset, limit)

    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Dictionary trees whose root code is one of codes (the original's tree).")
    async def tree(self, info: Info, codes: list[str]) -> list[t.DictEntry]:
        return [t.DictEntry.from_domain(d) for d in await ctx(info).services.dicts.tree(codes[:100])]
