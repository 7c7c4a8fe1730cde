"""The dashboard's overview for the request's tenant."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from aigc_admin.resolvers import permissions as perm
from aigc_admin.resolvers.common import ctx, request_tenant
from aigc_admin.schema import dashboard as da


@strawberry.type
class DashboardQueries:
    @strawberry.field(permission_classes=perm.TENANT_MEMBER,
                      description="Deployments by status, GPU capacity in use and gateway requests by status.")
    async def dashboard(self, info: Info) -> da.Dashboard:
        x = await ctx(info).services.dashboard.overview(tenant_id=request_tenant(info))
        return da.Dashboard(
            deployments=[da.StatusCount(status=s, count=n) for s, n in sorted(x.deployments.items())],
            gpu_total=x.gpu_total, gpu_in_use=x.gpu_in_use,
            gateway_requests=[da.GatewayRequestCount(model=r.model, status=r.status, requests=r.requests)
                              for r in x.requests])
