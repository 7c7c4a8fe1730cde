"""The audit log: query it, and follow it live (platform admins)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from graphql import GraphQLError
from strawberry.types import Info

from aigc_admin.domain import events as topics
from aigc_admin.domain.audit.service import AuditFilter
from aigc_admin.domain.roles import TenantRole
from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, optional_id, page, page_args
from aigc_admin.schema import audit as au
from aigc_admin.schema.common import Page, Pagination


@strawberry.type
class AuditQueries:
    @strawberry.field(permission_classes=perm.AUTHENTICATED,
                      description="Audit log, newest first. Platform admins see every row; tenant maintainers "
                                  "see the rows of the tenant named by X-Tenant-Id.")
    async def audit_logs(self, info: Info, filter: au.AuditLogFilter | None = None,
                         pagination: Pagination | None = None) -> Page[au.AuditLog]:
        c = ctx(info)
        assert c.principal is not None
        f = filter or au.AuditLogFilter()
        visible: list[int] | None = None
        if not c.principal.is_platform_admin:
            if c.tenant_id is None or not c.principal.may_act_in(c.tenant_id, TenantRole.MAINTAINER):
                raise GraphQLError("Send X-Tenant-Id of a tenant in which you are a maintainer",
                                   extensions={"code": perm.FORBIDDEN})
            visible = [c.tenant_id]
        offset, limit = page_args(pagination)
        flt = AuditFilter(operator=f.operator, tenant_id=optional_id(f.tenant_id, "tenantId"),
                          operation=f.operation, trace_id=f.trace_id, success=f.success,
                          min_duration_ms=f.min_duration_ms, start=f.start, end=f.end, visible_tenants=visible)
        rows, total = await c.services.audit.list(flt, offset=offset, limit=limit)
        return page([au.AuditLog.from_domain(r) for r in rows], total, offset, limit)


@strawberry.type
class AuditSubscriptions:
    @strawberry.subscription(permission_classes=perm.PLATFORM_ADMIN,
                             description="Every audit log row as it is written (platform admins).")
    async def audit_log_added(self, info: Info) -> AsyncGenerator[au.AuditLog, None]:
        async with ctx(info).services.events.subscribe(topics.AUDIT) as events:
            async for event in events:
                yield au.AuditLog.from_event(event)
