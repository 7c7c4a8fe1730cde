"""Tenants and their memberships."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from aigc_admin.domain.errors import DomainError
from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, page, page_args, parse_id, typed_errors
from aigc_admin.schema import tenants as t
from aigc_admin.schema.common import OkPayload, Page, Pagination


@strawberry.type
class TenantQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Tenants: all for platform admins, otherwise the caller's own.")
    async def tenants(self, info: Info, pagination: Pagination | None = None,
                      search: str | None = None) -> Page[t.Tenant]:
        c = ctx(info)
        assert c.principal is not None
        offset, limit = page_args(pagination)
        only = None if c.principal.is_platform_admin else list(c.principal.memberships)
        rows, total = await c.services.tenants.list(offset=offset, limit=limit, search=search, only_ids=only)
        return page([t.Tenant.from_domain(r) for r in rows], total, offset, limit)

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


@strawberry.type
class TenantMutations:
    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def create_tenant(self, info: Info, input: t.CreateTenantInput) -> t.TenantPayload:
        created = await ctx(info).services.tenants.create(name=input.name, code=input.code, remark=input.remark)
        return t.TenantPayload(tenant=t.Tenant.from_domain(created))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def update_tenant(self, info: Info, input: t.UpdateTenantInput) -> t.TenantPayload:
        updated = await ctx(info).services.tenants.update(parse_id(input.id), name=input.name, remark=input.remark)
        return t.TenantPayload(tenant=t.Tenant.from_domain(updated))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Delete a tenant and everything it owns: its members lose access at once; a job "
                                     "stops its deployments and training jobs, revokes its keys and deletes its files, "
                                     "datasets and rows (the tenant shows deleting: true until it is done).")
    @typed_errors
    async def delete_tenant(self, info: Info, id: strawberry.ID) -> OkPayload:
        await ctx(info).services.tenants.delete(parse_id(id))
        return OkPayload(ok=True)

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN,
                         description="Add an account to a tenant, or change its role there.")
    @typed_errors
    async def set_tenant_membership(self, info: Info, input: t.SetMembershipInput) -> t.TenantPayload:
        s = ctx(info).services
        tenant = await s.tenants.get(parse_id(input.tenant_id, "tenantId"))
        await s.accounts.set_membership(tenant.id, parse_id(input.account_id, "accountId"), TenantRole(input.role))
        return t.TenantPayload(tenant=t.Tenant.from_domain(tenant))

    @strawberry.mutation(permission_classes=perm.PLATFORM_ADMIN)
    @typed_errors
    async def remove_tenant_membership(self, info: Info, input: t.RemoveMembershipInput) -> t.TenantPayload:
        s = ctx(info).services
        tenant = await s.tenants.get(parse_id(input.tenant_id, "tenantId"))
        await s.accounts.remove_membership(tenant.id, parse_id(input.account_id, "accountId"))
        return t.TenantPayload(tenant=t.Tenant.from_domain(tenant))
